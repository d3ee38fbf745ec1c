"""Liveness and readiness for the operator's process supervisor or load balancer."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tortoise.exceptions import BaseORMException

from portal.catalog.services import is_published


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready when the database answers and a catalog has been published."""
    try:
        published = await is_published()
    except (BaseORMException, OSError):
        return JSONResponse({"status": "database_unavailable"}, status_code=503)
    if not published:
        return JSONResponse({"status": "catalog_not_published"}, status_code=503)
    return JSONResponse({"status": "ready"})


routes = [
    Route("/healthz", healthz, methods=["GET"], name="health.live"),
    Route("/readyz", readyz, methods=["GET"], name="health.ready"),
]
