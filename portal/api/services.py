"""Integration API clients and what library systems may ask: is there a consent, and
here is retained data to keep (refused without a current consent)."""

from __future__ import annotations

import secrets
from datetime import datetime

from tortoise.exceptions import IntegrityError

from portal.api.models import ApiClient
from portal.catalog.services import current_service
from portal.consent.policy import ConsentError, Status
from portal.consent.reads import status_of_service
from portal.errors import ApiCode, ConsentCode, DomainError
from portal.patrons.policy import keyed_hash


class ApiError(DomainError):
    """An ApiCode: unauthorised, client_exists, …"""


async def issue_client(secret: str, name: str, *, now: datetime) -> str:
    token = secrets.token_urlsafe(32)
    try:
        await ApiClient.create(
            name=name, token_lookup=keyed_hash(secret, "api", token), created_at=now
        )
    except IntegrityError:
        raise ApiError(ApiCode.CLIENT_EXISTS) from None
    return token


async def client_for_token(secret: str, token: str) -> ApiClient | None:
    client: ApiClient | None = await ApiClient.get_or_none(
        token_lookup=keyed_hash(secret, "api", token)
    )
    return client


async def consent_status(patron_id: int, service_key: str) -> Status:
    service = await current_service(service_key)
    if service is None:
        raise ConsentError(ConsentCode.UNKNOWN_SERVICE)
    return await status_of_service(patron_id, service)
