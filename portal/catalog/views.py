"""Liveness and readiness for the operator's process supervisor or load balancer: ready once
the database answers and a catalog has been published."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from portal.catalog.services import Readiness, readiness
from portal.sip2.client import IlsUnavailable, Sip2Client

ILS_PROBE_SECONDS = 1.5
ILS_PROBE_CACHE_SECONDS = 5.0


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


@dataclass
class LibrarySystemProbe:
    """Whether the library system answers, for /readyz: asked at most once per few seconds
    per process (a cache that may be a little old), so a flood of probes never takes the
    connections sign-ins need; bounded well below a load balancer's probe timeout, so a
    library system that hangs never makes the portal look down."""

    ils: Sip2Client
    asked_at: float = float("-inf")
    state: str = "unreachable"

    async def current(self) -> str:
        if time.monotonic() - self.asked_at < ILS_PROBE_CACHE_SECONDS:
            return self.state
        self.asked_at = time.monotonic()  # meanwhile, other probes answer from the cache
        try:
            async with asyncio.timeout(ILS_PROBE_SECONDS):
                await self.ils.probe()
        except (IlsUnavailable, TimeoutError):
            self.state = "unreachable"
        else:
            self.state = "reachable"
        return self.state


async def readyz(request: Request) -> Response:
    """Ready when the database answers and a catalog has been published. When the library
    system checks cards and PINs, whether it answers is a line of its own: signed-in
    patrons keep working without it, so the portal stays ready."""
    state = await readiness()
    body = {"status": state.value}
    probe: LibrarySystemProbe | None = request.app.state.ils_probe
    if probe is not None:
        body["library_system"] = await probe.current()
    return JSONResponse(body, status_code=200 if state is Readiness.READY else 503)


routes = [
    Route("/healthz", healthz, methods=["GET"], name="health.live"),
    Route("/readyz", readyz, methods=["GET"], name="health.ready"),
]
