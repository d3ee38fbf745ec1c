"""Integration API clients and what library systems may ask: is there a consent, and here is
retained data to keep (refused without a current consent). Clients are managed by the
operator (`portal api-client`); each gets a client id and a secret, shown once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from portal.api.models import ApiClient
from portal.api.policy import (
    ApiError,
    Scope,
    check_client_name,
    looks_like_client_id,
    new_client_id,
    new_client_secret,
    parse_scopes,
    scope_text,
    secret_lookup,
)
from portal.catalog.services import PublishedService, connected_systems, published_catalog
from portal.clock import local_date
from portal.consent import reads
from portal.consent.policy import CheckAnswer
from portal.errors import ApiCode, ConsentCode, ErrorCode, PatronCode
from portal.patrons.services import PatronError, card_lookup

__all__ = ["ApiError"]


@dataclass(frozen=True)
class IssuedSecret:
    """Shown to the operator once, never stored: the client id and its new secret."""

    name: str
    client_id: str
    secret: str
    scopes: frozenset[Scope]


@dataclass(frozen=True)
class ClientRecord:
    """A client as the token endpoint checks it, and as `portal api-client list` shows it."""

    id: int
    name: str
    client_id: str | None
    secret_lookup: str | None
    scopes: frozenset[Scope]
    generation: int
    created_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None
    last_token_at: datetime | None
    system: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None and self.secret_lookup is not None


@dataclass(frozen=True)
class Standing:
    """What every process must know to refuse a token: the client's current secret
    generation, and whether it is revoked."""

    generation: int
    revoked: bool


def _record(client: ApiClient) -> ClientRecord:
    return ClientRecord(
        id=client.id,
        name=client.name,
        client_id=client.client_id,
        secret_lookup=client.secret_lookup,
        scopes=parse_scopes(client.scopes) or frozenset(),
        generation=client.secret_generation,
        created_at=client.created_at,
        rotated_at=client.rotated_at,
        revoked_at=client.revoked_at,
        last_token_at=client.last_token_at,
        system=client.system,
    )


def _require_scopes(scopes: frozenset[Scope]) -> None:
    if not scopes:
        raise ApiError(ApiCode.SCOPES_REQUIRED)


async def _check_system(system: str | None) -> None:
    if system is not None and system not in await connected_systems():
        raise ApiError(ApiCode.SYSTEM_UNKNOWN)


async def add_client(
    secret: str,
    name: str,
    scopes: frozenset[Scope],
    *,
    now: datetime,
    system: str | None = None,
) -> IssuedSecret:
    """`system`: the connected system the client speaks for (required to see deletions)."""
    check_client_name(name)
    _require_scopes(scopes)
    await _check_system(system)
    client_id, client_secret = new_client_id(), new_client_secret()
    try:
        await ApiClient.create(
            name=name,
            client_id=client_id,
            secret_lookup=secret_lookup(secret, client_secret),
            scopes=scope_text(scopes),
            secret_generation=1,
            created_at=now,
            system=system,
        )
    except IntegrityError:
        raise ApiError(ApiCode.CLIENT_EXISTS) from None
    return IssuedSecret(name, client_id, client_secret, scopes)


async def rotate_client(
    secret: str,
    name: str,
    scopes: frozenset[Scope] | None,
    *,
    now: datetime,
    system: str | None = None,
) -> IssuedSecret:
    """A new secret (the old one, and every token issued under it, stop working); new scopes
    and system when given. Also how a revoked client, or one from before OAuth, gets a
    credential."""
    await _check_system(system)
    async with in_transaction():
        client = await ApiClient.select_for_update().get_or_none(name=name)
        if client is None:
            raise ApiError(ApiCode.CLIENT_UNKNOWN)
        granted = scopes if scopes is not None else parse_scopes(client.scopes) or frozenset()
        _require_scopes(granted)
        client_secret = new_client_secret()
        client.client_id = client.client_id or new_client_id()
        client.secret_lookup = secret_lookup(secret, client_secret)
        client.scopes = scope_text(granted)
        client.secret_generation += 1
        client.rotated_at = now
        client.revoked_at = None
        client.system = system or client.system
        await client.save()
    return IssuedSecret(name, client.client_id, client_secret, granted)


async def revoke_client(name: str, *, now: datetime) -> None:
    """The client's secret and tokens stop working (tokens within portal.api.standings'
    bound). The row stays: loans it handed over keep naming it."""
    changed = await ApiClient.filter(name=name, revoked_at__isnull=True).update(revoked_at=now)
    if not changed and not await ApiClient.exists(name=name):
        raise ApiError(ApiCode.CLIENT_UNKNOWN)


async def list_clients() -> list[ClientRecord]:
    return [_record(client) for client in await ApiClient.all().order_by("name")]


async def client_for_authentication(client_id: str) -> ClientRecord | None:
    """The client a token request names, if it exists, holds a secret and is not revoked."""
    if not looks_like_client_id(client_id):
        return None
    client = await ApiClient.get_or_none(client_id=client_id)
    if client is None:
        return None
    record = _record(client)
    return record if record.active else None


async def note_token_issued(client: int, *, now: datetime) -> None:
    await ApiClient.filter(id=client).update(last_token_at=now)


async def client_standings() -> dict[int, Standing]:
    """Every client's standing, in one query (a library has a handful of systems)."""
    rows = await ApiClient.all().values_list("id", "secret_generation", "revoked_at")
    return {
        client: Standing(generation, revoked_at is not None)
        for client, generation, revoked_at in rows
    }


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
    services = (await published_catalog()).by_key
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
