"""Security headers on every response, deny-first. Nothing loads from another origin:
the CSP starts from default-src 'none' and allows only the portal's own files. Library
systems' requests (/api/, /oauth/) get a smaller set, after OWASP's REST Security Cheat
Sheet (without X-Frame-Options, see below): no browser renders their JSON, so it needs no
script or style policy."""

from __future__ import annotations

from functools import cache

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portal.web.origin import MACHINE_PREFIXES

CONTENT_SECURITY_POLICY = {
    "default-src": "'none'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self'",
    "connect-src": "'self'",
    "form-action": "'self'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
}

SECURITY_HEADERS = {
    "content-security-policy": "; ".join(f"{k} {v}" for k, v in CONTENT_SECURITY_POLICY.items()),
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
}


# The CSP's frame-ancestors replaced X-Frame-Options (OWASP's HTTP Headers Cheat Sheet): every
# browser that would frame a JSON answer reads it, so the older header is not sent.
MACHINE_HEADERS = {
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
}


def security_headers(*, https: bool, machine: bool = False) -> dict[str, str]:
    headers = dict(MACHINE_HEADERS if machine else SECURITY_HEADERS)
    if https:
        headers["strict-transport-security"] = "max-age=63072000; includeSubDomains"
    # Personal pages and consent answers must never sit in a shared cache.
    headers["cache-control"] = "no-store"
    return headers


@cache
def raw_security_headers(*, https: bool, machine: bool) -> tuple[tuple[bytes, bytes], ...]:
    """The same, as ASGI header pairs."""
    headers = security_headers(https=https, machine=machine)
    return tuple((name.encode(), value.encode()) for name, value in headers.items())


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_headers = raw_security_headers(
            https=self.https, machine=scope["path"].startswith(MACHINE_PREFIXES)
        )

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [pair for pair in raw_headers if pair[0] not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)
