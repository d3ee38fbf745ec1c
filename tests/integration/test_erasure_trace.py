"""Every way the portal erases leaves the same trace (docs/PROMISES.md promises 4 and 5): the
store's rows are gone, the patron's record says how many (ERASED), each connected system
holding the service's data was asked to delete it with a ledger event of its own, and once
the transaction committed no copy of an erased title is left in SQLite's files."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from tortoise.connection import connections

from portal.consent import reads
from portal.consent.policy import Decision
from portal.decisions import services as decisions
from portal.erasure.services import apply_retention
from portal.ledger.models import ConsentEvent, EventKind
from portal.ledger.services import PATRON_ONLINE
from portal.minors import services as minors
from portal.outbox.models import OutboxMessage
from portal.outbox.policy import MessageKind
from portal.stores.reading_history import services as reading_history
from portal.stores.reading_history.models import HistoryEntry
from portal.stores.saved_lists import services as saved_lists
from portal.stores.saved_lists.models import SavedList, SavedListItem
from tests.factories import (
    SECRET,
    catalog_text,
    decides,
    make_patron,
    now,
    publish,
    service_table,
    system_table,
)

pytestmark = pytest.mark.usefixtures("db")

MARKER = "Zebra Marker Title 4417"
GRACE = {"material_grace_days": 30, "majority_grace_days": 30}
LONG_AGO = datetime(2019, 1, 10, tzinfo=UTC)


def catalog(*, history_categories: tuple[str, ...] = ("titles",)) -> str:
    return catalog_text(
        system_table("ils", "https://ils.library.example/hooks", name="Library system"),
        service_table(
            "reading_history",
            store="reading_history",
            systems=("ils",),
            data_categories=history_categories,
        ),
        service_table("saved_lists", store="saved_lists"),
    )


@dataclass(frozen=True)
class Trace:
    """What one erasing path must leave behind for `patron_id`."""

    patron_id: int
    rows: int  # the store rows erased
    # The ERASED entry's detail beyond rows_deleted; None: no entry (a patron deleting one
    # saved list ends no consent: no ledger event, as before erasure had one owner).
    erased: dict[str, object] | None
    # Why each connected system is asked to delete the patron's data (a request and a ledger
    # event each); None: no such request.
    deletion: str | None
    # Retention asks each system about every patron instead: one request, nobody's record.
    sweep: bool = False


async def borrowed(patron_id: int, *, at: datetime | None = None, on: date | None = None) -> None:
    loans = [
        reading_history.Loan(f"Kept by nobody {n}", "", on or date(2026, 1, 1)) for n in range(20)
    ]
    loans.append(reading_history.Loan(MARKER, "", on or date(2026, 2, 2)))
    await reading_history.record_loans(patron_id, loans, now=at or now())


async def withdrawal() -> Trace:
    patron = await make_patron()
    await decides(patron.id, "reading_history", Decision.YES)
    await borrowed(patron.id)
    await decides(patron.id, "reading_history", Decision.NO)
    return Trace(patron.id, 21, {}, "withdrawn")


async def everything_off() -> Trace:
    patron = await make_patron()
    await decides(patron.id, "reading_history", Decision.YES)
    await borrowed(patron.id)
    await decisions.turn_everything_off(patron.id, now=now(), party=PATRON_ONLINE)
    return Trace(patron.id, 21, {}, "withdrawn")


async def retention() -> Trace:
    patron = await make_patron()
    await decides(patron.id, "reading_history", Decision.YES)
    await borrowed(patron.id, on=date(2020, 1, 1))
    await apply_retention(now=now(), today=now().date())
    return Trace(patron.id, 21, {"reason": "retention"}, None, sweep=True)


async def unanswered_reconsent() -> Trace:
    patron = await make_patron()
    await decides(patron.id, "reading_history", Decision.YES)
    await borrowed(patron.id)
    await publish(catalog(history_categories=("titles", "ratings")))  # material: paused
    await decisions.expire_unanswered(now=now() + timedelta(days=31), **GRACE)
    return Trace(patron.id, 21, {}, "expired")


async def guardian_agrees(child_born: date, at: datetime) -> int:
    child = await make_patron(born_on=child_born)
    guardian = await make_patron(born_on=date(1980, 1, 1))
    await minors.link_at_desk(SECRET, guardian.card, child.card, "Kid", now=at, timezone="UTC")
    await guardian_says(guardian.id, child.id, Decision.YES, at=at)
    return child.id


async def guardian_says(guardian_id: int, child_id: int, decision: Decision, at: datetime) -> None:
    [link] = await minors.children(guardian_id, "en", now=at, timezone="UTC")
    view = await reads.service_view(child_id, "reading_history", "en")
    await minors.guardian_decide(
        guardian_id, link.link_id, "reading_history", decision,
        notice_version_id=view.notice.id, expected_revision=view.revision, locale="en",
        now=at, timezone="UTC",
    )  # fmt: skip


async def coming_of_age() -> Trace:
    child = await guardian_agrees(date(2008, 7, 2), LONG_AGO)  # then ten
    await borrowed(child, at=LONG_AGO)
    birthday = datetime(2026, 7, 2, 12, tzinfo=UTC)
    await minors.coming_of_age(now=birthday, timezone="UTC")
    await decisions.expire_unanswered(now=birthday + timedelta(days=31), **GRACE)
    return Trace(child, 21, {}, "came_of_age")


async def guardians_withdrawal() -> Trace:
    ten_years_ago = date(now().year - 10, 1, 1)
    child = await make_patron(born_on=ten_years_ago)
    guardian = await make_patron(born_on=date(1980, 1, 1))
    await minors.link_at_desk(SECRET, guardian.card, child.card, "Kid", now=now(), timezone="UTC")
    await guardian_says(guardian.id, child.id, Decision.YES, at=now())
    await borrowed(child.id)
    await guardian_says(guardian.id, child.id, Decision.NO, at=now())
    return Trace(child.id, 21, {}, "withdrawn")


async def one_saved_list() -> Trace:
    patron = await make_patron()
    await decides(patron.id, "saved_lists", Decision.YES)
    saved = await saved_lists.create_list(patron.id, "Summer", now=now())
    for title in ("Kept by nobody", MARKER):
        await saved_lists.add_to_list(patron.id, saved, title, now=now())
    await saved_lists.delete_list(patron.id, saved, now=now())
    return Trace(patron.id, 3, None, None)


PATHS: dict[str, Callable[[], Awaitable[Trace]]] = {
    "withdrawal": withdrawal,
    "turn everything off": everything_off,
    "retention": retention,
    "unanswered re-consent": unanswered_reconsent,
    "coming of age": coming_of_age,
    "guardian's withdrawal": guardians_withdrawal,
    "deleting one saved list": one_saved_list,
}


async def files_hold(text: str) -> bool:
    connection = connections.get("default")
    database = Path(connection.filename)  # type: ignore[attr-defined]
    files = [database, *database.parent.glob(database.name + "-*")]
    return any(text.encode() in file.read_bytes() for file in files if file.exists())


def write_ahead_log_size() -> int:
    database = Path(connections.get("default").filename)  # type: ignore[attr-defined]
    log = database.with_name(database.name + "-wal")
    return log.stat().st_size if log.exists() else 0


@pytest.mark.parametrize("path", PATHS.values(), ids=PATHS.keys())
async def test_every_erasure_leaves_the_same_trace(
    path: Callable[[], Awaitable[Trace]], engine: str
) -> None:
    await publish(catalog())
    trace = await path()
    patron = trace.patron_id

    # The rows are gone.
    assert await HistoryEntry.filter(patron_id=patron).count() == 0
    assert await SavedList.filter(patron_id=patron).count() == 0
    assert await HistoryEntry.filter(title=MARKER).count() == 0
    assert await SavedListItem.filter(title=MARKER).count() == 0

    # The patron's record says how many.
    erased = await ConsentEvent.filter(patron_id=patron, kind=EventKind.ERASED)
    expected = [] if trace.erased is None else [{"rows_deleted": trace.rows, **trace.erased}]
    assert [event.detail for event in erased] == expected

    # Each connected system is asked, each request with its ledger event.
    requests = await OutboxMessage.filter(
        patron_id=patron, kind=MessageKind.DELETION_REQUESTED
    ).order_by("id")
    events = await ConsentEvent.filter(patron_id=patron, kind=EventKind.DELETION_REQUESTED)
    if trace.deletion is None:
        assert requests == []
        assert events == []
    else:
        assert [request.system for request in requests] == ["ils"]
        assert {json.loads(r.body)["data"]["reason"] for r in requests} == {trace.deletion}
        assert [event.detail["request"] for event in events] == [r.message_id for r in requests]
    sweeps = await OutboxMessage.filter(patron_id=None, kind=MessageKind.DELETION_REQUESTED)
    assert [sweep.system for sweep in sweeps] == (["ils"] if trace.sweep else [])

    # Scrubbed once committed: SQLite's write-ahead log is empty and no file holds the title.
    if engine == "sqlite":
        assert write_ahead_log_size() == 0
        assert not await files_hold(MARKER)
