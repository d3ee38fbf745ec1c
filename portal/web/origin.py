"""Cross-site request forgery protection by origin headers (as Datasette and the Fetch
Metadata spec suggest), on every unsafe method. No token cookie is needed, and it suits htmx.

Exempt, explicitly: the integration API and its OAuth token endpoint, which authenticate by
bearer token or client credentials and never read a cookie.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Machine-to-machine: no cookie, no page, no language negotiated; errors are JSON.
MACHINE_PREFIXES = ("/api/", "/oauth/")
EXEMPT_PREFIXES = MACHINE_PREFIXES


def is_same_origin(scope: Scope) -> bool:
    headers = Headers(scope=scope)
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    origin = headers.get("origin")
    if origin is None or origin == "null":
        return False  # deny-first: a browser that sends neither header gets no write access
    host = headers.get("host", "")
    scheme = scope.get("scheme", "http")
    return origin in (f"{scheme}://{host}", f"https://{host}")


class CrossOriginGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] not in SAFE_METHODS
            and not scope["path"].startswith(EXEMPT_PREFIXES)
            and not is_same_origin(scope)
        ):
            response = PlainTextResponse("Cross-site request refused.", status_code=403)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
