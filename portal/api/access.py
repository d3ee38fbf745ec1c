"""Who calls the integration API, and what they may do: every endpoint names the one scope
it needs, and reads its JSON body one way. Errors are ApiErrors with codes from the one
table (portal.web.problems)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from starlette.requests import Request

from portal.api import services
from portal.errors import ApiCode
from portal.web.requests import settings_of


class Scope(StrEnum):
    CONSENT_READ = "consent:read"
    LOANS_WRITE = "loans:write"
    DELETIONS_READ = "deletions:read"
    DELETIONS_ACK = "deletions:ack"


@dataclass(frozen=True)
class ApiCaller:
    """The library system making the request (recorded with every write it makes)."""

    client_id: int
    name: str
    scopes: frozenset[Scope]


async def require_scope(request: Request, scope: Scope) -> ApiCaller:
    """The calling system, if its token is valid and grants `scope`."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise services.ApiError(ApiCode.UNAUTHORISED)
    client = await services.client_for_token(settings_of(request).secret_key, token.strip())
    if client is None:
        raise services.ApiError(ApiCode.UNAUTHORISED)
    # Static tokens predate scopes: they may do everything the API offered them.
    return ApiCaller(client.id, client.name, frozenset(Scope))


async def json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except (ValueError, RecursionError):
        # JSONDecodeError and UnicodeDecodeError are ValueErrors, as is an integer of
        # thousands of digits; RecursionError: a body nested thousands of levels deep.
        raise services.ApiError(ApiCode.INVALID_JSON) from None
