"""Who calls the integration API, and what they may do: every endpoint names the one scope
it needs, and reads its JSON body one way. The caller shows a signed access token from
POST /oauth/token (RFC 6750 bearer); checking it costs no database query (portal.api.policy,
portal.api.standings). Errors are ApiErrors with codes from the one table
(portal.web.problems), answered with RFC 6750's WWW-Authenticate challenge."""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from portal.api.policy import AccessToken, ApiError, Scope, ScopeMissing, read_access_token
from portal.api.standings import ClientStandings
from portal.errors import ApiCode, DomainError
from portal.web.problems import json_error
from portal.web.requests import settings_of

__all__ = [
    "ApiCaller",
    "Scope",
    "api_error",
    "authorise",
    "json_body",
    "parse_json",
    "require_scope",
]

REALM = "portal"


@dataclass(frozen=True)
class ApiCaller:
    """The library system making the request (recorded with every write it makes)."""

    client_id: int
    name: str
    scopes: frozenset[Scope]
    system: str | None = None  # the connected system it speaks for, if any


class _NoToken(ApiError):
    """No credentials at all: RFC 6750 §3.1 asks for a challenge without an error code."""

    def __init__(self) -> None:
        super().__init__(ApiCode.UNAUTHORISED)


# A library system reuses its token for minutes: each process checks a token's signature
# once and remembers what it says. Only the signature's verdict is remembered, which never
# changes; expiry is compared on every request, and revocation asked of the standings.
_VERIFIED: OrderedDict[tuple[str, str], AccessToken] = OrderedDict()
_VERIFIED_SIZE = 1024


def _statement_of(secret: str, token: str, now: int) -> AccessToken | None:
    key = (secret, token)
    statement = _VERIFIED.get(key)
    if statement is None:
        statement = read_access_token(secret, token, now=now)
        if statement is None:
            return None
        _VERIFIED[key] = statement
        while len(_VERIFIED) > _VERIFIED_SIZE:
            _VERIFIED.popitem(last=False)
    return statement if now < statement.expires_at else None


def standings_of(request: Request) -> ClientStandings:
    standings: ClientStandings = request.app.state.client_standings
    return standings


async def require_scope(request: Request, scope: Scope) -> ApiCaller:
    """The calling system, if its token is valid, current, not revoked and grants `scope`."""
    return await authorise(
        settings_of(request).secret_key,
        standings_of(request),
        request.headers.get("authorization", ""),
        scope,
    )


async def authorise(
    secret: str, standings: ClientStandings, authorization: str, scope: Scope
) -> ApiCaller:
    """require_scope, for an endpoint that reads its Authorization header itself."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise _NoToken()
    statement = _statement_of(secret, token.strip(), int(time.time()))
    if statement is None or not await standings.admits(statement):
        raise ApiError(ApiCode.UNAUTHORISED)
    if scope not in statement.scopes:
        raise ScopeMissing(scope)
    return ApiCaller(statement.client, statement.name, statement.scopes, statement.system)


def api_error(failure: DomainError) -> Response:
    """The error body from the one table; a refused token also gets its challenge, and a
    missing scope is named (RFC 6750 §3)."""
    if isinstance(failure, ScopeMissing):
        return json_error(
            failure.code,
            extra={"scope": failure.scope.value},
            headers={
                "www-authenticate": f'Bearer realm="{REALM}", error="insufficient_scope", '
                f'scope="{failure.scope.value}"'
            },
        )
    if isinstance(failure, _NoToken):
        return json_error(failure.code, headers={"www-authenticate": f'Bearer realm="{REALM}"'})
    if failure.code is ApiCode.UNAUTHORISED:
        return json_error(
            failure.code,
            headers={"www-authenticate": f'Bearer realm="{REALM}", error="invalid_token"'},
        )
    return json_error(failure.code)


async def json_body(request: Request) -> Any:
    return parse_json(await request.body())


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        # JSONDecodeError and UnicodeDecodeError are ValueErrors, as is an integer of
        # thousands of digits; RecursionError: a body nested thousands of levels deep.
        raise ApiError(ApiCode.INVALID_JSON) from None
