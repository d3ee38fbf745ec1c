"""Builds the application: routes, middleware and lifespan, all explicit. The one place
that knows every part; nothing imports it but the command line and the tests."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp
from tortoise.contrib.starlette import RegisterTortoise

from portal.api import deletions as api_deletions
from portal.api import oauth
from portal.api import preferences as api_preferences
from portal.api import views as api_views
from portal.api.check import ConsentCheckLane, known_hosts
from portal.api.standings import ClientStandings
from portal.catalog import views as catalog_views
from portal.catalog.services import published_catalog
from portal.consent import views as consent_views
from portal.db import tortoise_config
from portal.decisions import views as decision_views
from portal.desk import handover as handover_views
from portal.desk import handovers
from portal.desk import views as desk_views
from portal.errors import ApiCode, DomainError
from portal.minors import views as minors_views
from portal.officer import views as officer_views
from portal.outbox import worker as delivery
from portal.patrons import access as patron_access
from portal.patrons import views as patron_views
from portal.patrons.ils import sip2_client
from portal.rights import views as rights_views
from portal.rights.policy import has_receipt, receipt_reference
from portal.settings import Settings
from portal.staff import oidc
from portal.staff import views as staff_views
from portal.stores import registry as stores
from portal.stores import views as store_views
from portal.web.access_log import AccessLogMiddleware, write_queued_lines
from portal.web.failures import FailureLog
from portal.web.headers import SecurityHeadersMiddleware, security_headers
from portal.web.limits import BodyLimitMiddleware
from portal.web.origin import MACHINE_PREFIXES, CrossOriginGuard
from portal.web.problems import http_status, json_error
from portal.web.rendering import build_environment, error_message, render
from portal.web.requests import redirect_to
from portal.web.visit import VisitMiddleware

STATIC_DIR = Path(__file__).resolve().parent / "static"


def _is_page(request: Request) -> bool:
    # Pages negotiated a language (portal.web.visit); the API and static files did not.
    return "locale" in request.scope.get("state", {})


async def _http_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, HTTPException):
        raise exc
    if exc.status_code == 401:
        staff_page = request.url.path.startswith(("/desk", "/staff", "/officer"))
        return redirect_to(request, "staff.signin_form" if staff_page else "patrons.signin_form")
    if request.url.path.startswith(MACHINE_PREFIXES):
        # A library system reads the one error body wherever it went wrong.
        if exc.status_code == 413:
            return json_error(ApiCode.BODY_TOO_LARGE)  # a streamed body that grew too large
        if exc.status_code == 405:
            return json_error(ApiCode.METHOD_NOT_ALLOWED, headers=exc.headers)
        if exc.status_code == 404:
            return json_error(ApiCode.NO_ENDPOINT)
    if not _is_page(request):
        return Response(status_code=exc.status_code)
    return render(
        request,
        "errors/error.html",
        {"status": exc.status_code, "message": None},
        status_code=exc.status_code,
    )


async def _domain_error(request: Request, exc: Exception) -> Response:
    """A use case refused and no endpoint had a better page for it: its status and message."""
    if not isinstance(exc, DomainError):
        raise exc
    if not _is_page(request):
        return json_error(exc.code)
    status = http_status(exc.code)
    message = error_message(request, exc.code)
    return render(
        request, "errors/error.html", {"status": status, "message": message}, status_code=status
    )


async def _server_error(request: Request, exc: Exception) -> Response:
    # Answered outside the middleware stack (Starlette's outermost layer): the security
    # headers are added here, and the API gets JSON rather than a page.
    if _is_page(request):
        response: Response = render(
            request, "errors/error.html", {"status": 500, "message": None}, status_code=500
        )
    else:
        response = JSONResponse({"error": "server_error"}, status_code=500)
    machine = request.url.path.startswith(MACHINE_PREFIXES)
    response.headers.update(
        security_headers(https=request.app.state.settings.https, machine=machine)
    )
    return response


class _Portal(Starlette):
    def build_middleware_stack(self) -> ASGIApp:
        # Around Starlette's server-error layer, which answers 500 and raises on to the
        # server: the failure is logged without its text (portal.web.failures). In front of
        # everything, the consent check's own lane (portal.api.check): library systems call
        # it for every loan and catalog page, and each layer it skips is time off each call.
        settings: Settings = self.state.settings
        return ConsentCheckLane(
            FailureLog(super().build_middleware_stack()),
            hosts=known_hosts(settings),
            https=settings.https,
        )


_frozen: list[bool] = []


def _freeze_what_startup_made() -> None:
    """Once per process, when the app has started: the objects made so far (modules, routes,
    templates, the ORM's models) live as long as the process, so the garbage collector's full
    passes stop scanning them (gc.freeze). Such a pass took 25-45 ms with them, a pause every
    few seconds for every request in flight; about 1 ms without (README, "Performance")."""
    if not _frozen:
        gc.collect()
        gc.freeze()
        _frozen.append(True)


def from_environment() -> Starlette:
    """For several worker processes (`portal serve --workers N`): each builds its own app
    from the environment. Nothing they must agree on lives in memory: sessions, the sign-in
    throttle and the catalog are in the database, the catalog snapshot is a short cache."""
    return create_app(Settings.from_environment())


def _host_guard(settings: Settings) -> list[Middleware]:
    """Requests naming another host in `Host` are refused (400) before anything answers them:
    nothing the portal builds, a signed receipt's links least of all, names a host a client
    chose. Behind a reverse proxy, the proxy passes the patron's `Host` on."""
    if not settings.public_url:
        return []  # development mode only: any host, links from the request
    hosts = [settings.public_host, *settings.allowed_hosts]
    return [Middleware(TrustedHostMiddleware, allowed_hosts=hosts, www_redirect=False)]


def create_app(settings: Settings) -> Starlette:
    if not (settings.public_url or settings.dev_mode):
        raise ValueError("PORTAL_PUBLIC_URL is required outside development mode")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with (
            RegisterTortoise(app, config=tortoise_config(settings.database_url)),
            delivery.in_process(settings),
        ):
            _freeze_what_startup_made()
            try:
                yield
            finally:
                if app.state.ils is not None:
                    await app.state.ils.close()
                write_queued_lines()  # every request has been answered by now

    app = _Portal(
        routes=[
            # First: library systems call these the most, and routes are matched in order.
            *api_views.routes,
            *api_deletions.routes,
            *api_preferences.routes,
            *catalog_views.routes,
            *patron_views.routes,
            *consent_views.routes,
            *decision_views.routes,
            *store_views.routes,
            *minors_views.routes,
            *rights_views.routes,
            *oauth.routes,
            *staff_views.routes,
            *desk_views.routes,
            *handover_views.routes,
            *officer_views.routes,
            Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        middleware=[
            *_host_guard(settings),  # first: no request reaches anything with another host
            Middleware(AccessLogMiddleware),
            Middleware(SecurityHeadersMiddleware, https=settings.https),
            Middleware(CrossOriginGuard),
            Middleware(BodyLimitMiddleware),
            Middleware(
                VisitMiddleware,
                settings=settings,
                find_visitor=patron_access.visitor,
                find_library=published_catalog,
            ),
        ],
        exception_handlers={
            HTTPException: _http_error,
            DomainError: _domain_error,
            500: _server_error,
        },
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.templates = build_environment(settings.timezone, reload=settings.dev_mode)
    # Each service's store links to the store's own page (My privacy, the notice).
    app.state.templates.globals["store_pages"] = stores.PAGES
    # The consent record links each decision to its receipt by a keyed reference, no number.
    app.state.templates.globals["receipt_reference"] = partial(
        receipt_reference, settings.secret_key
    )
    app.state.templates.globals["has_receipt"] = has_receipt
    app.state.url_paths = {}
    app.state.oidc_client = oidc.build_client(settings)
    app.state.ils = sip2_client(settings)  # None unless the library system checks PINs
    app.state.ils_probe = catalog_views.LibrarySystemProbe(app.state.ils) if app.state.ils else None
    app.state.templates.globals["pins_at_library"] = settings.uses_sip2
    app.state.screen_returned = handovers.hand_back  # called by staff sign-in (staff.views)
    # Each process's cache of API clients' standing (revoked, rotated): portal.api.standings.
    app.state.client_standings = ClientStandings()
    return app
