"""Composition: one constructor builds the app, from the settings it is given."""

from __future__ import annotations

import ast
import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from uvicorn.importer import import_from_string

from portal.app import create_app
from portal.cli import main
from portal.settings import Settings
from tests.factories import SECRET

PORTAL = Path(__file__).resolve().parents[2] / "portal"


# Starlette, and the app.py subclass that logs failures without their text.
APP_CLASSES = ("Starlette", "_Portal")


def test_create_app_is_the_only_constructor() -> None:
    builders = []
    for path in PORTAL.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in APP_CLASSES:
                builders.append(str(path.relative_to(PORTAL)))
    assert builders == ["app.py"]


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Any]:
    """What `portal serve` hands to uvicorn (instead of serving), with the environment of an
    operator who set a secret and a session length."""
    for setting in fields(Settings):
        monkeypatch.delenv(setting.metadata["env"], raising=False)
    monkeypatch.setenv("PORTAL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("PORTAL_SECRET_KEY", SECRET)
    monkeypatch.setenv("PORTAL_PUBLIC_URL", "https://privacy.library.example")
    monkeypatch.setenv("PORTAL_SESSION_MINUTES", "17")
    handed: dict[str, Any] = {}

    def run(app: Any, **options: Any) -> None:
        handed.update(options, app=app)

    monkeypatch.setattr(uvicorn, "run", run)
    return handed


def shape(app: Starlette) -> tuple[list[type], list[str | None]]:
    """What makes two apps the same portal: their middleware and their routes, in order."""
    return [m.cls for m in app.user_middleware], [getattr(r, "name", None) for r in app.routes]


def test_serve_in_one_process_runs_the_app_built_from_the_operators_settings(
    served: dict[str, Any],
) -> None:
    assert main(["serve"]) == 0
    app = served["app"]
    assert served["factory"] is False
    assert app.state.settings == Settings.from_environment()
    assert app.state.settings.session_minutes == 17
    assert shape(app) == shape(create_app(app.state.settings))


def test_each_of_several_workers_builds_the_same_app_from_the_environment(
    served: dict[str, Any],
) -> None:
    """Several workers cannot share one app object: uvicorn gets a factory to import, and
    each worker's app is built by create_app from the settings the operator set."""
    assert main(["serve", "--workers", "3"]) == 0
    assert (served["factory"], served["workers"]) == (True, 3)
    app = import_from_string(served["app"])()
    assert isinstance(app, Starlette)
    assert app.state.settings == Settings.from_environment()
    assert app.state.settings.session_minutes == 17
    assert shape(app) == shape(create_app(app.state.settings))


def test_the_app_is_built_from_the_settings_it_is_given() -> None:
    settings = Settings(secret_key=SECRET, public_url="https://privacy.library.example")
    app = create_app(settings)
    assert app.state.settings is settings
    names = [route.name for route in app.routes]
    assert len(names) == len(set(names)), "route names are unique"
    for name in names:
        assert re.fullmatch(r"(static|[a-z]+\.[a-z_.]+)", name), f"undotted route name {name}"


def test_outside_development_mode_the_app_needs_its_public_address() -> None:
    with pytest.raises(ValueError, match="PORTAL_PUBLIC_URL"):
        create_app(Settings(secret_key=SECRET))
    assert create_app(Settings(secret_key=SECRET, dev_mode=True))
