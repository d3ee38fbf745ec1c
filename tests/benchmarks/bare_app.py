"""The baseline for the render benchmark: a bare Starlette endpoint rendering the same
"My privacy" template with the same data, worked out once on the first request — no
middleware, no session, no database per request. The gap to the portal is what the portal
adds per page."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tortoise.contrib.starlette import RegisterTortoise

from portal import i18n
from portal.app import create_app
from portal.catalog.services import published_catalog
from portal.consent.views import privacy_context
from portal.db import tortoise_config
from portal.patrons.services import Identity
from portal.settings import Settings
from portal.web.rendering import render

settings = Settings.from_environment()
PATRON_ID = int(os.environ["BENCH_PATRON_ID"])
_computed: dict[str, object] = {}


async def page(request: Request) -> Response:
    with i18n.use_locale("en"):
        if not _computed:
            patron = Identity(PATRON_ID, None)
            request.state.patron = patron
            _computed["patron"] = patron
            _computed["library_name"] = (await published_catalog()).library_name
            _computed["context"] = await privacy_context(request, patron)
        request.state.patron = _computed["patron"]
        request.state.library_name = _computed["library_name"]
        context = _computed["context"]
        assert isinstance(context, dict)
        return render(request, "consent/privacy.html", context)


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with RegisterTortoise(app, config=tortoise_config(settings.database_url)):
        yield


portal = create_app(settings)  # lends its templates and route names, nothing else
app = Starlette(routes=[Route("/privacy", page), *portal.routes], lifespan=lifespan)
app.state.settings = settings
app.state.templates = portal.state.templates
app.state.url_paths = {}
