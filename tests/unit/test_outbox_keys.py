"""Signing secrets of connected systems: from their own file, never the catalog; required for
every declared system, except that development mode makes them."""

from __future__ import annotations

from pathlib import Path

import pytest

from portal.outbox.keys import SecretsError, load_secrets, require_secrets
from portal.outbox.policy import new_secret, secret_bytes
from portal.settings import Settings
from tests.factories import SECRET


def test_secrets_are_read_from_the_file_the_setting_names(tmp_path: Path) -> None:
    secret = new_secret()
    (tmp_path / "secrets.toml").write_text(f'ils = "{secret}"\n')
    settings = Settings(secret_key=SECRET, system_secrets_file=tmp_path / "secrets.toml")
    assert require_secrets(settings, ["ils"]) == {"ils": secret_bytes(secret)}


def test_a_declared_system_without_a_secret_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "secrets.toml").write_text(f'ils = "{new_secret()}"\n')
    settings = Settings(secret_key=SECRET, system_secrets_file=tmp_path / "secrets.toml")
    with pytest.raises(SecretsError, match="sms_gateway"):
        require_secrets(settings, ["ils", "sms_gateway"])
    with pytest.raises(SecretsError, match="ils"):
        require_secrets(Settings(secret_key=SECRET, data_dir=tmp_path), ["ils"])


def test_a_malformed_secret_or_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "secrets.toml"
    settings = Settings(secret_key=SECRET, system_secrets_file=path)
    path.write_text('ils = "hunter2"\n')
    with pytest.raises(SecretsError, match="'ils'"):
        load_secrets(settings)
    path.write_text("ils = \n")
    with pytest.raises(SecretsError, match="not valid TOML"):
        load_secrets(settings)
    path.unlink()
    with pytest.raises(SecretsError, match="cannot read"):
        load_secrets(settings)


def test_development_mode_makes_missing_secrets_once_and_keeps_them(tmp_path: Path) -> None:
    settings = Settings(secret_key=SECRET, data_dir=tmp_path, dev_mode=True)
    made = require_secrets(settings, ["ils"])
    assert require_secrets(settings, ["ils", "sms"])["ils"] == made["ils"]
    assert (tmp_path / "dev-system-secrets.toml").stat().st_mode & 0o077 == 0
