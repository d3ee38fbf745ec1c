"""Integration API clients and what library systems may ask: is there a consent, and
here is retained data to keep (refused without a current consent)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from tortoise.exceptions import IntegrityError

from portal.api.models import ApiClient
from portal.catalog.services import PublishedService, published_catalog
from portal.clock import local_date
from portal.consent import reads
from portal.consent.policy import CheckAnswer
from portal.errors import ApiCode, ConsentCode, DomainError, ErrorCode, PatronCode
from portal.patrons.policy import keyed_hash
from portal.patrons.services import PatronError, card_lookup


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


MAX_CHECKS = 100


@dataclass(frozen=True)
class CheckResult:
    service: str
    answer: CheckAnswer | None
    error: ErrorCode | None = None


async def check_consents(
    secret: str, pairs: list[tuple[str, str]], *, now: datetime, timezone: str
) -> list[CheckResult]:
    """One answer per (card number, service key) pair, in order, from one database query:
    the services come from the published catalog held in memory, the cards are hashed here."""
    catalog = await published_catalog()
    services = {service.key: service for service in catalog.services}
    results: list[CheckResult | None] = []
    asked: list[tuple[str, PublishedService]] = []
    for card, key in pairs:
        service = services.get(key)
        if service is None:
            results.append(CheckResult(key, None, ConsentCode.UNKNOWN_SERVICE))
            continue
        try:
            asked.append((card_lookup(secret, card), service))
        except PatronError as failure:
            results.append(CheckResult(key, None, failure.code))
            continue
        results.append(None)
    answers = iter(await reads.check_consents(asked, today=local_date(now, timezone)))
    return [
        result or _answered(key, next(answers))
        for result, (_, key) in zip(results, pairs, strict=True)
    ]


def _answered(key: str, answer: CheckAnswer | None) -> CheckResult:
    if answer is None:
        return CheckResult(key, None, PatronCode.CARD_UNKNOWN)
    return CheckResult(key, answer)
