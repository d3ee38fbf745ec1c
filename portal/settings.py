"""One frozen settings object, read once from the environment.

Every setting is documented in SETTINGS_DOC (the README table is generated from the same
names and a test fails when one is undocumented).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path

from starlette.config import Config

from portal.i18n import KNOWN_LOCALES

SETTINGS_DOC: dict[str, str] = {
    "PORTAL_DATABASE_URL": "Database URL: sqlite://PATH or postgres://user:pass@host:port/db. "
    "Default: SQLite under the data folder.",
    "PORTAL_DATA_DIR": "Folder for the embedded database and the development secret. "
    "Default: ./data.",
    "PORTAL_SECRET_KEY": "Secret for keyed hashes of card numbers and session tokens. Required "
    "outside development mode; in development it is generated once into the data folder.",
    "PORTAL_DEV_MODE": "true enables the demo patron and demo helpers. Never in production.",
    "PORTAL_HTTPS": "true marks cookies Secure (set whenever the portal is served over HTTPS).",
    "PORTAL_LOCALES": "Comma-separated enabled locales; notices must exist in each. "
    "Default: all ten.",
    "PORTAL_DEFAULT_LOCALE": "Locale used when neither the patron nor the browser chooses one.",
    "PORTAL_TIMEZONE": "The library's time zone for dates shown to patrons (IANA name).",
    "PORTAL_SESSION_MINUTES": "Idle minutes before a sign-in session ends. Default: 30.",
    "PORTAL_SIGNIN_ATTEMPTS": "Failed sign-ins allowed per card and per client in the window.",
    "PORTAL_SIGNIN_WINDOW_SECONDS": "Length of the sign-in throttling window.",
    "PORTAL_SETUP_CODE_HOURS": "How long a one-time PIN setup code stays valid. Default: 72.",
    "PORTAL_RECONSENT_GRACE_DAYS": "Days a patron has to answer a materially changed notice before "
    "the old consent expires and its retained data is erased. Default: 90.",
    "PORTAL_FORWARDED_ALLOW_IPS": "Comma-separated addresses of reverse proxies whose "
    "X-Forwarded-For is trusted (for per-client sign-in throttling). Default: none.",
    "PORTAL_MAJORITY_GRACE_DAYS": "Days a patron who came of age has to confirm the consents a "
    "guardian gave before they expire and their retained data is erased. Default: 30.",
}


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite://:memory:"
    data_dir: Path = Path("data")
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32), repr=False)
    dev_mode: bool = False
    https: bool = False
    locales: tuple[str, ...] = tuple(KNOWN_LOCALES)
    default_locale: str = "en"
    timezone: str = "America/New_York"
    session_minutes: int = 30
    signin_attempts: int = 5
    signin_window_seconds: int = 900
    setup_code_hours: int = 72
    reconsent_grace_days: int = 90
    majority_grace_days: int = 30
    forwarded_allow_ips: str = ""

    def __post_init__(self) -> None:
        unknown = [code for code in self.locales if code not in KNOWN_LOCALES]
        if unknown:
            raise ValueError(f"unknown locale(s) in PORTAL_LOCALES: {', '.join(unknown)}")
        if self.default_locale not in self.locales:
            raise ValueError("PORTAL_DEFAULT_LOCALE must be one of PORTAL_LOCALES")
        if len(self.secret_key) < 16:
            raise ValueError("PORTAL_SECRET_KEY must be at least 16 characters")

    @classmethod
    def from_environment(cls, env_file: str | None = None) -> Settings:
        config = Config(env_file)
        data_dir = Path(config("PORTAL_DATA_DIR", default="data"))
        dev_mode = config("PORTAL_DEV_MODE", cast=bool, default=False)
        secret = config("PORTAL_SECRET_KEY", default="")
        if not secret:
            if not dev_mode:
                raise ValueError("PORTAL_SECRET_KEY is required outside development mode")
            secret = _development_secret(data_dir)
        locales = _csv(config("PORTAL_LOCALES", default=",".join(KNOWN_LOCALES)))
        return cls(
            database_url=config(
                "PORTAL_DATABASE_URL", default=f"sqlite://{data_dir / 'portal.sqlite3'}"
            ),
            data_dir=data_dir,
            secret_key=secret,
            dev_mode=dev_mode,
            https=config("PORTAL_HTTPS", cast=bool, default=False),
            locales=locales,
            default_locale=config("PORTAL_DEFAULT_LOCALE", default="en"),
            timezone=config("PORTAL_TIMEZONE", default="America/New_York"),
            session_minutes=config("PORTAL_SESSION_MINUTES", cast=int, default=30),
            signin_attempts=config("PORTAL_SIGNIN_ATTEMPTS", cast=int, default=5),
            signin_window_seconds=config("PORTAL_SIGNIN_WINDOW_SECONDS", cast=int, default=900),
            setup_code_hours=config("PORTAL_SETUP_CODE_HOURS", cast=int, default=72),
            reconsent_grace_days=config("PORTAL_RECONSENT_GRACE_DAYS", cast=int, default=90),
            majority_grace_days=config("PORTAL_MAJORITY_GRACE_DAYS", cast=int, default=30),
            forwarded_allow_ips=config("PORTAL_FORWARDED_ALLOW_IPS", default=""),
        )


def _development_secret(data_dir: Path) -> str:
    # Kept in the data folder so sessions survive a restart of the development server.
    path = data_dir / "dev-secret"
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    path.write_text(secret, encoding="utf-8")
    path.chmod(0o600)
    return secret
