"""Every store's pages, gathered for portal.app like any other domain's routes. A new store
adds its `views.routes` here (tests/unit/test_stores_wiring.py fails until it does)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from portal.stores.reading_history import views as reading_history
from portal.stores.saved_lists import views as saved_lists

routes: list[BaseRoute] = [*reading_history.routes, *saved_lists.routes]
