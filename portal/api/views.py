"""The integration API for library systems. Bearer-token authenticated, JSON in and out;
card numbers travel only in request bodies, never in URLs."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from portal.api import services
from portal.erasure.services import Loan, NoCurrentConsent, record_loans
from portal.http import settings_of, utcnow

MAX_LOANS = 500


def _error(code: str, status_code: int) -> JSONResponse:
    return JSONResponse({"error": code}, status_code=status_code)


async def _authorised_body(request: Request) -> dict[str, Any] | JSONResponse:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return _error("unauthorised", 401)
    if await services.client_for_token(settings_of(request).secret_key, token.strip()) is None:
        return _error("unauthorised", 401)
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _error("invalid_json", 400)
    if not isinstance(body, dict) or not isinstance(body.get("card_number"), str):
        return _error("card_number_required", 400)
    return body


def _parse_loans(raw: Any) -> list[Loan] | None:
    if not isinstance(raw, list) or not 0 < len(raw) <= MAX_LOANS:
        return None
    loans = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("title"), str):
            return None
        try:
            borrowed_on = date.fromisoformat(str(item.get("borrowed_on", "")))
        except ValueError:
            return None
        title = item["title"].strip()[:500]
        if not title:
            return None
        author = item.get("author", "")
        loans.append(
            Loan(
                title=title,
                author=author.strip()[:300] if isinstance(author, str) else "",
                borrowed_on=borrowed_on,
            )
        )
    return loans


async def consent_check(request: Request) -> Response:
    body = await _authorised_body(request)
    if isinstance(body, JSONResponse):
        return body
    try:
        patron_id = await services.patron_for_card(
            settings_of(request).secret_key, body["card_number"]
        )
        status = await services.consent_status(patron_id, str(body.get("service", "")))
    except services.ApiError as failure:
        return _error(failure.code, 404 if failure.code != "card_format" else 400)
    return JSONResponse({"service": body["service"], "status": status.value})


async def hand_over_loans(request: Request) -> Response:
    body = await _authorised_body(request)
    if isinstance(body, JSONResponse):
        return body
    loans = _parse_loans(body.get("loans"))
    if loans is None:
        return _error("loans_invalid", 400)
    try:
        patron_id = await services.patron_for_card(
            settings_of(request).secret_key, body["card_number"]
        )
        recorded = await record_loans(patron_id, loans, now=utcnow())
    except services.ApiError as failure:
        return _error(failure.code, 404 if failure.code != "card_format" else 400)
    except NoCurrentConsent:
        # Refused at the door: nothing was stored (PRODUCT.md promise 2).
        return _error("no_current_consent", 409)
    return JSONResponse({"recorded": recorded}, status_code=201)


routes = [
    Route("/api/v1/consent-check", consent_check, methods=["POST"], name="api.consent_check"),
    Route("/api/v1/loans", hand_over_loans, methods=["POST"], name="api.loans"),
]
