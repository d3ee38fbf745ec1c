"""Unanswered re-consent ends a batch of consents in one erasing transaction (issue 25), with
every promise a withdrawal keeps for each: its EXPIRED then ERASED event, its store's rows
and key gone, its connected system asked; and a patron who answers while the job runs
keeps their answer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import date, timedelta

import pytest

from portal import batches
from portal.consent.models import ConsentState
from portal.consent.policy import ConsentError, Decision
from portal.decisions import services as decisions
from portal.errors import ConsentCode
from portal.ledger.models import ConsentEvent, EventKind
from portal.outbox.models import OutboxMessage
from portal.outbox.policy import MessageKind
from portal.retained_keys.models import RetainedDataKey
from portal.stores.reading_history import services as reading_history
from portal.stores.reading_history.models import HistoryEntry
from tests.delivery import delivery_catalog
from tests.factories import decides, make_patron, now, publish

pytestmark = pytest.mark.usefixtures("db")

GRACE = {"material_grace_days": 30, "majority_grace_days": 30}
BATCH = 4


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batches, "BATCH", BATCH)


async def _paused(count: int, loans: int = 2) -> list[int]:
    """`count` patrons who said yes to reading history (kept by the library system too),
    each with `loans` sealed loans, their yes paused for a material change 40 days ago."""
    await publish(delivery_catalog("https://ils.library.example/hooks"))
    patrons = []
    for _ in range(count):
        patron = await make_patron()
        await decides(patron.id, "reading_history", Decision.YES)
        loan = reading_history.Loan("Kindred", "Octavia E. Butler", date(2026, 1, 5))
        await reading_history.record_loans(patron.id, [loan] * loans, now=now())
        patrons.append(patron.id)
    await ConsentState.filter(patron_id__in=patrons).update(
        suspended_at=now() - timedelta(days=40), suspension_reason="material_change"
    )
    return patrons


async def _expire() -> int:
    return await decisions.expire_unanswered(now=now(), **GRACE)


async def test_each_consent_of_a_batch_ends_as_a_withdrawal_would() -> None:
    patrons = await _paused(BATCH + 2, loans=3)
    assert await _expire() == len(patrons)

    assert not await ConsentState.filter(granted=True).exists()
    assert not await HistoryEntry.exists()
    assert not await RetainedDataKey.exists()
    requests = {message.patron_id: message for message in await OutboxMessage.all()}
    for patron in patrons:
        events = await ConsentEvent.filter(patron_id=patron).order_by("id")
        assert [event.kind for event in events] == [
            EventKind.GIVEN,
            EventKind.EXPIRED,
            EventKind.ERASED,
            EventKind.DELETION_REQUESTED,
        ]
        _, expired, erased, asked = events
        assert expired.service_id == erased.service_id == asked.service_id
        assert expired.purposes == erased.purposes
        assert erased.detail["rows_deleted"] == 3
        assert asked.detail["request"] == requests[patron].message_id
        assert asked.detail["reason"] == "expired"
        assert requests[patron].system == "ils"
    states = await ConsentState.filter(patron_id__in=patrons)
    assert {(state.last_kind, state.revision, state.suspended_at) for state in states} == {
        (EventKind.EXPIRED, 2, None)
    }


async def test_a_batch_of_consents_ends_in_one_transaction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await _paused(2 * BATCH + 1, loans=1)
    opened = 0
    real = decisions.erasing

    @contextlib.asynccontextmanager
    async def counted() -> AsyncIterator[object]:
        nonlocal opened
        opened += 1
        async with real() as erasure:
            yield erasure

    monkeypatch.setattr(decisions, "erasing", counted)
    assert await _expire() == 2 * BATCH + 1
    assert opened == 3  # one per batch (two whole, one part), not one per consent


async def test_a_patron_who_answers_as_the_batch_starts_keeps_their_answer(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if db.startswith("sqlite"):
        pytest.skip("SQLite: the job's transaction holds the one writer lock from its start")
    patrons = await _paused(BATCH)
    answering = patrons[1]
    real = decisions.lock_patrons

    async def answered_first(patron_ids: list[int]) -> list[int]:
        # The patron's yes commits on its own connection after the job chose its batch and
        # before it takes the patrons' locks: the last moment an answer can slip in.
        await asyncio.create_task(decides(answering, "reading_history", Decision.YES))
        return await real(patron_ids)

    monkeypatch.setattr(decisions, "lock_patrons", answered_first)
    assert await _expire() == BATCH - 1

    kept = await ConsentState.get(patron_id=answering)
    assert kept.granted
    assert kept.suspended_at is None
    kinds = [event.kind for event in await ConsentEvent.filter(patron_id=answering).order_by("id")]
    assert kinds == [EventKind.GIVEN, EventKind.RENEWED]
    assert await HistoryEntry.filter(patron_id=answering).count() == 2
    assert await RetainedDataKey.filter(patron_id=answering).exists()
    assert not await OutboxMessage.filter(
        patron_id=answering, kind=MessageKind.DELETION_REQUESTED
    ).exists()
    others = [patron for patron in patrons if patron != answering]
    assert not await ConsentState.filter(patron_id__in=others, granted=True).exists()


async def test_patrons_answering_while_the_job_runs_keep_their_answers(db: str) -> None:
    if db.startswith("sqlite"):
        pytest.skip("SQLite runs one writing transaction at a time: no race to lose")
    patrons = await _paused(3 * BATCH, loans=1)
    answering = patrons[::2]

    async def answer(patron: int) -> None:
        try:
            await decides(patron, "reading_history", Decision.YES)
        except ConsentError as error:
            # The job ended the consent between the page and the answer: the form says so,
            # and the patron answers the page as it now stands.
            if error.code is not ConsentCode.STALE_FORM:
                raise
            await decides(patron, "reading_history", Decision.YES)

    ended, *_ = await asyncio.gather(_expire(), *(answer(patron) for patron in answering))

    for patron in answering:
        state = await ConsentState.get(patron_id=patron)
        assert state.granted, patron  # whichever came first, the patron's yes stands
        assert state.suspended_at is None
        kinds = [e.kind for e in await ConsentEvent.filter(patron_id=patron).order_by("id")]
        # Answered before the job reached them (renewed, nothing erased), or after it ended
        # their consent (ended and erased, then given anew): never erased under a yes.
        assert kinds in (
            [EventKind.GIVEN, EventKind.RENEWED],
            [
                EventKind.GIVEN,
                EventKind.EXPIRED,
                EventKind.ERASED,
                EventKind.DELETION_REQUESTED,
                EventKind.GIVEN,
            ],
        ), patron
    silent = [patron for patron in patrons if patron not in answering]
    assert not await ConsentState.filter(patron_id__in=silent, granted=True).exists()
    expired = await ConsentEvent.filter(kind=EventKind.EXPIRED).values_list("patron_id", flat=True)
    assert sorted(expired) == sorted(set(expired))  # each consent ended once at most
    assert ended == len(expired)
