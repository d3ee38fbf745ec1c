"""Deletion requests, as connected systems see them through the API: catch up on what they
missed (`deletions:read`), and confirm one they accepted with a 202 (`deletions:ack`). The
path carries only the request's id; patron references travel in response bodies."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from portal.api.access import ApiCaller, Scope, api_error, require_scope
from portal.clock import utcnow
from portal.errors import ApiCode, DomainError
from portal.outbox import services
from portal.outbox.services import DeletionRequest, OutboxError
from portal.web.requests import MAX_ID, number_text

PAGE = 100
MAX_PAGE = 500
_SYSTEM = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


def _moment(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def as_json(request: DeletionRequest) -> dict[str, object]:
    return {
        "id": request.id,
        "system": request.system,
        "service": request.service,
        "patron": request.patron,
        "reason": request.reason,
        "before": request.before,
        "requested_at": _moment(request.requested_at),
        "status": request.state.value,
        "confirmed_at": _moment(request.confirmed_at),
    }


def _system_client(caller: ApiCaller) -> SystemCaller:
    """Deletion requests name patrons: each system sees only those sent to it."""
    if caller.system is None:
        raise OutboxError(ApiCode.SYSTEM_REQUIRED)
    return SystemCaller(caller.client_id, caller.system)


@dataclass(frozen=True)
class SystemCaller:
    client_id: int
    system: str


def _number(raw: str | None, default: int, low: int, high: int) -> int:
    if raw is None:
        return default
    number = number_text(raw, high)
    if number is None or number < low:
        raise OutboxError(ApiCode.QUERY_INVALID)
    return number


async def list_deletions(request: Request) -> Response:
    """`?status=unconfirmed|all&after=<next>&limit=100`, oldest first: the requests sent to
    the system the client speaks for (`system=`, if given, must name it)."""
    try:
        caller = _system_client(await require_scope(request, Scope.DELETIONS_READ))
        params = request.query_params
        system = params.get("system", caller.system)
        status = params.get("status", "unconfirmed")
        if (system is not None and not _SYSTEM.match(system)) or status not in (
            "unconfirmed",
            "all",
        ):
            raise OutboxError(ApiCode.QUERY_INVALID)
        if system != caller.system:
            raise OutboxError(ApiCode.SYSTEM_NOT_YOURS)
        limit = _number(params.get("limit"), PAGE, 1, MAX_PAGE)
        found = await services.deletion_requests(
            system=system,
            unconfirmed_only=status == "unconfirmed",
            # A cursor is a request's id: a 32-bit integer, as the column is.
            after=_number(params.get("after"), 0, 0, MAX_ID),
            limit=limit,
        )
    except DomainError as failure:
        return api_error(failure)
    return JSONResponse(
        {
            "deletions": [as_json(item) for item in found],
            "next": str(found[-1].position) if len(found) == limit else None,
        }
    )


async def acknowledge(request: Request) -> Response:
    """The system has deleted what the request names: recorded once, however often sent."""
    try:
        caller = _system_client(await require_scope(request, Scope.DELETIONS_ACK))
        confirmed = await services.acknowledge(
            request.path_params["id"],
            system=caller.system,
            client_id=caller.client_id,
            now=utcnow(),
        )
    except DomainError as failure:
        return api_error(failure)
    return JSONResponse(as_json(confirmed))


routes = [
    Route("/api/v1/deletions", list_deletions, methods=["GET"], name="api.deletions"),
    Route(
        "/api/v1/deletions/{id:str}/ack",
        acknowledge,
        methods=["POST"],
        name="api.deletions_ack",
    ),
]
