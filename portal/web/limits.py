"""Request bodies are bounded in the app, not only at the proxy: a form is a few fields and
the API's largest request is a batch of loans, so a 50 MB body is refused before it is read
(413), whether it announces its length or streams it."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portal.errors import ApiCode
from portal.web.origin import MACHINE_PREFIXES
from portal.web.problems import json_error

FORM_BYTES = 64 * 1024
API_BYTES = 1024 * 1024
BODILESS = frozenset({"GET", "HEAD", "OPTIONS"})


class BodyTooLarge(Exception):
    """The body is, or says it is, larger than its limit."""


def announced_too_large(declared: str, limit: int) -> bool:
    """The request says, in Content-Length (`declared`), that its body is larger than `limit`.
    ASCII digits only ("²" is a digit to str.isdigit), and no int() of thousands of them."""
    if not (declared.isascii() and declared.isdigit()):
        return False
    digits = declared.lstrip("0")
    return len(digits) > len(str(limit)) or int(digits or "0") > limit


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole body, for an endpoint that reads it outside the middleware stack, which
    has refused a body announced too large itself (announced_too_large)."""
    chunks: list[bytes] = []
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect
        chunk: bytes = message.get("body", b"")
        received += len(chunk)
        if received > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in BODILESS:
            await self.app(scope, receive, send)
            return
        # The privacy officer uploads the catalog file (and sends it back to publish it).
        large = scope["path"].startswith(("/api/", "/officer/catalog/"))
        limit = API_BYTES if large else FORM_BYTES
        if announced_too_large(Headers(scope=scope).get("content-length", ""), limit):
            response = (
                json_error(ApiCode.BODY_TOO_LARGE)
                if scope["path"].startswith(MACHINE_PREFIXES)
                else PlainTextResponse("Request too large.", status_code=413)
            )
            await response(scope, receive, send)
            return
        received = 0

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Inside the app: the endpoint's error handling answers 413.
                    raise HTTPException(status_code=413)
            return message

        await self.app(scope, bounded_receive, send)
