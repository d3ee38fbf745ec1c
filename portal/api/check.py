"""POST /api/v1/consent-check: is this patron's consent to this service on? Library systems
ask it for every loan, hold and catalog page, so it is the API's one hot path. It is a plain
ASGI application, and ConsentCheckLane hands it its requests ahead of Starlette itself,
its middlewares and its request and response objects. Everything else is shared with the rest of the
API: the token check (portal.api.access), the body limit (portal.web.limits), the security
headers for machines (portal.web.headers), the access log line (portal.web.access_log) and
the error table (portal.web.problems). One (card, service) pair, or a batch of up to 100:
one database query either way, and none for the token."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from portal.api import services
from portal.api.access import api_error, authorise, parse_json
from portal.api.policy import Scope as ApiScope
from portal.api.standings import ClientStandings
from portal.clock import utcnow
from portal.errors import ApiCode, DomainError
from portal.settings import Settings
from portal.web.access_log import log_request
from portal.web.failures import log_failure
from portal.web.headers import raw_security_headers
from portal.web.limits import API_BYTES, BodyTooLarge, announced_too_large, read_body

PATH = "/api/v1/consent-check"
_JSON = (b"content-type", b"application/json")
# What Starlette's JSONResponse writes, with one encoder for every answer.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def check_pairs(body: Any) -> tuple[list[tuple[str, str]], bool]:
    """The pairs asked, and whether it is the batch form (`{"checks": [...]}`)."""
    if isinstance(body, dict) and "checks" in body:
        checks = body["checks"]
        if not isinstance(checks, list) or not 0 < len(checks) <= services.MAX_CHECKS:
            raise services.ApiError(ApiCode.CHECKS_INVALID)
        pairs = [_check_pair(check) for check in checks]
        return pairs, True
    return [_check_pair(body)], False


def _check_pair(item: Any) -> tuple[str, str]:
    if not isinstance(item, dict) or not isinstance(item.get("card_number"), str):
        raise services.ApiError(ApiCode.CARD_NUMBER_REQUIRED)
    service = item.get("service")
    if not isinstance(service, str):
        raise services.ApiError(ApiCode.CHECKS_INVALID)
    key = service[:100]
    if not key.isascii():
        # No service has such a key, and it is echoed back: a lone surrogate (which JSON can
        # carry, escaped) cannot be written out, so it becomes "?".
        key = key.encode("utf-8", "replace").decode("utf-8")
    return item["card_number"], key


def _result(result: services.CheckResult) -> dict[str, str]:
    if result.answer is not None:
        return {"service": result.service, "status": result.answer.value}
    return {"service": result.service, "error": result.error.value if result.error else ""}


def _headers(scope: Scope) -> tuple[str, str]:
    """The two headers the endpoint reads: Authorization and Content-Length. The first of
    each, as Starlette's Headers.get gives every other endpoint."""
    authorization = length = None
    for name, value in scope["headers"]:
        if name == b"authorization" and authorization is None:
            authorization = value
        elif name == b"content-length" and length is None:
            length = value
    return (authorization or b"").decode("latin-1"), (length or b"").decode("latin-1")


Answer = tuple[int, list[tuple[bytes, bytes]], bytes]  # status, headers, body


class ConsentCheck:
    """The endpoint, as declared in portal.api.views' routes: what answers a check that the
    lane passed on (a `Host` it does not know by heart). A class rather than a function, so
    that Starlette's Route hands it the plain ASGI call rather than a Request."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        answered = await answer(scope, receive)
        if answered is not None:
            await _send(send, answered)


async def answer(scope: Scope, receive: Receive) -> Answer | None:
    """The response to send, or None when the caller hung up before it was asked."""
    state = scope["app"].state
    settings: Settings = state.settings
    standings: ClientStandings = state.client_standings
    headers = raw_security_headers(https=settings.https, machine=True)
    authorization, length = _headers(scope)
    try:
        # As for every other request: a body announced too large is refused before anything
        # else; then the scope, so that a caller without it learns nothing from the body.
        if announced_too_large(length, API_BYTES):
            raise BodyTooLarge
        await authorise(settings.secret_key, standings, authorization, ApiScope.CONSENT_READ)
        body = await read_body(receive, API_BYTES)
        pairs, batch = check_pairs(parse_json(body))
        results = await services.check_consents(
            settings.secret_key, pairs, now=utcnow(), timezone=settings.timezone
        )
        if not batch and results[0].error is not None:
            # A single check's refusal is the response's status.
            raise DomainError(results[0].error)
    except BodyTooLarge:
        return _error(DomainError(ApiCode.BODY_TOO_LARGE), headers)
    except DomainError as failure:
        return _error(failure, headers)
    except ClientDisconnect:
        return None
    result = {"results": [_result(r) for r in results]} if batch else _result(results[0])
    content = _ENCODER.encode(result).encode()
    return 200, [*headers, _JSON, (b"content-length", str(len(content)).encode())], content


def _error(failure: DomainError, headers: tuple[tuple[bytes, bytes], ...]) -> Answer:
    response = api_error(failure)
    present = {name for name, _ in response.raw_headers}
    response.raw_headers.extend(pair for pair in headers if pair[0] not in present)
    return response.status_code, response.raw_headers, bytes(response.body)


async def _send(send: Send, answered: Answer) -> None:
    status, headers, body = answered
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


consent_check = ConsentCheck()


def _server_error(https: bool) -> Answer:
    """What Starlette's server-error layer answers the API (portal.app), with the same
    headers, for a bug in the lane, which runs outside it."""
    body = _ENCODER.encode({"error": "server_error"}).encode()
    headers = raw_security_headers(https=https, machine=True)
    return 500, [*headers, _JSON, (b"content-length", str(len(body)).encode())], body


# Host names as DNS and IPv4 write them: a subset of what Starlette's host guard parses.
_PLAIN_NAME = re.compile(r"[a-z0-9.-]+")


def known_hosts(settings: Settings) -> frozenset[bytes] | None:
    """The host names whose checks the lane answers itself: the public address's and every
    plain allowed name (None: development mode, any host). Any other `Host` (a subdomain
    pattern, an IPv6 address, something malformed) takes the ordinary way through the
    guard, which admits or refuses it."""
    if not settings.public_url:
        return None
    names = (name.lower() for name in [settings.public_host, *settings.allowed_hosts])
    return frozenset(name.encode() for name in names if _PLAIN_NAME.fullmatch(name))


def admitted(host: bytes, names: frozenset[bytes]) -> bool:
    """`Host` is one of `names`, with or without a port: the guard admits no less."""
    name, colon, port = host.lower().partition(b":")
    return name in names and (not colon or port.isdigit())


def _host(scope: Scope) -> bytes:
    value: bytes
    for name, value in scope["headers"]:
        if name == b"host":
            return value  # the first, as Starlette's host guard reads it
    return b""


class ConsentCheckLane:
    """Outermost, in front of Starlette itself (portal.app's build_middleware_stack): takes a
    consent check whose `Host` names a host it knows straight to its endpoint, which sends its
    own headers and bounds its own body, and writes the access log line. Everything else,
    another `Host` included, goes on through the host guard and the middleware stack. Its
    own server-error handling does what Starlette's and portal.web.failures' do: a bug
    answers 500 in JSON with the security headers and is logged without its text."""

    def __init__(self, app: ASGIApp, *, hosts: frozenset[bytes] | None, https: bool) -> None:
        self.app = app
        self.hosts = hosts
        self.https = https

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != PATH
            or scope["method"] != "POST"
            or (self.hosts is not None and not admitted(_host(scope), self.hosts))
        ):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        try:
            try:
                answered = await answer(scope, receive)
            except Exception as error:  # logged by its type and place, and answered 500
                log_failure(error, scope)
                answered = _server_error(self.https)
            if answered is None:
                status = 499  # nobody is left to answer (nginx's word for it in its log)
                return
            status = answered[0]
            await _send(send, answered)
        finally:
            log_request("POST", PATH, status, started)
