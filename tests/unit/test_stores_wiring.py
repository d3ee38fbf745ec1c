"""A store is one package and one registry line: the database loads its models, its pages
are served, and the erasing use cases load no web code."""

from __future__ import annotations

import subprocess
import sys

from starlette.routing import Route

from portal.db import MODEL_MODULES
from portal.stores import views as store_views
from portal.stores.registry import PAGES, STORES


def test_the_database_loads_every_stores_models() -> None:
    modules = {model.__module__ for store in STORES.values() for model in store.models}
    assert modules <= set(MODEL_MODULES)
    stores_listed = {name for name in MODEL_MODULES if name.startswith("portal.stores.")}
    assert stores_listed == modules, "a store's models module named but not registered"


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
