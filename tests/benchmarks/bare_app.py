"""The baseline for the render benchmark: a bare Starlette endpoint rendering the same
"My privacy" template, with the same data computed once at start-up — no middleware, no
session, no database per request. The gap to the portal is what the portal adds per page."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tortoise import Tortoise

from portal import i18n
from portal.app import create_app
from portal.catalog.services import published_catalog
from portal.consent.services import ServiceOverview, overview
from portal.consent.views import STORE_PAGES
from portal.db import tortoise_config
from portal.patrons.services import SignedIn
from portal.settings import Settings
from portal.templating import render

settings = Settings.from_environment()
PATRON = SignedIn(int(os.environ["BENCH_PATRON_ID"]), None)
_page: dict[str, object] = {}


async def page(request: Request) -> Response:
    request.state.patron = PATRON
    request.state.library_name = _page["library_name"]
    with i18n.use_locale("en"):
        return render(
            request,
            "consent/privacy.html",
            {"services": _page["services"], "store_pages": STORE_PAGES, "flash": None},
        )


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    await Tortoise.init(config=tortoise_config(settings.database_url))
    services: list[ServiceOverview] = await overview(PATRON.patron_id, "en")
    _page["services"] = services
    _page["library_name"] = (await published_catalog()).library_name
    await Tortoise.close_connections()
    yield


portal = create_app(settings)  # lends its templates and route names, nothing else
app = Starlette(routes=[Route("/privacy", page), *portal.routes], lifespan=lifespan)
app.state.settings = settings
app.state.templates = portal.state.templates
app.state.url_paths = {}
