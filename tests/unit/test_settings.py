"""Settings: one frozen object, each setting declared once (default, variable, meaning), and
the README's table generated from those declarations."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from portal.i18n import KNOWN_LOCALES
from portal.settings import Settings, settings_table

ROOT = Path(__file__).resolve().parents[2]
VARIABLES = [setting.metadata["env"] for setting in fields(Settings)]


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_the_readme_table_is_the_declared_settings() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert settings_table() in readme, "README settings table is stale: paste settings_table()"


def test_every_setting_is_read_from_its_variable(clean_environment: pytest.MonkeyPatch) -> None:
    changed = {
        "PORTAL_DATA_DIR": "elsewhere",
        "PORTAL_DATABASE_URL": "postgres://portal@db/portal",
        "PORTAL_SECRET_KEY": "a-secret-that-is-long-enough",
        "PORTAL_PUBLIC_URL": "https://Privacy.Library.example/",
        "PORTAL_ALLOWED_HOSTS": "portal.internal, 10.0.0.7",
        "PORTAL_DEV_MODE": "true",
        "PORTAL_HTTPS": "true",
        "PORTAL_LOCALES": "en, ar",
        "PORTAL_DEFAULT_LOCALE": "ar",
        "PORTAL_TIMEZONE": "Europe/Berlin",
        "PORTAL_PHONE_REGION": "de",
        "PORTAL_SESSION_MINUTES": "11",
        "PORTAL_SESSION_HOURS": "3",
        "PORTAL_SIGNIN_ATTEMPTS": "12",
        "PORTAL_SIGNIN_WINDOW_SECONDS": "13",
        "PORTAL_PIN_GUESSES_PER_DAY": "7",
        "PORTAL_PIN_GUESSES_BEFORE_HOLD": "8",
        "PORTAL_SETUP_CODE_HOURS": "14",
        "PORTAL_RECONSENT_GRACE_DAYS": "15",
        "PORTAL_MAJORITY_GRACE_DAYS": "16",
        "PORTAL_FORWARDED_ALLOW_IPS": "10.0.0.1",
        "PORTAL_STAFF_SESSION_MINUTES": "17",
        "PORTAL_STAFF_SESSION_HOURS": "18",
        "PORTAL_HANDOVER_IDLE_MINUTES": "19",
        "PORTAL_OIDC_ISSUER": "https://id.library.example",
        "PORTAL_OIDC_CLIENT_ID": "portal",
        "PORTAL_OIDC_CLIENT_SECRET": "a-client-secret",
        "PORTAL_OIDC_GROUPS_CLAIM": "roles",
        "PORTAL_OIDC_DESK_GROUPS": "circulation, registration",
        "PORTAL_OIDC_OFFICER_GROUPS": "privacy",
        "PORTAL_SYSTEM_SECRETS_FILE": "/etc/portal/system-secrets.toml",
        "PORTAL_SYSTEM_ALLOWED_ADDRESSES": "10.2.0.0/16, relay.internal",
        "PORTAL_RECEIPT_KEYS_FILE": "/etc/portal/receipt-keys.json",
        "PORTAL_BACKUP_RECIPIENTS": "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2el"
        "w8zmrj2kg5sfn9aqmcac8p",
        "PORTAL_KEY_BACKUP_MAX_AGE_HOURS": "6",
        "PORTAL_DELIVERY_IN_PROCESS": "false",
        "PORTAL_DELIVERY_POLL_SECONDS": "0.5",
        "PORTAL_DELIVERY_RETRY_SECONDS": "10",
        "PORTAL_DELIVERY_LEASE_SECONDS": "120",
        "PORTAL_IDENTITY_SOURCE": "sip2",
        "PORTAL_SIP2_HOST": "127.0.0.1",
        "PORTAL_SIP2_PORT": "6443",
        "PORTAL_SIP2_CA_FILE": __file__,  # any file that exists
        "PORTAL_SIP2_PLAIN_LOOPBACK": "true",
        "PORTAL_SIP2_LOGIN_USER": "portal",
        "PORTAL_SIP2_LOGIN_PASSWORD": "sip-secret",
        "PORTAL_SIP2_LOCATION": "Main desk",
        "PORTAL_SIP2_INSTITUTION": "MAIN",
        "PORTAL_SIP2_TERMINAL_PASSWORD": "terminal",
        "PORTAL_SIP2_MESSAGE": "patron-status",
        "PORTAL_SIP2_ENCODING": "UTF8",
        "PORTAL_SIP2_BIRTH_DATE_FIELD": "BC",
        "PORTAL_SIP2_POOL_SIZE": "2",
        "PORTAL_SIP2_CONNECT_TIMEOUT": "1.5",
        "PORTAL_SIP2_READ_TIMEOUT": "2.5",
    }
    assert set(changed) == set(VARIABLES), "a new setting needs a line here"
    for name, value in changed.items():
        clean_environment.setenv(name, value)
    settings = Settings.from_environment()
    defaults = Settings()
    for setting in fields(Settings):
        assert getattr(settings, setting.name) != getattr(defaults, setting.name), setting.name
    assert settings.locales == ("en", "ar")
    assert settings.session_minutes == 11
    assert settings.oidc_desk_groups == ("circulation", "registration")
    assert settings.delivery_poll_seconds == 0.5
    assert settings.sip2_encoding == "utf-8"  # as operators write it, as Python names it
    assert settings.public_url == "https://privacy.library.example"
    assert settings.public_host == "privacy.library.example"
    assert settings.allowed_hosts == ("portal.internal", "10.0.0.7")


@pytest.mark.parametrize(
    "address",
    [
        "privacy.library.example",
        "ftp://privacy.library.example",
        "https://privacy.library.example/portal",
        "https://privacy.library.example/?next=x",
        "https://user@privacy.library.example",
        "https://privacy.library.example:99999",
    ],
)
def test_the_public_address_is_a_scheme_and_a_host_alone(address: str) -> None:
    with pytest.raises(ValueError, match="PORTAL_PUBLIC_URL"):
        Settings(public_url=address)


def test_delivery_timings_must_be_usable() -> None:
    with pytest.raises(ValueError, match="PORTAL_DELIVERY_POLL_SECONDS"):
        Settings(delivery_poll_seconds=0)
    with pytest.raises(ValueError, match="PORTAL_DELIVERY_LEASE_SECONDS"):
        Settings(delivery_lease_seconds=0.5)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"identity_source": "ldap"}, "PORTAL_IDENTITY_SOURCE"),
        ({"identity_source": "sip2"}, "PORTAL_SIP2_HOST"),
        ({"sip2_encoding": "ebcdic"}, "PORTAL_SIP2_ENCODING"),
        ({"sip2_message": "checkout"}, "PORTAL_SIP2_MESSAGE"),
        ({"sip2_birth_date_field": "birth"}, "PORTAL_SIP2_BIRTH_DATE_FIELD"),
        (
            {"identity_source": "sip2", "sip2_host": "10.0.0.5", "sip2_plain_loopback": True},
            "PORTAL_SIP2_PLAIN_LOOPBACK",
        ),
        (
            {"identity_source": "sip2", "sip2_host": "ils.example", "sip2_ca_file": "/nowhere"},
            "PORTAL_SIP2_CA_FILE",
        ),
    ],
)
def test_the_library_system_settings_are_checked_at_start(
    changes: dict[str, object], named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        Settings(**changes)  # type: ignore[arg-type]


def test_an_identity_provider_needs_its_client_credentials() -> None:
    with pytest.raises(ValueError, match="PORTAL_OIDC_CLIENT_ID"):
        Settings(oidc_issuer="https://id.library.example")


def test_unset_variables_give_the_declared_defaults(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("PORTAL_SECRET_KEY", "a-secret-that-is-long-enough")
    settings = Settings.from_environment()
    defaults = Settings()
    for setting in fields(Settings):
        if setting.name != "secret_key":
            assert getattr(settings, setting.name) == getattr(defaults, setting.name)
    assert settings.database_url == "sqlite://data/portal.sqlite3"


def test_a_malformed_value_names_its_variable(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("PORTAL_SECRET_KEY", "a-secret-that-is-long-enough")
    clean_environment.setenv("PORTAL_SESSION_MINUTES", "half an hour")
    with pytest.raises(ValueError, match="PORTAL_SESSION_MINUTES"):
        Settings.from_environment()


def test_unknown_locale_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown locale"):
        Settings(locales=("en", "xx"))


def test_secret_is_required_outside_development(clean_environment: pytest.MonkeyPatch) -> None:
    clean_environment.setenv("PORTAL_DEV_MODE", "false")
    with pytest.raises(ValueError, match="PORTAL_SECRET_KEY"):
        Settings.from_environment()


def test_the_example_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="example value"):
        Settings(secret_key="CHANGE-ME-TO-A-LONG-RANDOM-STRING")


def test_the_example_environment_offers_every_language_by_its_current_code() -> None:
    """deploy/portal.env.example is what a library copies: a renamed code ("tl") or a
    missing language would carry on into every new installation."""
    lines = (ROOT / "deploy" / "portal.env.example").read_text(encoding="utf-8").splitlines()
    listed = next(line.split("=", 1)[1] for line in lines if line.startswith("PORTAL_LOCALES="))
    assert listed.split(",") == list(KNOWN_LOCALES)
