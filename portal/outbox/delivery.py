"""Delivering the outbox: a worker claims due requests (no two workers hold one at once;
requests about one patron reach a system in the order they were written) and records each
answer: confirmed, accepted for later confirmation, or failed and due again later."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from tortoise.connection import connections
from tortoise.transactions import in_transaction

from portal.db import fetch_rows
from portal.outbox.models import OutboxMessage
from portal.outbox.policy import DeliveryState, MessageKind, Result, next_attempt, result_of
from portal.outbox.services import bodies_to_send, record_confirmation, to_ms


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
    # given never arrives after the deletion that followed it.
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
    now_ms = to_ms(now)
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
    bodies = await bodies_to_send(messages)
    return [
        Claimed(
            id=message.id,
            message_id=message.message_id,
            system=message.system,
            kind=message.kind,
            patron_id=message.patron_id,
            service_id=message.service_id,
            body=bodies[message.id].encode(),
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
                state=state, due_ms=to_ms(retry_at) if retry_at else 0, **attempt
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
            await record_confirmation(claimed.id, now=now, via="response")
        # The system answers again: what waited only because it could not be reached is due.
        await OutboxMessage.filter(
            system=claimed.system,
            state=DeliveryState.PENDING,
            last_status__isnull=True,
            due_ms__gt=to_ms(now),
        ).update(due_ms=to_ms(now))
        return DeliveryState.CONFIRMED
