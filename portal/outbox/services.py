"""The outbox to connected systems (PRODUCT.md promise 4: the downstream deletion is never
lost). Requests are written in the caller's transaction, with the erasure or consent they
follow and their ledger events; a delivery worker claims due ones (one worker at a time per
request), records each answer, and a system that answered 202 confirms later. Each
confirmed deletion is a ledger event in the patron's record."""

from __future__ import annotations

import json
import secrets
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from tortoise.connection import connections
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from portal.catalog.services import PublishedService, connected_systems, services_by_id
from portal.db import fetch_rows
from portal.errors import ApiCode, DomainError
from portal.ledger.models import EventKind
from portal.ledger.services import CONNECTED_SYSTEM, ActingParty, record
from portal.outbox.models import OutboxMessage
from portal.outbox.policy import (
    RETRY_FOR,
    UNCONFIRMED_AFTER,
    DeletionReason,
    DeliveryState,
    MessageKind,
    Result,
    body_of,
    consent_payload,
    deletion_payload,
    new_message_id,
    next_attempt,
    result_of,
)
from portal.patrons.models import Patron

# Confirmed requests are kept this long for systems catching up (GET /api/v1/deletions);
# the patron's record keeps the requests and confirmations for good (the ledger).
KEEP_CONFIRMED = timedelta(days=30)


class OutboxError(DomainError):
    """An ApiCode: deletion_unknown."""


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


# --- writing requests, inside the caller's transaction -----------------------------------


async def _enqueue(
    system: str,
    kind: MessageKind,
    payload: dict[str, Any],
    *,
    patron_id: int | None,
    service_id: int,
    now: datetime,
    once_key: str | None = None,
) -> str:
    message = await OutboxMessage.create(
        message_id=new_message_id(),
        system=system,
        kind=kind,
        patron_id=patron_id,
        service_id=service_id,
        body=body_of(payload),
        once_key=once_key,
        created_at=now,
        give_up_at=now + RETRY_FOR,
        state=DeliveryState.PENDING,
        due_ms=_ms(now),
    )
    return message.message_id


async def _patron_reference(patron_id: int) -> str:
    """The keyed hash of the patron's card, as stored (the portal keeps no card number)."""
    reference: str = (await Patron.get(id=patron_id)).card_lookup
    return reference


async def request_deletions(
    patron_id: int,
    service: PublishedService,
    reason: DeletionReason,
    *,
    now: datetime,
    party: ActingParty,
) -> int:
    """One deletion request per connected system holding the service's data, each with its
    ledger event. Call in the transaction that ended the consent and erased what the portal
    kept; returns the requests written."""
    if not service.systems:
        return 0
    names = {key: system.name for key, system in (await connected_systems()).items()}
    reference = await _patron_reference(patron_id)
    payload = deletion_payload(
        service=service.key, patron=reference, reason=reason, requested_at=now
    )
    for system in service.systems:
        message_id = await _enqueue(
            system,
            MessageKind.DELETION_REQUESTED,
            payload,
            patron_id=patron_id,
            service_id=service.id,
            now=now,
        )
        await record(
            patron_id,
            EventKind.DELETION_REQUESTED,
            party,
            now=now,
            service_id=service.id,
            purposes=service.terms["purposes"],
            detail={
                "system": system,
                "system_name": names.get(system, system),
                "request": message_id,
                "reason": reason.value,
            },
        )
    return len(service.systems)


async def notify_consent_given(patron_id: int, service: PublishedService, *, now: datetime) -> int:
    """Tell the service's connected systems they may now keep and use the patron's data (the
    SMS gateway may send). Call in the transaction that recorded the consent."""
    if not service.systems:
        return 0
    payload = consent_payload(
        service=service.key, patron=await _patron_reference(patron_id), given_at=now
    )
    for system in service.systems:
        await _enqueue(
            system,
            MessageKind.CONSENT_GIVEN,
            payload,
            patron_id=patron_id,
            service_id=service.id,
            now=now,
        )
    return len(service.systems)


async def request_retention(service: PublishedService, *, before: date, now: datetime) -> int:
    """Ask each connected system to delete every patron's entries of the service dated
    before `before`: one request per system and day, whoever runs the job how often."""
    written = 0
    for system in service.systems:
        once_key = f"{system}:{service.key}:{before.isoformat()}"
        if await OutboxMessage.exists(once_key=once_key):
            continue
        payload = deletion_payload(
            service=service.key,
            patron=None,
            reason=DeletionReason.RETENTION,
            requested_at=now,
            before=before,
        )
        await _enqueue(
            system,
            MessageKind.DELETION_REQUESTED,
            payload,
            patron_id=None,
            service_id=service.id,
            now=now,
            once_key=once_key,
        )
        written += 1
    return written


# --- delivering: claim, then record the answer -------------------------------------------


@dataclass(frozen=True)
class Claimed:
    """A request a worker holds until `lease_until_ms`, identified by its claim token."""

    id: int
    message_id: str
    system: str
    kind: MessageKind
    patron_id: int | None
    service_id: int
    body: bytes
    attempts: int
    give_up_at: datetime
    claim: str
    lease_until_ms: int


_DUE = (
    "m.state = 'pending' AND m.due_ms <= ? AND m.lease_until_ms <= ? "
    # Requests about one patron reach a system in the order they were written: a consent
    # given never overtakes the deletion that followed it.
    "AND NOT EXISTS (SELECT 1 FROM outbox_message o WHERE o.system = m.system "
    "AND o.patron_id = m.patron_id AND o.state = 'pending' AND o.id < m.id)"
)
_ANY_DUE = f"SELECT m.id FROM outbox_message m WHERE {_DUE} LIMIT 1"  # noqa: S608 - constants
# PostgreSQL: rows another worker is claiming right now are skipped, not waited for.
_CLAIM_POSTGRES = (
    f"WITH picked AS MATERIALIZED (SELECT m.id FROM outbox_message m WHERE {_DUE} "  # noqa: S608
    "ORDER BY m.due_ms, m.id LIMIT ? FOR UPDATE OF m SKIP LOCKED) "
    "UPDATE outbox_message SET claim = ?, lease_until_ms = ? FROM picked "
    "WHERE outbox_message.id = picked.id RETURNING outbox_message.id"
)
# SQLite has one writer at a time: one UPDATE claims atomically.
_CLAIM_SQLITE = (
    "UPDATE outbox_message SET claim = ?, lease_until_ms = ? WHERE id IN ("  # noqa: S608
    f"SELECT m.id FROM outbox_message m WHERE {_DUE} ORDER BY m.due_ms, m.id LIMIT ?) "
    "RETURNING id"
)


async def claim_due(*, now: datetime, limit: int, lease_seconds: float) -> list[Claimed]:
    """Requests due now, held for this worker for `lease_seconds`: no other worker sends
    them meanwhile. A worker that dies holding some lets them go when the lease ends."""
    now_ms = _ms(now)
    if not await fetch_rows(_ANY_DUE, now_ms, now_ms):
        return []  # the usual case, answered by a read (on SQLite an UPDATE takes the lock)
    claim = secrets.token_hex(16)
    lease_until_ms = now_ms + int(lease_seconds * 1000)
    if connections.get("default").capabilities.dialect == "postgres":
        rows = await fetch_rows(_CLAIM_POSTGRES, now_ms, now_ms, limit, claim, lease_until_ms)
    else:
        rows = await fetch_rows(_CLAIM_SQLITE, claim, lease_until_ms, now_ms, now_ms, limit)
    if not rows:
        return []
    messages = await OutboxMessage.filter(id__in=[row["id"] for row in rows], claim=claim)
    return [
        Claimed(
            id=message.id,
            message_id=message.message_id,
            system=message.system,
            kind=message.kind,
            patron_id=message.patron_id,
            service_id=message.service_id,
            body=message.body.encode(),
            attempts=message.attempts,
            give_up_at=message.give_up_at,
            claim=claim,
            lease_until_ms=lease_until_ms,
        )
        for message in sorted(messages, key=lambda message: message.id)
    ]


async def record_answer(
    claimed: Claimed,
    status: int | None,
    error: str | None,
    *,
    now: datetime,
    first_retry_seconds: float,
) -> DeliveryState | None:
    """What the system answered (`status`, or None and an `error` when there was no answer).
    Returns the request's new state; None when this worker no longer held it (its lease
    ended and another worker took it over, or the system acknowledged it meanwhile)."""
    result = result_of(status, claimed.kind)
    held = OutboxMessage.filter(id=claimed.id, claim=claimed.claim, state=DeliveryState.PENDING)
    attempt = {
        "attempts": claimed.attempts + 1,
        "last_attempt_at": now,
        "last_status": status,
        "last_error": None if result is not Result.FAILED else (error or f"HTTP {status}")[:100],
        "claim": None,
        "lease_until_ms": 0,
    }
    async with in_transaction():
        if result is Result.FAILED:
            retry_at = next_attempt(
                claimed.attempts + 1,
                now=now,
                give_up_at=claimed.give_up_at,
                first_seconds=first_retry_seconds,
            )
            state = DeliveryState.PENDING if retry_at else DeliveryState.GAVE_UP
            changed = await held.update(
                state=state, due_ms=_ms(retry_at) if retry_at else 0, **attempt
            )
            return state if changed else None
        if result is Result.ACCEPTED:
            changed = await held.update(state=DeliveryState.ACCEPTED, accepted_at=now, **attempt)
            return DeliveryState.ACCEPTED if changed else None
        changed = await held.update(
            state=DeliveryState.CONFIRMED, confirmed_at=now, confirmed_via="response", **attempt
        )
        if not changed:
            return None
        if claimed.kind is MessageKind.DELETION_REQUESTED and claimed.patron_id is not None:
            await _record_confirmation(claimed.id, now=now, via="response")
        # The system answers again: what waited only because it could not be reached is due.
        await OutboxMessage.filter(
            system=claimed.system,
            state=DeliveryState.PENDING,
            last_status__isnull=True,
            due_ms__gt=_ms(now),
        ).update(due_ms=_ms(now))
        return DeliveryState.CONFIRMED


async def _record_confirmation(
    message_pk: int, *, now: datetime, via: str, client_id: int | None = None
) -> None:
    message = await OutboxMessage.get(id=message_pk)
    if message.patron_id is None:
        return  # a retention request about every patron is nobody's record
    service = (await services_by_id([message.service_id]))[message.service_id]
    names = {key: system.name for key, system in (await connected_systems()).items()}
    detail: dict[str, object] = {
        "system": message.system,
        "system_name": names.get(message.system, message.system),
        "request": message.message_id,
        "via": via,
    }
    if client_id is not None:
        detail["client"] = client_id  # the API client that acknowledged it
    await record(
        message.patron_id,
        EventKind.DELETION_CONFIRMED,
        CONNECTED_SYSTEM,
        now=now,
        service_id=message.service_id,
        purposes=service.terms["purposes"],
        detail=detail,
    )


# --- what systems and the privacy officer read --------------------------------------------


@dataclass(frozen=True)
class DeletionRequest:
    id: str  # the webhook-id
    position: int  # for paging (GET /api/v1/deletions?after=)
    system: str
    service: str
    patron: str | None
    reason: str
    before: str | None
    requested_at: datetime
    state: DeliveryState
    attempts: int
    last_error: str | None
    confirmed_at: datetime | None


def _request(message: OutboxMessage) -> DeletionRequest:
    data = json.loads(message.body)["data"]
    return DeletionRequest(
        id=message.message_id,
        position=message.id,
        system=message.system,
        service=data["service"],
        patron=data["patron"],
        reason=data["reason"],
        before=data.get("before"),
        requested_at=message.created_at,
        state=message.state,
        attempts=message.attempts,
        last_error=message.last_error,
        confirmed_at=message.confirmed_at,
    )


async def acknowledge(message_id: str, *, client_id: int, now: datetime) -> DeletionRequest:
    """A system confirms a deletion it accepted earlier (or caught up on): idempotent, one
    ledger event however often it is acknowledged."""
    async with in_transaction():
        message = (
            await OutboxMessage.filter(message_id=message_id, kind=MessageKind.DELETION_REQUESTED)
            .select_for_update()
            .first()
        )
        if message is None:
            raise OutboxError(ApiCode.DELETION_UNKNOWN)
        if message.state is not DeliveryState.CONFIRMED:
            message.state = DeliveryState.CONFIRMED
            message.confirmed_at, message.confirmed_via = now, "ack"
            message.claim, message.lease_until_ms = None, 0
            await message.save(
                update_fields=["state", "confirmed_at", "confirmed_via", "claim", "lease_until_ms"]
            )
            await _record_confirmation(message.id, now=now, via="ack", client_id=client_id)
    return _request(message)


async def deletion_requests(
    *, system: str | None, unconfirmed_only: bool, after: int, limit: int
) -> list[DeletionRequest]:
    """Deletion requests in the order they were written, for a system catching up."""
    query = OutboxMessage.filter(kind=MessageKind.DELETION_REQUESTED, id__gt=after)
    if system is not None:
        query = query.filter(system=system)
    if unconfirmed_only:
        query = query.exclude(state=DeliveryState.CONFIRMED)
    return [_request(message) for message in await query.order_by("id").limit(limit)]


async def unconfirmed(*, now: datetime) -> list[DeletionRequest]:
    """Deletions not confirmed a day after they were requested: the privacy officer's list."""
    late = await (
        OutboxMessage.filter(
            kind=MessageKind.DELETION_REQUESTED, created_at__lte=now - UNCONFIRMED_AFTER
        )
        .exclude(state=DeliveryState.CONFIRMED)
        .order_by("id")
    )
    return [_request(message) for message in late]


async def summary() -> Counter[tuple[str, str, str]]:
    """Requests by (system, kind, state)."""
    rows = (
        await OutboxMessage.all()
        .annotate(count=Count("id"))
        .group_by("system", "kind", "state")
        .values("system", "kind", "state", "count")
    )
    return Counter(
        {(row["system"], str(row["kind"]), str(row["state"])): row["count"] for row in rows}
    )


async def retry_given_up(*, now: datetime) -> int:
    """The privacy officer fixed what stopped a system (its endpoint, its secret): requests
    it gave up on are sent again, with three more days."""
    retried: int = await OutboxMessage.filter(state=DeliveryState.GAVE_UP).update(
        state=DeliveryState.PENDING, due_ms=_ms(now), give_up_at=now + RETRY_FOR
    )
    return retried


async def purge_confirmed(*, now: datetime) -> int:
    deleted: int = await OutboxMessage.filter(
        state=DeliveryState.CONFIRMED, confirmed_at__lt=now - KEEP_CONFIRMED
    ).delete()
    return deleted
