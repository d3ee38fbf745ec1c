"""Integration API clients and what library systems may ask: is there a consent, and
here is retained data to keep (refused without a current consent)."""

from __future__ import annotations

import secrets
from datetime import datetime

from tortoise.exceptions import IntegrityError

from portal.api.models import ApiClient
from portal.catalog.models import Service
from portal.consent.models import ConsentState
from portal.consent.policy import Status
from portal.consent.state import status_for
from portal.errors import DomainError
from portal.patrons.models import Patron
from portal.patrons.policy import keyed_hash
from portal.patrons.services import PatronError, card_lookup


class ApiError(DomainError):
    """client_exists, card_format, card_unknown, unknown_service."""


async def issue_client(secret: str, name: str, *, now: datetime) -> str:
    token = secrets.token_urlsafe(32)
    try:
        await ApiClient.create(
            name=name, token_lookup=keyed_hash(secret, "api", token), created_at=now
        )
    except IntegrityError:
        raise ApiError("client_exists") from None
    return token


async def client_for_token(secret: str, token: str) -> ApiClient | None:
    return await ApiClient.get_or_none(token_lookup=keyed_hash(secret, "api", token))


async def patron_for_card(secret: str, card_number: str) -> int:
    try:
        lookup = card_lookup(secret, card_number)
    except PatronError:
        raise ApiError("card_format") from None
    patron = await Patron.get_or_none(card_lookup=lookup)
    if patron is None:
        raise ApiError("card_unknown")
    return patron.id


async def consent_status(patron_id: int, service_key: str) -> Status:
    service = await Service.get_or_none(key=service_key)
    if service is None:
        raise ApiError("unknown_service")
    state = await ConsentState.get_or_none(patron_id=patron_id, service_id=service.id)
    return status_for(state, service)
