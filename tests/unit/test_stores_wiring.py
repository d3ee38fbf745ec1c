"""A store is one package, one registry line and its pages' line: the database loads its
models, its pages are served, and the erasing use cases load no web code."""

from __future__ import annotations

import asyncio
import subprocess
import sys

from starlette.routing import Route
from tortoise import Tortoise

from portal.db import tortoise_config
from portal.stores import views as store_views
from portal.stores.registry import PAGES, STORES


def test_the_database_loads_every_stores_models() -> None:
    async def registered() -> set[str]:
        await Tortoise.init(config=tortoise_config("sqlite://:memory:"))
        try:
            return set(Tortoise.apps["models"])
        finally:
            await Tortoise.close_connections()

    names = asyncio.run(registered())
    assert {model.__name__ for store in STORES.values() for model in store.models} <= names


def test_every_registered_store_serves_its_page() -> None:
    served = {route.name for route in store_views.routes if isinstance(route, Route)}
    assert set(PAGES.values()) <= served


def test_a_withdrawal_loads_no_web_code() -> None:
    # A fresh interpreter: this test process has loaded the app already.
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, portal.decisions.services, portal.erasure.services;"
            "print('\\n'.join(sorted(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    web = [name for name in loaded if name.split(".")[0] in ("starlette", "jinja2")]
    assert web == []
    assert "portal.stores.pages" not in loaded
