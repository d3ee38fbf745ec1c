"""Settings: one frozen object; every variable documented, in code and in the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from portal import settings as settings_module
from portal.settings import SETTINGS_DOC, Settings

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_read_from_the_environment_is_documented() -> None:
    source = Path(settings_module.__file__).read_text(encoding="utf-8")
    read = set(re.findall(r'config\(\s*"(PORTAL_\w+)"', source))
    assert read == set(SETTINGS_DOC)


def test_every_setting_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [name for name in SETTINGS_DOC if f"`{name}`" not in readme]
    assert missing == []


def test_unknown_locale_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown locale"):
        Settings(locales=("en", "xx"))


def test_secret_is_required_outside_development(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("PORTAL_SECRET_KEY", raising=False)
    monkeypatch.setenv("PORTAL_DEV_MODE", "false")
    with pytest.raises(ValueError, match="PORTAL_SECRET_KEY"):
        Settings.from_environment()
