"""The layers import one way (STYLE.md rule 2): policy is pure, services never touch HTTP."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PORTAL = Path(__file__).resolve().parent.parent / "portal"
HTTP = ("starlette", "jinja2", "portal.templating", "portal.http", "portal.visit")
FORBIDDEN = {
    "policy.py": ("tortoise", *HTTP, "portal"),
    "services.py": HTTP,
    "models.py": HTTP,
    "state.py": HTTP,
    "ledger.py": HTTP,
    "suspension.py": HTTP,
}
# A policy module may import another pure policy module.
ALLOWED_IN_POLICY = (
    "portal.catalog.policy",
    "portal.consent.policy",
    "portal.patrons.policy",
    "portal.minors.policy",
)


def imported_modules(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


LAYERED = sorted(p for p in PORTAL.rglob("*.py") if p.name in FORBIDDEN)


@pytest.mark.parametrize("path", LAYERED, ids=lambda p: str(p.relative_to(PORTAL)))
def test_layer_imports_only_what_it_may(path: Path) -> None:
    forbidden = FORBIDDEN[path.name]
    for module in imported_modules(path):
        if path.name == "policy.py" and module in ALLOWED_IN_POLICY:
            continue
        assert not module.startswith(forbidden), f"{path.name} imports {module}"


def test_services_never_translate() -> None:
    for path in PORTAL.rglob("services.py"):
        assert "portal.i18n" not in imported_modules(path), path
