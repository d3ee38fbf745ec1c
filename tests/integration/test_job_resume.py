"""A scheduled job killed half-way (SIGKILL, as an operator's timeout or an out-of-memory
killer does) and run again does the rest, never anything twice: a real `portal` process over
a database with several batches of work, killed once its first batch has committed."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from tortoise.connection import connections
from tortoise.transactions import in_transaction

from portal import batches
from portal.catalog.services import all_services
from portal.consent import reads
from portal.consent.models import ConsentState
from portal.consent.policy import Decision
from portal.ledger.models import ConsentEvent, EventKind
from portal.minors import services as minors
from portal.officer.models import JobRun
from portal.officer.policy import RunOutcome
from portal.outbox.models import OutboxMessage
from portal.patrons.models import Patron
from portal.stores.reading_history.models import HistoryEntry
from tests.delivery import delivery_catalog
from tests.factories import SECRET, make_patron, now, publish, standard_catalog, system_secrets

PATRONS = 37
ROWS = 6 * batches.BATCH + 123  # six whole batches and a part one


@pytest.fixture
def start(db: str, tmp_path: Path) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    """Starts `portal <verb>` on the test database; kills what is still running at the end
    (a failed assertion leaves no process behind)."""
    env = {
        **os.environ,
        "PORTAL_SYSTEM_SECRETS_FILE": str(system_secrets(tmp_path / "secrets.toml", "ils")),
        "PORTAL_DATABASE_URL": db,
        "PORTAL_DATA_DIR": str(tmp_path),
        "PORTAL_SECRET_KEY": "cli-test-secret-0123456789",
        "PORTAL_DEV_MODE": "false",
    }
    started: list[subprocess.Popen[bytes]] = []

    def run(verb: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "portal.cli", verb],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(process)
        return process

    yield run
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait()


async def _kill_after_first_batch(process: subprocess.Popen[bytes], job: str) -> JobRun:
    """Wait until the run record shows a committed batch, then SIGKILL the process. On
    PostgreSQL the record is read under a lock that stops the job writing it again, so the
    run is caught running whatever the machine's speed; on SQLite (where a transaction
    takes the one writer lock, waiting behind the job) it is read without one and the
    process killed at once, with several batches of some 20 ms each still to go."""
    postgres = connections.get("default").capabilities.dialect == "postgres"
    while True:
        if postgres:
            async with in_transaction() as connection:
                await connection.execute_script("LOCK TABLE job_run IN EXCLUSIVE MODE")
                run = await JobRun.filter(job=job).using_db(connection).first()
                if run is not None and run.done > 0:
                    process.kill()
                    process.wait()
                    break
        else:  # a transaction here would take SQLite's writer lock and wait behind the job
            run = await JobRun.filter(job=job).first()
            if run is not None and run.done > 0:
                process.kill()
                process.wait()
                break
        assert process.poll() is None, "the job ended before its first batch was seen"
        await asyncio.sleep(0.001)
    await run.refresh_from_db()
    assert run.outcome is RunOutcome.RUNNING, "the job finished before it was killed"
    return run


async def _retention_work() -> list[tuple[int, int]]:
    """ROWS loans of PATRONS patrons, all past retention, interleaved so that batches split
    patrons; returns the ERASED events an uninterrupted run writes: per batch of BATCH rows,
    lowest id first, one per patron with its rows in the batch."""
    await publish(delivery_catalog("https://ils.library.example/hooks"))
    await _adults(PATRONS)
    patrons = [patron.id for patron in await Patron.all().order_by("id")]
    long_ago = now().date() - timedelta(days=4000)
    await HistoryEntry.bulk_create(
        [
            HistoryEntry(
                patron_id=patrons[n % PATRONS],
                title=f"T{n}",
                author="",
                borrowed_on=long_ago,
                recorded_at=now(),
            )
            for n in range(ROWS)
        ],
        batch_size=1000,
    )
    rows = [row["patron_id"] for row in await HistoryEntry.all().order_by("id").values("patron_id")]
    expected: list[tuple[int, int]] = []
    for start in range(0, len(rows), batches.BATCH):
        expected += Counter(rows[start : start + batches.BATCH]).items()
    return sorted(expected)


async def _erased() -> list[tuple[int, int]]:
    events = await ConsentEvent.filter(kind=EventKind.ERASED)
    return sorted((event.patron_id, event.detail["rows_deleted"]) for event in events)


async def test_retention_killed_half_way_does_the_rest_once_when_run_again(
    db: str, start: Callable[[str], subprocess.Popen[bytes]]
) -> None:
    uninterrupted = await _retention_work()
    killed = await _kill_after_first_batch(start("apply-retention"), "apply-retention")
    assert 0 < killed.done < ROWS
    assert 0 < await HistoryEntry.all().count() < ROWS  # work left for the next run

    again = start("apply-retention")
    assert await asyncio.to_thread(again.wait) == 0

    assert not await HistoryEntry.exists()
    assert await _erased() == uninterrupted  # every batch's events once, none lost
    assert await ConsentEvent.all().count() == len(uninterrupted)
    requests = await OutboxMessage.all()
    assert [(message.system, message.patron_id) for message in requests] == [("ils", None)]
    runs = await JobRun.filter(job="apply-retention").order_by("id")
    assert [run.outcome for run in runs] == [RunOutcome.RUNNING, RunOutcome.SUCCEEDED]
    assert runs[0].finished_at is None  # the killed run stays "not finished"
    assert runs[0].done + runs[1].counts["rows_deleted"] >= ROWS
    assert runs[1].done == runs[1].counts["rows_deleted"]


async def _adults(count: int) -> None:
    await Patron.bulk_create(
        [
            Patron(card_lookup=secrets.token_hex(16), born_on=date(1990, 1, 1), created_at=now())
            for _ in range(count)
        ],
        batch_size=1000,
    )


async def _grown_up_child() -> None:
    """A child linked to a guardian who said yes for them years ago, now an adult: coming
    of age ends the link and pauses the guardian's yes (two ledger events)."""
    years_ago = datetime(2019, 1, 10, tzinfo=UTC)
    child = await make_patron(born_on=date(2007, 1, 2))
    guardian = await make_patron(born_on=date(1980, 5, 5))
    link = await minors.link_at_desk(
        SECRET, guardian.card, child.card, "Child", now=years_ago, timezone="UTC"
    )
    view = await reads.service_view(child.id, "reading_history", "en")
    await minors.guardian_decide(
        guardian.id, link.link_id, "reading_history", Decision.YES,
        notice_version_id=view.notice.id, expected_revision=view.revision, locale="en",
        now=years_ago, timezone="UTC",
    )  # fmt: skip


async def _events() -> Counter[tuple[int, str]]:
    return Counter((event.patron_id, event.kind.value) for event in await ConsentEvent.all())


async def test_coming_of_age_killed_half_way_hands_each_over_once_when_run_again(
    db: str, start: Callable[[str], subprocess.Popen[bytes]]
) -> None:
    await publish(standard_catalog())
    # A grown-up child among the adults every four batches, and a dozen batches in all: on
    # SQLite the job is killed while it runs unhindered, so it must still have most of its
    # work ahead (about a second) when its first batch is seen.
    for _ in range(3):
        await _adults(4 * batches.BATCH)
        await _grown_up_child()
    before = await _events()
    patrons = await Patron.all().count()

    killed = await _kill_after_first_batch(start("coming-of-age"), "coming-of-age")
    assert killed.total == patrons
    assert 0 < killed.done < patrons
    assert await Patron.filter(came_of_age_at=None).exists()  # work left for the next run
    again = start("coming-of-age")
    assert await asyncio.to_thread(again.wait) == 0

    assert not await Patron.filter(came_of_age_at=None).exists()
    written = await _events() - before
    # What one uninterrupted run writes: each grown-up child's link ended and the guardian's
    # yes paused, once.
    assert sorted(written.values()) == [1] * 6
    assert Counter(kind for _, kind in written) == {
        EventKind.GUARDIAN_LINK_ENDED.value: 3,
        EventKind.SUSPENDED.value: 3,
    }
    runs = await JobRun.filter(job="coming-of-age").order_by("id")
    assert [run.outcome for run in runs] == [RunOutcome.RUNNING, RunOutcome.SUCCEEDED]
    assert runs[0].finished_at is None


async def _paused_consents(count: int) -> list[int]:
    """`count` patrons whose yes to reading history (kept by the library system too) was
    paused for a material change long ago and never answered."""
    await publish(delivery_catalog("https://ils.library.example/hooks"))
    await _adults(count)
    patrons = [patron.id for patron in await Patron.all().order_by("id")]
    service = next(item for item in await all_services() if item.key == "reading_history")
    long_ago = now() - timedelta(days=400)
    await ConsentState.bulk_create(
        [
            ConsentState(
                patron_id=patron,
                service_id=service.id,
                granted=True,
                granted_by="patron",
                last_kind=EventKind.GIVEN,
                terms_revision=service.terms_revision,
                revision=1,
                suspended_at=long_ago,
                suspension_reason="material_change",
                updated_at=long_ago,
            )
            for patron in patrons
        ],
        batch_size=1000,
    )
    return patrons


async def test_expiry_killed_half_way_ends_each_consent_once_when_run_again(
    db: str, start: Callable[[str], subprocess.Popen[bytes]]
) -> None:
    patrons = await _paused_consents(batches.BATCH + batches.BATCH // 2)
    killed = await _kill_after_first_batch(start("expire-consents"), "expire-consents")
    assert killed.total == len(patrons)
    assert 0 < killed.done < len(patrons)
    assert await ConsentState.filter(granted=True).exists()  # work left for the next run
    again = start("expire-consents")
    assert await asyncio.to_thread(again.wait) == 0

    assert not await ConsentState.filter(granted=True).exists()
    # What one uninterrupted run writes for each patron, once: the consent ended as
    # unanswered, what the portal kept erased, the library system asked to delete its copy.
    per_patron = await _events()
    kinds = (EventKind.EXPIRED, EventKind.ERASED, EventKind.DELETION_REQUESTED)
    for kind in kinds:
        assert {per_patron[(patron, kind.value)] for patron in patrons} == {1}
    assert sum(per_patron.values()) == len(kinds) * len(patrons)
    asked = Counter(message.patron_id for message in await OutboxMessage.all())
    assert asked == dict.fromkeys(patrons, 1)
    runs = await JobRun.filter(job="expire-consents").order_by("id")
    assert [run.outcome for run in runs] == [RunOutcome.RUNNING, RunOutcome.SUCCEEDED]
    assert runs[0].finished_at is None
