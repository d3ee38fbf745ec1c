"""/api/v1/message-preferences: the library system (the ILS, the text-message gateway) reads
which messages each patron agreed to, by its own names for the kinds, so that it never sends
one that was not agreed. GET names one patron by their reference (a card number never goes
in an address); POST names up to 100, by reference or card number, in its body. Scope
preferences:read; the contact detail of each channel in use only with contacts:read too."""

from __future__ import annotations

import functools
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal.api.access import ApiCaller, Scope, api_error, json_body, require_scope
from portal.api.policy import MAX_PATRONS, ApiError, looks_like_reference
from portal.api.reads import MessageOn, PatronAsked, Preferences, message_preferences
from portal.clock import local_date, utcnow
from portal.errors import ApiCode, DomainError, ErrorCode, PatronCode
from portal.patrons.services import PatronError, card_lookup
from portal.web.requests import settings_of

PATH = "/api/v1/message-preferences"
# What Starlette's JSONResponse writes, without its check for circular references: a batch
# answer holds a thousand small objects, none of them its own ancestor.
_ENCODER = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, check_circular=False, separators=(",", ":")
)


def _json(content: dict[str, Any]) -> Response:
    return Response(_ENCODER.encode(content).encode(), media_type="application/json")


@functools.lru_cache(maxsize=1024)
def _message_json(message: MessageOn) -> dict[str, Any]:
    """The same few messages for every patron: each written once (and never changed after:
    every answer holding it only encodes it)."""
    return {
        "group": message.group,
        "kind": message.kind,
        "channel": message.channel,
        "contains": list(message.contains),
        "titles": message.titles,
    }


def as_json(found: Preferences) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "patron": found.patron,
        "messages": [_message_json(message) for message in found.messages],
    }
    if found.contacts is not None:
        answer["contacts"] = found.contacts
    return answer


async def _answer(
    request: Request, caller: ApiCaller, asked: list[PatronAsked]
) -> list[Preferences | None]:
    """Contact details only for a caller whose token grants reading them too."""
    return await message_preferences(
        asked,
        today=local_date(utcnow(), settings_of(request).timezone),
        with_contacts=Scope.CONTACTS_READ in caller.scopes,
    )


async def one_patron(request: Request) -> Response:
    """`?patron=<reference>`: one patron, as connected systems know them."""
    try:
        caller = await require_scope(request, Scope.PREFERENCES_READ)
        named = request.query_params.getlist("patron")
        # A card number (or anything but a reference) in the address is refused, not looked up.
        if len(named) != 1 or not looks_like_reference(named[0]):
            raise ApiError(ApiCode.QUERY_INVALID)
        [found] = await _answer(request, caller, [PatronAsked(reference=named[0])])
        if found is None:
            raise ApiError(ApiCode.PATRON_UNKNOWN)
    except DomainError as failure:
        return api_error(failure)
    return _json(as_json(found))


def _asked(body: Any, secret: str) -> list[PatronAsked | ErrorCode]:
    """`{"patrons": [{"patron": reference} | {"card_number": card}, …]}`, 1 to 100 of them;
    anything else refuses the whole request. A card number that cannot be one is that
    patron's error, as in the consent check."""
    patrons = body.get("patrons") if isinstance(body, dict) else None
    if not isinstance(patrons, list) or not 0 < len(patrons) <= MAX_PATRONS:
        raise ApiError(ApiCode.PATRONS_INVALID)
    asked: list[PatronAsked | ErrorCode] = []
    for item in patrons:
        if not isinstance(item, dict) or len(item) != 1:
            raise ApiError(ApiCode.PATRONS_INVALID)
        reference, card = item.get("patron"), item.get("card_number")
        if isinstance(reference, str) and looks_like_reference(reference):
            asked.append(PatronAsked(reference=reference))
        elif isinstance(card, str):
            try:
                asked.append(PatronAsked(card_lookup=card_lookup(secret, card)))
            except PatronError as failure:
                asked.append(failure.code)
        else:
            raise ApiError(ApiCode.PATRONS_INVALID)
    return asked


def _refused(asked: PatronAsked | ErrorCode) -> dict[str, str]:
    if isinstance(asked, PatronAsked):
        if asked.reference is not None:
            return {"patron": asked.reference, "error": ApiCode.PATRON_UNKNOWN.value}
        return {"error": PatronCode.CARD_UNKNOWN.value}
    return {"error": asked.value}


async def many_patrons(request: Request) -> Response:
    """Up to 100 patrons in one round trip: one result each, in the order asked."""
    try:
        # Scope first: a caller without it learns nothing from the body it sent.
        caller = await require_scope(request, Scope.PREFERENCES_READ)
        asked = _asked(await json_body(request), settings_of(request).secret_key)
        looked_up = [one for one in asked if isinstance(one, PatronAsked)]
        found = await _answer(request, caller, looked_up)
    except DomainError as failure:
        return api_error(failure)
    answers = iter(found)
    results = []
    for one in asked:
        answer = next(answers) if isinstance(one, PatronAsked) else None
        results.append(as_json(answer) if answer is not None else _refused(one))
    return _json({"results": results})


routes = [
    Route(PATH, one_patron, methods=["GET"], name="api.message_preferences"),
    Route(PATH, many_patrons, methods=["POST"], name="api.message_preferences_batch"),
]
