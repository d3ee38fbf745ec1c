"""The baseline for the consent-check benchmark: a bare Starlette endpoint that reads the
same JSON body and does one raw indexed lookup of the card on the same database — no
middleware, no token, no catalog. The gap to the portal is what the portal adds per check."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tortoise.contrib.starlette import RegisterTortoise

from portal.credentials.policy import KeyPurpose, keyed_hash
from portal.db import fetch_rows, tortoise_config
from portal.patrons.policy import normalise_card
from portal.settings import Settings

settings = Settings.from_environment()


async def check(request: Request) -> Response:
    body = json.loads(await request.body())
    lookup = keyed_hash(
        settings.secret_key, KeyPurpose.CARD, normalise_card(body["card_number"]) or ""
    )
    rows = await fetch_rows("SELECT id FROM patron WHERE card_lookup = ?", lookup)
    return JSONResponse({"service": body["service"], "status": "on" if rows else "unknown"})


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with RegisterTortoise(app, config=tortoise_config(settings.database_url)):
        yield


app = Starlette(routes=[Route("/api/v1/consent-check", check, methods=["POST"])], lifespan=lifespan)
