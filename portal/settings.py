"""One frozen settings object, read once from the environment.

Each setting is written once, below: its default, its environment variable and what it
means. `from_environment` reads them by that declaration, and the README's settings table is
`settings_table()` (a test fails when the two differ).
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import phonenumbers
from starlette.config import Config

from portal.i18n import KNOWN_LOCALES
from portal.locale_codes import canonical
from portal.sip2.client import LOOPBACK


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _bool(value: str) -> bool:
    if value.lower() in ("true", "1", "yes", "on"):
        return True
    if value.lower() in ("false", "0", "no", "off", ""):
        return False
    raise ValueError(f"not a true/false value: {value!r}")


def _setting(
    default: Any,
    env: str,
    doc: str,
    *,
    parse: Callable[[str], Any] = str,
    shown: str | None = None,
) -> Any:
    """`shown` is how the default reads in the documentation, when not the value itself."""
    return field(
        default=default,
        metadata={"env": env, "doc": doc, "parse": parse, "shown": shown},
    )


_LIBRARY_LOCALES = tuple(KNOWN_LOCALES)

# The character encodings a library system's SIP2 server uses, by the names operators write.
SIP2_ENCODINGS = {
    "cp850": "cp850",
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "latin-1": "latin-1",
    "latin1": "latin-1",
    "iso-8859-1": "latin-1",
}


@dataclass(frozen=True)
class Settings:
    data_dir: Path = _setting(
        Path("data"),
        "PORTAL_DATA_DIR",
        "Folder for the embedded database and the development secret.",
        parse=Path,
        shown="./data",
    )
    # Empty means the embedded default, worked out from data_dir in __post_init__.
    database_url: str = _setting(
        "",
        "PORTAL_DATABASE_URL",
        "Database URL: `sqlite://PATH` or `postgres://user:pass@host:port/db`. On PostgreSQL "
        "each worker keeps up to 16 connections; `?maxsize=N` at the end of the URL sets "
        "another number.",
        shown="`sqlite://` + the data folder + `/portal.sqlite3`",
    )
    secret_key: str = field(
        default_factory=lambda: secrets.token_urlsafe(32),
        repr=False,
        metadata={
            "env": "PORTAL_SECRET_KEY",
            "doc": "Secret for keyed hashes of card numbers, tokens and sessions. Required "
            "outside development mode; in development it is generated once into the data folder.",
            "parse": str,
            "shown": "none",
        },
    )
    public_url: str = _setting(
        "",
        "PORTAL_PUBLIC_URL",
        "The portal's address as patrons reach it, e.g. `https://privacy.library.example` "
        "(scheme, host, and port when not the usual one; no path). Signed receipts link to "
        "it, and requests naming any other host in `Host` are refused (400). Required outside "
        "development mode; in development, empty means any host, links from the request.",
        shown="none",
    )
    allowed_hosts: tuple[str, ...] = _setting(
        (),
        "PORTAL_ALLOWED_HOSTS",
        "Comma-separated further host names the portal answers to besides the public "
        "address's, e.g. an internal name library systems call the API by (`*.example.org` "
        "for its subdomains). Nothing signed ever names them.",
        parse=_csv,
        shown="none",
    )
    dev_mode: bool = _setting(
        False,
        "PORTAL_DEV_MODE",
        "`true` enables the demo patron and demo helpers. Never in production.",
        parse=_bool,
    )
    https: bool = _setting(
        False,
        "PORTAL_HTTPS",
        "`true` marks cookies `Secure` and sends HSTS; set whenever served over HTTPS.",
        parse=_bool,
    )
    locales: tuple[str, ...] = _setting(
        _LIBRARY_LOCALES,
        "PORTAL_LOCALES",
        "Comma-separated enabled locales; notices must exist in each (`zh_Hant_HK`, a "
        "regional variant, may read `zh_Hant`'s).",
        parse=_csv,
        shown="all eleven",
    )
    default_locale: str = _setting(
        "en",
        "PORTAL_DEFAULT_LOCALE",
        "Used when neither the patron nor the browser picks a language.",
    )
    timezone: str = _setting(
        "America/New_York",
        "PORTAL_TIMEZONE",
        "The library's IANA time zone: dates shown, birthdays, daily jobs.",
    )
    phone_region: str = _setting(
        "US",
        "PORTAL_PHONE_REGION",
        "Where a phone number a patron gives without a country code is read as dialled from "
        "(ISO 3166 two letters): kept as E.164.",
        parse=lambda raw: raw.strip().upper(),
    )
    session_minutes: int = _setting(
        30, "PORTAL_SESSION_MINUTES", "Idle minutes before a session ends.", parse=int
    )
    session_hours: int = _setting(
        12,
        "PORTAL_SESSION_HOURS",
        "Hours after which a session ends however active (shared computers).",
        parse=int,
    )
    signin_attempts: int = _setting(
        5,
        "PORTAL_SIGNIN_ATTEMPTS",
        "Failed sign-ins allowed per card and per client in the window.",
        parse=int,
    )
    signin_window_seconds: int = _setting(
        900,
        "PORTAL_SIGNIN_WINDOW_SECONDS",
        "Length of that window; the throttled page tells the patron how long to wait.",
        parse=int,
    )
    pin_guesses_per_day: int = _setting(
        10,
        "PORTAL_PIN_GUESSES_PER_DAY",
        "Wrong PINs allowed per card in a day (whatever the network).",
        parse=int,
    )
    pin_guesses_before_hold: int = _setting(
        20,
        "PORTAL_PIN_GUESSES_BEFORE_HOLD",
        "Wrong PINs per card in 30 days after which its sign-in is held until the patron uses "
        "a setup code or the desk unlocks it; the patron's record says so.",
        parse=int,
    )
    setup_code_hours: int = _setting(
        72, "PORTAL_SETUP_CODE_HOURS", "Validity of a one-time PIN setup code.", parse=int
    )
    reconsent_grace_days: int = _setting(
        90,
        "PORTAL_RECONSENT_GRACE_DAYS",
        "Days to answer a materially changed notice before the old consent ends and its "
        "retained data is erased.",
        parse=int,
    )
    majority_grace_days: int = _setting(
        30,
        "PORTAL_MAJORITY_GRACE_DAYS",
        "Days a patron who came of age has to confirm the consents a guardian gave.",
        parse=int,
    )
    staff_session_minutes: int = _setting(
        10,
        "PORTAL_STAFF_SESSION_MINUTES",
        "Idle minutes before a staff session at the desk ends.",
        parse=int,
    )
    staff_session_hours: int = _setting(
        9,
        "PORTAL_STAFF_SESSION_HOURS",
        "Hours after which a staff session ends however active (one shift).",
        parse=int,
    )
    handover_idle_minutes: int = _setting(
        5,
        "PORTAL_HANDOVER_IDLE_MINUTES",
        "Idle minutes after which a screen handed over to a patron clears itself.",
        parse=int,
    )
    oidc_issuer: str = _setting(
        "",
        "PORTAL_OIDC_ISSUER",
        "The library's OpenID Connect provider for staff sign-in (its issuer URL; discovery "
        "is read from it). Empty: staff use local accounts (`portal staff add`).",
        shown="none",
    )
    oidc_client_id: str = _setting(
        "", "PORTAL_OIDC_CLIENT_ID", "The portal's client id at that provider.", shown="none"
    )
    oidc_client_secret: str = field(
        default="",
        repr=False,
        metadata={
            "env": "PORTAL_OIDC_CLIENT_SECRET",
            "doc": "The portal's client secret at that provider.",
            "parse": str,
            "shown": "none",
        },
    )
    oidc_groups_claim: str = _setting(
        "groups",
        "PORTAL_OIDC_GROUPS_CLAIM",
        "The ID-token claim that lists the staff member's groups.",
    )
    oidc_desk_groups: tuple[str, ...] = _setting(
        ("library-desk",),
        "PORTAL_OIDC_DESK_GROUPS",
        "Comma-separated groups whose members get the desk role.",
        parse=_csv,
        shown="`library-desk`",
    )
    oidc_officer_groups: tuple[str, ...] = _setting(
        ("library-privacy",),
        "PORTAL_OIDC_OFFICER_GROUPS",
        "Comma-separated groups whose members get the privacy-officer role.",
        parse=_csv,
        shown="`library-privacy`",
    )
    forwarded_allow_ips: str = _setting(
        "",
        "PORTAL_FORWARDED_ALLOW_IPS",
        "Reverse proxies whose `X-Forwarded-For` is trusted, for per-client throttling.",
        shown="none",
    )
    system_secrets_file: Path | None = _setting(
        None,
        "PORTAL_SYSTEM_SECRETS_FILE",
        "A TOML file of the connected systems' signing secrets, one line each: "
        '`ils = "whsec_…"` (`portal system-secret` makes one). Every system the catalog '
        "declares needs one, or publishing and delivery refuse to start (in development "
        "mode they are generated into the data folder).",
        parse=Path,
        shown="none",
    )
    system_allowed_addresses: tuple[str, ...] = _setting(
        (),
        "PORTAL_SYSTEM_ALLOWED_ADDRESSES",
        "Comma-separated host names and addresses or networks (`10.2.0.0/16`, `fd00::/8`) a "
        "connected system's endpoint may be on although they are internal (loopback, private, "
        "link-local, unique-local), and plain HTTP to a loopback host named here. Outside "
        "development mode every other such endpoint is refused at publishing and at delivery.",
        parse=_csv,
        shown="none",
    )
    receipt_keys_file: Path | None = _setting(
        None,
        "PORTAL_RECEIPT_KEYS_FILE",
        "A JSON file of the keys that sign consent receipts: the current private key and the "
        "public keys of retired ones, so older receipts still verify (`portal receipt-key "
        "rotate` creates or rotates it). Every process and host needs the same file. Unset: "
        "no receipts (in development mode it is generated into the data folder).",
        parse=Path,
        shown="none",
    )
    backup_recipients: tuple[str, ...] = _setting(
        (),
        "PORTAL_BACKUP_RECIPIENTS",
        "Comma-separated age public keys (`age1…`) that `portal backup` encrypts to; each "
        "comes from `portal backup-identity`, run on the machine that keeps the backups. "
        "Only the public half is ever on the server. Unset: `portal backup` refuses.",
        parse=_csv,
        shown="none",
    )
    key_backup_max_age_hours: int = _setting(
        24,
        "PORTAL_KEY_BACKUP_MAX_AGE_HOURS",
        "Hours after which `portal restore --keys` refuses a key backup (`portal backup "
        "--keys`). Every hour a key backup is kept is an hour in which a withdrawal could be "
        "undone by a restore: one day covers a nightly database backup.",
        parse=int,
    )
    delivery_in_process: bool = _setting(
        True,
        "PORTAL_DELIVERY_IN_PROCESS",
        "`true`: `portal serve` delivers requests to connected systems itself. `false` when "
        "`portal deliver` runs as a separate service.",
        parse=_bool,
    )
    delivery_poll_seconds: float = _setting(
        2.0,
        "PORTAL_DELIVERY_POLL_SECONDS",
        "How often a delivery worker looks for requests that are due.",
        parse=float,
    )
    delivery_retry_seconds: float = _setting(
        30.0,
        "PORTAL_DELIVERY_RETRY_SECONDS",
        "Wait before the first retry of a failed delivery; it doubles with each failure up "
        "to 6 hours (±25 % at random), for up to 3 days.",
        parse=float,
    )
    delivery_lease_seconds: float = _setting(
        60.0,
        "PORTAL_DELIVERY_LEASE_SECONDS",
        "How long a worker holds a request it is sending: no other worker sends it "
        "meanwhile, and after a crash it is sent again once this has passed.",
        parse=float,
    )

    identity_source: str = _setting(
        "portal",
        "PORTAL_IDENTITY_SOURCE",
        "Who checks a patron's card and PIN: `portal` (PINs the patrons set in the portal) or "
        "`sip2` (the library system, over SIP2: patrons sign in with the PIN it already holds).",
    )
    sip2_host: str = _setting(
        "", "PORTAL_SIP2_HOST", "The library system's SIP2 server (its host name).", shown="none"
    )
    sip2_port: int = _setting(6001, "PORTAL_SIP2_PORT", "Its SIP2 port.", parse=int)
    sip2_ca_file: str = _setting(
        "",
        "PORTAL_SIP2_CA_FILE",
        "CA certificates (PEM) that the SIP2 server's TLS certificate is verified against. "
        "Empty: the system's CAs.",
        shown="none",
    )
    sip2_plain_loopback: bool = _setting(
        False,
        "PORTAL_SIP2_PLAIN_LOOPBACK",
        "`true`: plain TCP to a SIP2 host on this machine, for an stunnel that carries TLS "
        "onwards. Refused for any other host; without it, SIP2 is TLS only.",
        parse=_bool,
    )
    sip2_login_user: str = _setting(
        "",
        "PORTAL_SIP2_LOGIN_USER",
        "SIP2 login (`CN`) when the library system wants one; empty: no login.",
        shown="none",
    )
    sip2_login_password: str = field(
        default="",
        repr=False,
        metadata={
            "env": "PORTAL_SIP2_LOGIN_PASSWORD",
            "doc": "SIP2 login password (`CO`).",
            "parse": str,
            "shown": "none",
        },
    )
    sip2_location: str = _setting(
        "", "PORTAL_SIP2_LOCATION", "SIP2 location code (`CP`) sent with the login.", shown="none"
    )
    sip2_institution: str = _setting(
        "", "PORTAL_SIP2_INSTITUTION", "SIP2 institution id (`AO`).", shown="none"
    )
    sip2_terminal_password: str = field(
        default="",
        repr=False,
        metadata={
            "env": "PORTAL_SIP2_TERMINAL_PASSWORD",
            "doc": "SIP2 terminal password (`AC`), when the library system wants one.",
            "parse": str,
            "shown": "none",
        },
    )
    sip2_message: str = _setting(
        "patron-information",
        "PORTAL_SIP2_MESSAGE",
        "`patron-information` (SIP2 63) or `patron-status` (SIP2 23) to check a card and PIN.",
    )
    sip2_encoding: str = _setting(
        "cp850",
        "PORTAL_SIP2_ENCODING",
        "The library system's SIP2 character encoding: `cp850` (the protocol's default), "
        "`utf-8` or `latin-1`.",
    )
    sip2_birth_date_field: str = _setting(
        "PB",
        "PORTAL_SIP2_BIRTH_DATE_FIELD",
        "The SIP2 field that carries a patron's birth date as YYYYMMDD: `PB` (Koha, "
        "Evergreen), `BC` (Polaris), or empty when the library system sends none.",
    )
    sip2_pool_size: int = _setting(
        4, "PORTAL_SIP2_POOL_SIZE", "SIP2 connections each process keeps open.", parse=int
    )
    sip2_connect_timeout: float = _setting(
        3.0,
        "PORTAL_SIP2_CONNECT_TIMEOUT",
        "Seconds to connect (and log in) to the SIP2 server, or to wait for a free connection.",
        parse=float,
    )
    sip2_read_timeout: float = _setting(
        5.0,
        "PORTAL_SIP2_READ_TIMEOUT",
        "Seconds to wait for the SIP2 server's answer.",
        parse=float,
    )

    @property
    def uses_identity_provider(self) -> bool:
        return bool(self.oidc_issuer)

    def __post_init__(self) -> None:
        if not self.database_url:
            # Frozen: the one derived default is set the way dataclasses allow.
            object.__setattr__(self, "database_url", f"sqlite://{self.data_dir / 'portal.sqlite3'}")
        # A renamed code ("tl") in an existing configuration means its new one ("fil").
        object.__setattr__(self, "locales", tuple(dict.fromkeys(map(canonical, self.locales))))
        object.__setattr__(self, "default_locale", canonical(self.default_locale))
        unknown = [code for code in self.locales if code not in KNOWN_LOCALES]
        if unknown:
            raise ValueError(f"unknown locale(s) in PORTAL_LOCALES: {', '.join(unknown)}")
        if self.default_locale not in self.locales:
            raise ValueError("PORTAL_DEFAULT_LOCALE must be one of PORTAL_LOCALES")
        for entry in self.system_allowed_addresses:
            if "/" in entry:
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ValueError(
                        f"PORTAL_SYSTEM_ALLOWED_ADDRESSES: {entry!r} is not a network"
                    ) from None
        if self.phone_region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError("PORTAL_PHONE_REGION must be a country's two letters, e.g. US")
        if len(self.secret_key) < 16:
            raise ValueError("PORTAL_SECRET_KEY must be at least 16 characters")
        if self.oidc_issuer and not (self.oidc_client_id and self.oidc_client_secret):
            raise ValueError("PORTAL_OIDC_ISSUER needs PORTAL_OIDC_CLIENT_ID and _SECRET")
        if min(self.delivery_poll_seconds, self.delivery_retry_seconds) <= 0:
            raise ValueError("PORTAL_DELIVERY_POLL_SECONDS and _RETRY_SECONDS must be positive")
        if self.delivery_lease_seconds < 1:
            raise ValueError("PORTAL_DELIVERY_LEASE_SECONDS must be at least 1")
        self._check_identity_source()
        self._check_public_url()
        self._check_backups()
        if "CHANGE-ME" in self.secret_key.upper():
            raise ValueError("PORTAL_SECRET_KEY is still the example value: set a random one")

    def _check_backups(self) -> None:
        if self.key_backup_max_age_hours < 1:
            raise ValueError("PORTAL_KEY_BACKUP_MAX_AGE_HOURS must be at least 1")
        if any(not (r.startswith("age1") and r.isalnum()) for r in self.backup_recipients):
            raise ValueError("PORTAL_BACKUP_RECIPIENTS: each must be an age public key, age1…")

    @property
    def public_host(self) -> str:
        """The public address's host name ("" when none is set)."""
        return urlsplit(self.public_url).hostname or ""

    def _check_public_url(self) -> None:
        if not self.public_url:
            return
        parts = urlsplit(self.public_url)
        try:
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            port_ok = False
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.username is not None
            or parts.password is not None
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
            or not port_ok
        ):
            raise ValueError(
                "PORTAL_PUBLIC_URL must be the portal's address alone, like "
                "https://privacy.library.example"
            )
        object.__setattr__(self, "public_url", f"{parts.scheme}://{parts.netloc}".lower())

    @property
    def uses_sip2(self) -> bool:
        return self.identity_source == "sip2"

    def _check_identity_source(self) -> None:
        if self.identity_source not in ("portal", "sip2"):
            raise ValueError("PORTAL_IDENTITY_SOURCE must be `portal` or `sip2`")
        if self.sip2_message not in ("patron-information", "patron-status"):
            raise ValueError("PORTAL_SIP2_MESSAGE must be `patron-information` or `patron-status`")
        if self.sip2_encoding.lower() not in SIP2_ENCODINGS:
            raise ValueError("PORTAL_SIP2_ENCODING must be `cp850`, `utf-8` or `latin-1`")
        object.__setattr__(self, "sip2_encoding", SIP2_ENCODINGS[self.sip2_encoding.lower()])
        field_code = self.sip2_birth_date_field
        if field_code and not (
            len(field_code) == 2 and field_code.isascii() and field_code.isupper()
        ):
            raise ValueError(
                "PORTAL_SIP2_BIRTH_DATE_FIELD must be a two-letter SIP2 field or empty"
            )
        if not self.uses_sip2:
            return
        if not self.sip2_host:
            raise ValueError("PORTAL_IDENTITY_SOURCE=sip2 needs PORTAL_SIP2_HOST")
        if self.sip2_plain_loopback and self.sip2_host not in LOOPBACK:
            raise ValueError(
                "PORTAL_SIP2_PLAIN_LOOPBACK is only for a SIP2 host on this machine (an "
                "stunnel): use TLS for any other host"
            )
        if self.sip2_ca_file and not Path(self.sip2_ca_file).is_file():
            raise ValueError("PORTAL_SIP2_CA_FILE: no such file")
        if self.sip2_pool_size < 1 or min(self.sip2_connect_timeout, self.sip2_read_timeout) <= 0:
            raise ValueError("PORTAL_SIP2_POOL_SIZE and the SIP2 timeouts must be positive")

    @classmethod
    def from_environment(cls, env_file: str | None = None) -> Settings:
        config = Config(env_file)
        values: dict[str, Any] = {}
        for setting in fields(cls):
            raw = config(setting.metadata["env"], default=None)
            if raw is not None:
                try:
                    values[setting.name] = setting.metadata["parse"](raw)
                except ValueError as error:
                    raise ValueError(f"{setting.metadata['env']}: {error}") from None
        if not values.get("secret_key"):
            settings = cls(**values)  # the declared defaults, to know dev mode and the folder
            if not settings.dev_mode:
                raise ValueError("PORTAL_SECRET_KEY is required outside development mode")
            values["secret_key"] = _development_secret(settings.data_dir)
        return cls(**values)


def settings_table() -> str:
    """The README's settings table, from the declarations above."""
    rows = ["| variable | meaning | default |", "|---|---|---|"]
    for setting in fields(Settings):
        shown = setting.metadata["shown"]
        if shown is None:
            default = setting.default
            shown = f"`{str(default).lower() if isinstance(default, bool) else default}`"
        rows.append(f"| `{setting.metadata['env']}` | {setting.metadata['doc']} | {shown} |")
    return "\n".join(rows)


DEVELOPMENT_SECRET = "dev-secret"  # noqa: S105 (the file's name, not a secret)


def _development_secret(data_dir: Path) -> str:
    # Kept in the data folder so sessions survive a restart of the development server.
    path = data_dir / DEVELOPMENT_SECRET
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    if not data_dir.exists():
        # Private whatever the umask, as `portal serve` requires (portal.db.create_data_files).
        data_dir.mkdir(parents=True, mode=0o700)
        data_dir.chmod(0o700)
    secret = secrets.token_urlsafe(32)
    # Made 0600 from the start, not chmod-ed after: it is never readable by others at all.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(secret)
    return secret
