"""Every scheduled job works in bounded batches (portal.batches) and records its progress in
its run after each one: over 2.5 batches of work, a job commits exactly three."""

from __future__ import annotations

import secrets
from datetime import date, timedelta

import pytest

from portal import batches
from portal.consent.models import ConsentState
from portal.consent.policy import Decision, SuspensionReason
from portal.ledger.models import ConsentEvent, EventKind
from portal.officer import jobs
from portal.officer.models import JobRun
from portal.officer.policy import RunOutcome
from portal.patrons.models import Patron
from portal.settings import Settings
from portal.stores.reading_history.models import HistoryEntry
from tests.factories import decides, make_patron, now, publish, standard_catalog

BATCH = 4
ROWS = 10  # 2.5 batches


@pytest.fixture(autouse=True)
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batches, "BATCH", BATCH)


async def _adults(count: int) -> list[int]:
    await Patron.bulk_create(
        [
            Patron(card_lookup=secrets.token_hex(16), born_on=date(1990, 1, 1), created_at=now())
            for _ in range(count)
        ]
    )
    return [patron.id for patron in await Patron.all().order_by("id")]


async def _run(job: str) -> JobRun:
    run = await JobRun.get(job=job)
    assert run.outcome is RunOutcome.SUCCEEDED
    return run


async def test_retention_deletes_in_batches_and_records_each(db: str, settings: Settings) -> None:
    await publish(standard_catalog())
    patron = (await _adults(1))[0]
    long_ago = now().date() - timedelta(days=4000)
    await HistoryEntry.bulk_create(
        [
            HistoryEntry(
                patron_id=patron, title=f"T{n}", author="", borrowed_on=long_ago, recorded_at=now()
            )
            for n in range(ROWS)
        ]
    )
    assert await jobs.apply_retention(settings) == ROWS
    run = await _run("apply-retention")
    assert (run.batches, run.done, run.total) == (3, ROWS, None)
    assert run.progress_at is not None
    assert not await HistoryEntry.exists()
    erased = await ConsentEvent.filter(kind=EventKind.ERASED, patron_id=patron)
    assert sum(event.detail["rows_deleted"] for event in erased) == ROWS


async def test_coming_of_age_looks_at_patrons_in_batches(db: str, settings: Settings) -> None:
    await publish(standard_catalog())
    await _adults(ROWS)
    await jobs.hand_over_coming_of_age(settings)
    run = await _run("coming-of-age")
    assert (run.batches, run.done, run.total) == (3, ROWS, ROWS)
    assert not await Patron.filter(came_of_age_at=None).exists()


async def test_unanswered_consents_expire_in_batches(db: str, settings: Settings) -> None:
    await publish(standard_catalog())
    for _ in range(ROWS):
        await decides((await make_patron()).id, "reading_history", Decision.YES)
    await ConsentState.all().update(
        suspended_at=now() - timedelta(days=400), suspension_reason=SuspensionReason.MATERIAL_CHANGE
    )
    assert await jobs.expire_consents(settings) == ROWS
    run = await _run("expire-consents")
    assert (run.batches, run.done, run.total) == (3, ROWS, ROWS)
    assert not await ConsentState.filter(granted=True).exists()


async def test_purges_delete_in_batches(db: str, settings: Settings) -> None:
    long_ago = now() - timedelta(days=500)
    await JobRun.bulk_create(
        [
            JobRun(
                job="deliver",
                started_at=long_ago,
                finished_at=long_ago,
                outcome=RunOutcome.SUCCEEDED,
                counts={},
            )
            for _ in range(ROWS)
        ]
    )
    assert await jobs.purge_sessions(settings) == ROWS
    run = await _run("purge-sessions")
    assert (run.batches, run.done) == (3, ROWS)
    assert await JobRun.all().count() == 1  # its own run


async def test_work_of_exactly_two_batches_records_two(db: str, settings: Settings) -> None:
    await publish(standard_catalog())
    await _adults(2 * BATCH)
    await jobs.hand_over_coming_of_age(settings)
    run = await _run("coming-of-age")
    assert (run.batches, run.done) == (2, 2 * BATCH)
