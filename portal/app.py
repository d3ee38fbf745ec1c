"""Builds the application: routes, middleware and lifespan, all explicit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from tortoise.contrib.starlette import RegisterTortoise

from portal import health
from portal.access_log import AccessLogMiddleware
from portal.api import views as api_views
from portal.consent import views as consent_views
from portal.db import tortoise_config
from portal.erasure import views as erasure_views
from portal.http import redirect_to
from portal.minors import views as minors_views
from portal.patrons import views as patron_views
from portal.security.headers import SecurityHeadersMiddleware
from portal.security.origin import CrossOriginGuard
from portal.security.ratelimit import FailureThrottle
from portal.settings import Settings
from portal.templating import build_environment, render
from portal.visit import VisitMiddleware

STATIC_DIR = Path(__file__).resolve().parent / "static"


async def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):
        raise exc
    if exc.status_code == 401:
        return redirect_to(request, "patrons.signin_form")
    if "locale" not in request.scope.get("state", {}):
        return Response(status_code=exc.status_code)  # outside the patron-facing pages
    return render(
        request,
        "errors/error.html",
        {"status": exc.status_code, "message": None},
        status_code=exc.status_code,
    )


async def _server_error(request: Request, exc: Exception) -> Response:
    return render(request, "errors/error.html", {"status": 500, "message": None}, status_code=500)


def create_app(settings: Settings) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with RegisterTortoise(app, config=tortoise_config(settings.database_url)):
            yield

    app = Starlette(
        routes=[
            *health.routes,
            *consent_views.routes,
            *patron_views.routes,
            *erasure_views.routes,
            *minors_views.routes,
            *api_views.routes,
            Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        middleware=[
            Middleware(AccessLogMiddleware),
            Middleware(SecurityHeadersMiddleware, https=settings.https),
            Middleware(CrossOriginGuard),
            Middleware(VisitMiddleware, settings=settings),
        ],
        exception_handlers={HTTPException: _http_error, 500: _server_error},
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.templates = build_environment(settings.timezone, reload=settings.dev_mode)
    app.state.url_paths = {}
    app.state.signin_throttle = FailureThrottle(
        settings.signin_attempts, settings.signin_window_seconds
    )
    return app
