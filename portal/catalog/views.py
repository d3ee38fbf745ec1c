"""Liveness and readiness for the operator's process supervisor or load balancer: ready once
the database answers and a catalog has been published."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from portal.catalog.services import Readiness, readiness
from portal.sip2.client import IlsUnavailable, Sip2Client

ILS_PROBE_SECONDS = 1.5


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready when the database answers and a catalog has been published. When the library
    system checks cards and PINs, whether it answers is a line of its own: signed-in
    patrons keep working without it, so the portal stays ready."""
    state = await readiness()
    body = {"status": state.value}
    ils: Sip2Client | None = request.app.state.ils
    if ils is not None:
        body["library_system"] = await _library_system_state(ils)
    return JSONResponse(body, status_code=200 if state is Readiness.READY else 503)


async def _library_system_state(ils: Sip2Client) -> str:
    # Bounded well below a load balancer's probe timeout: a library system that hangs must
    # not make the portal look down.
    try:
        async with asyncio.timeout(ILS_PROBE_SECONDS):
            await ils.probe()
    except (IlsUnavailable, TimeoutError):
        return "unreachable"
    return "reachable"


routes = [
    Route("/healthz", healthz, methods=["GET"], name="health.live"),
    Route("/readyz", readyz, methods=["GET"], name="health.ready"),
]
