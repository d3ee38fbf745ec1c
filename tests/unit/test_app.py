"""Composition: one constructor builds the app, from the settings it is given."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from portal.app import create_app
from portal.settings import Settings
from tests.factories import SECRET

PORTAL = Path(__file__).resolve().parents[2] / "portal"


def test_create_app_is_the_only_constructor() -> None:
    builders = []
    for path in PORTAL.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Starlette":
                builders.append(str(path.relative_to(PORTAL)))
    assert builders == ["app.py"]
    cli = (PORTAL / "cli" / "__init__.py").read_text(encoding="utf-8")
    assert '"portal.app:from_environment" if several else create_app(settings),' in cli


def test_the_app_is_built_from_the_settings_it_is_given() -> None:
    settings = Settings(secret_key=SECRET)
    app = create_app(settings)
    assert app.state.settings is settings
    names = [route.name for route in app.routes]
    assert len(names) == len(set(names)), "route names are unique"
    for name in names:
        assert re.fullmatch(r"(static|[a-z]+\.[a-z_.]+)", name), f"undotted route name {name}"
