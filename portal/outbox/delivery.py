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
from portal.outbox.services import bodies_to_send, record_confirmations, to_ms


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


@dataclass(frozen=True)
class Answer:
    """What a system answered to one claimed request: `status`, or None and an `error` when
    there was no answer."""

    claimed: Claimed
    status: int | None
    error: str | None


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
    [state] = await record_answers(
        [Answer(claimed, status, error)], now=now, first_retry_seconds=first_retry_seconds
    )
    return state


def _db_value(field: str, value: object) -> object:
    """A value as the ORM writes it to the column, for the raw statements below."""
    return OutboxMessage._meta.fields_map[field].to_db_value(value, OutboxMessage)


# Requests answered alike (confirmed, or accepted, with one status), in one statement that
# names only those this worker still holds; RETURNING tells which they were.
_SETTLE = (
    "UPDATE outbox_message SET state = ?, {moment} = ?, {via}attempts = attempts + 1, "
    "last_attempt_at = ?, last_status = ?, last_error = NULL, claim = NULL, lease_until_ms = 0 "
    "WHERE claim = ? AND state = 'pending' AND id IN ({ids}) RETURNING id"
)


async def record_answers(
    answers: list[Answer], *, now: datetime, first_retry_seconds: float
) -> list[DeliveryState | None]:
    """A worker's batch of answers in one transaction (as record_answer, for each): one
    statement for the requests answered alike, one ledger event per confirmed deletion.
    Returns each request's new state, in the order of `answers`."""
    states: dict[int, DeliveryState | None] = {}
    settled: dict[tuple[Result, int, str], list[Answer]] = {}
    failed: list[Answer] = []
    for answer in answers:
        result = result_of(answer.status, answer.claimed.kind)
        if result is Result.FAILED or answer.status is None:  # (no status is a failure)
            failed.append(answer)
        else:
            key = (result, answer.status, answer.claimed.claim)
            settled.setdefault(key, []).append(answer)
    async with in_transaction():
        confirmed: list[Claimed] = []
        for (result, status, claim), alike in settled.items():
            state = (
                DeliveryState.CONFIRMED if result is Result.CONFIRMED else DeliveryState.ACCEPTED
            )
            sql = _SETTLE.format(
                moment="confirmed_at" if state is DeliveryState.CONFIRMED else "accepted_at",
                via="confirmed_via = 'response', " if state is DeliveryState.CONFIRMED else "",
                ids=", ".join("?" * len(alike)),
            )
            moment = _db_value("last_attempt_at", now)
            rows = await fetch_rows(
                sql, state.value, moment, moment, status, claim,
                *(answer.claimed.id for answer in alike),
            )  # fmt: skip
            changed = {int(row["id"]) for row in rows}
            for answer in alike:
                states[answer.claimed.id] = state if answer.claimed.id in changed else None
                if state is DeliveryState.CONFIRMED and answer.claimed.id in changed:
                    confirmed.append(answer.claimed)
        await record_confirmations(
            [
                (claimed.message_id, claimed.system, claimed.patron_id, claimed.service_id)
                for claimed in confirmed
                if claimed.kind is MessageKind.DELETION_REQUESTED and claimed.patron_id is not None
            ],
            now=now,
            via="response",
        )
        # A system that answers again: what waited only because it could not be reached is
        # due now.
        for system in sorted({claimed.system for claimed in confirmed}):
            await OutboxMessage.filter(
                system=system,
                state=DeliveryState.PENDING,
                last_status__isnull=True,
                due_ms__gt=to_ms(now),
            ).update(due_ms=to_ms(now))
        # After that: a request that failed in this very batch waits its backoff.
        for answer in failed:
            states[answer.claimed.id] = await _record_failure(answer, now, first_retry_seconds)
    return [states[answer.claimed.id] for answer in answers]


async def _record_failure(
    answer: Answer, now: datetime, first_retry_seconds: float
) -> DeliveryState | None:
    """Due again after a backoff of its own (with jitter), or given up after three days."""
    claimed = answer.claimed
    retry_at = next_attempt(
        claimed.attempts + 1,
        now=now,
        give_up_at=claimed.give_up_at,
        first_seconds=first_retry_seconds,
    )
    state = DeliveryState.PENDING if retry_at else DeliveryState.GAVE_UP
    changed = await OutboxMessage.filter(
        id=claimed.id, claim=claimed.claim, state=DeliveryState.PENDING
    ).update(
        state=state,
        due_ms=to_ms(retry_at) if retry_at else 0,
        attempts=claimed.attempts + 1,
        last_attempt_at=now,
        last_status=answer.status,
        last_error=(answer.error or f"HTTP {answer.status}")[:100],
        claim=None,
        lease_until_ms=0,
    )
    return state if changed else None
