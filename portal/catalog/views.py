"""Liveness and readiness for the operator's process supervisor or load balancer: ready once
the database answers and a catalog has been published."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from portal.catalog.services import Readiness, readiness


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready when the database answers and a catalog has been published."""
    state = await readiness()
    return JSONResponse(
        {"status": state.value}, status_code=200 if state is Readiness.READY else 503
    )


routes = [
    Route("/healthz", healthz, methods=["GET"], name="health.live"),
    Route("/readyz", readyz, methods=["GET"], name="health.ready"),
]
