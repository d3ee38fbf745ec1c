"""The integration API for library systems. OAuth 2 bearer tokens (portal.api.oauth), JSON
in and out; card numbers travel only in request bodies, never in URLs. Errors are `{"error":
code, "message": …}` with the status the one table gives (portal.web.problems); the OpenAPI
document (portal.api.openapi) describes every endpoint, body and error."""

from __future__ import annotations

from datetime import date
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from portal.api import check, services
from portal.api.access import ApiCaller, Scope, api_error, json_body, require_scope
from portal.api.openapi import document
from portal.api.policy import MAX_LOANS
from portal.clock import local_date, utcnow
from portal.errors import ApiCode, DomainError
from portal.patrons.services import patron_for_card
from portal.stores.reading_history.services import Loan, record_loans
from portal.web.requests import plain_text, settings_of


async def _authorised_body(request: Request, scope: Scope) -> tuple[ApiCaller, dict[str, Any]]:
    """Scope first: a caller without it learns nothing from the body it sent."""
    caller = await require_scope(request, scope)
    body = await json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("card_number"), str):
        raise services.ApiError(ApiCode.CARD_NUMBER_REQUIRED)
    return caller, body


def _parse_loans(raw: Any, today: date) -> list[Loan]:
    """`today` is the date at the library: a loan dated later is refused (it would be kept
    past its service's retention, which counts from the loan date)."""
    if not isinstance(raw, list) or not 0 < len(raw) <= MAX_LOANS:
        raise services.ApiError(ApiCode.LOANS_INVALID)
    loans = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("title"), str):
            raise services.ApiError(ApiCode.LOANS_INVALID)
        try:
            borrowed_on = date.fromisoformat(str(item.get("borrowed_on", "")))
        except ValueError:
            raise services.ApiError(ApiCode.LOANS_INVALID) from None
        if borrowed_on > today:
            raise services.ApiError(ApiCode.LOANS_INVALID)
        title = plain_text(item["title"])[:500]
        if not title:
            raise services.ApiError(ApiCode.LOANS_INVALID)
        author = item.get("author", "")
        loans.append(
            Loan(
                title=title,
                author=plain_text(author)[:300] if isinstance(author, str) else "",
                borrowed_on=borrowed_on,
            )
        )
    return loans


async def hand_over_loans(request: Request) -> Response:
    try:
        caller, body = await _authorised_body(request, Scope.LOANS_WRITE)
        settings, now = settings_of(request), utcnow()
        loans = _parse_loans(body.get("loans"), local_date(now, settings.timezone))
        patron_id = await patron_for_card(settings.secret_key, body["card_number"])
        # Refused at the door without a current consent: nothing is stored (promise 2).
        recorded = await record_loans(
            patron_id, loans, now=now, recorded_by_client=caller.client_id
        )
    except DomainError as failure:
        return api_error(failure)
    return JSONResponse({"recorded": recorded}, status_code=201)


async def openapi(request: Request) -> Response:
    """Public: it describes the API, and holds nothing about anyone."""
    return JSONResponse(document())


routes = [
    Route("/api/v1/openapi.json", openapi, methods=["GET"], name="api.openapi"),
    # Its requests reach it through ConsentCheckLane, before the middleware stack.
    Route(check.PATH, check.consent_check, methods=["POST"], name="api.consent_check"),
    Route("/api/v1/loans", hand_over_loans, methods=["POST"], name="api.loans"),
]
