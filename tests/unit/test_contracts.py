"""Every domain package, and every module in it, is held to the order of its files by the
import contracts: a new package (a store, a domain) or module cannot slip past them unnamed."""

from __future__ import annotations

import tomllib
from pathlib import Path

PORTAL = Path(__file__).resolve().parents[2] / "portal"
# Packages with no domain files to order: composition, request plumbing, vendored files,
# and the stores' own registry package (each store inside it is a domain of its own).
NOT_DOMAINS = {"portal.cli", "portal.web", "portal.static", "portal.stores"}


def contracts() -> list[dict]:
    config = tomllib.loads((PORTAL.parent / "pyproject.toml").read_text(encoding="utf-8"))
    found: list[dict] = config["tool"]["importlinter"]["contracts"]
    return found


def packages() -> set[str]:
    found = set()
    for init in PORTAL.rglob("__init__.py"):
        package = init.parent.relative_to(PORTAL.parent)
        found.add(".".join(package.parts))
    return found - {"portal"}


def test_every_domain_package_is_a_container_of_the_inside_each_domain_contract() -> None:
    inside = next(c for c in contracts() if c["name"].startswith("Inside each domain"))
    unheld = packages() - NOT_DOMAINS - set(inside["containers"])
    assert unheld == set(), f"add these to the contract's containers: {sorted(unheld)}"


def test_every_module_of_a_domain_has_its_place_in_the_order() -> None:
    inside = next(c for c in contracts() if c["name"].startswith("Inside each domain"))
    placed = {
        name.strip(" ()")
        for layer in inside["layers"]
        for name in layer.replace("|", ":").split(":")
    }
    unplaced = set()
    for container in inside["containers"]:
        folder = PORTAL.parent.joinpath(*container.split("."))
        for module in folder.glob("*.py"):
            if module.stem != "__init__" and module.stem not in placed:
                unplaced.add(f"{container}.{module.stem}")
    assert unplaced == set(), f"give these a layer in the contract: {sorted(unplaced)}"


def test_no_contract_allows_indirect_imports() -> None:
    assert [c["name"] for c in contracts() if c.get("allow_indirect_imports")] == []
