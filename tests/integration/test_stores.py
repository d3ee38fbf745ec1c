"""Retained data is refused at the door without a current consent (docs/PROMISES.md promise 2)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from portal.consent.policy import ConsentError, Decision
from portal.erasure.services import apply_retention
from portal.ledger.models import ConsentEvent, EventKind
from portal.stores.base import Cutoff, StoreError
from portal.stores.reading_history import services as reading_history
from portal.stores.reading_history.models import HistoryEntry
from portal.stores.saved_lists import services as saved_lists
from portal.stores.saved_lists.models import SavedList
from tests.factories import decides, make_patron, now, publish, standard_catalog

pytestmark = pytest.mark.usefixtures("db")

LOAN = reading_history.Loan("Parable of the Sower", "Octavia E. Butler", date(2026, 2, 2))


async def test_history_is_refused_and_nothing_stored_without_consent() -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    with pytest.raises(ConsentError):
        await reading_history.record_loans(patron.id, [LOAN, LOAN], now=now())
    assert await HistoryEntry.all().count() == 0


async def test_history_is_refused_after_a_refusal() -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    await decides(patron.id, "reading_history", Decision.NO)
    with pytest.raises(ConsentError):
        await reading_history.record_loans(patron.id, [LOAN], now=now())
    assert await HistoryEntry.all().count() == 0


async def test_history_is_kept_with_consent_and_shown_newest_first() -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    await decides(patron.id, "reading_history", Decision.YES)
    older = reading_history.Loan("Older", "", date(2025, 1, 1))
    await reading_history.record_loans(patron.id, [older, LOAN], now=now())
    assert [e.title for e in await reading_history.history(patron.id)] == [LOAN.title, "Older"]


async def test_saved_list_cannot_be_created_without_consent() -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    with pytest.raises(ConsentError):
        await saved_lists.create_list(patron.id, "Summer", now=now())
    assert await SavedList.all().count() == 0


async def test_a_patron_cannot_add_to_someone_elses_list() -> None:
    await publish(standard_catalog())
    owner, intruder = await make_patron(), await make_patron()
    for person in (owner, intruder):
        await decides(person.id, "saved_lists", Decision.YES)
    saved = await saved_lists.create_list(owner.id, "Mine", now=now())
    with pytest.raises(StoreError):
        await saved_lists.add_to_list(intruder.id, saved, "Graffiti", now=now())
    with pytest.raises(StoreError):
        await saved_lists.delete_list(intruder.id, saved, now=now())


async def test_retention_deletes_only_what_is_older_than_the_notice_promises() -> None:
    await publish(standard_catalog())  # reading history: retention_days = 365
    patron = await make_patron()
    await decides(patron.id, "reading_history", Decision.YES)
    today = date(2026, 7, 1)
    old = reading_history.Loan("Old", "", date(2025, 6, 30))  # 366 days before
    kept = reading_history.Loan("Kept", "", date(2025, 7, 1))  # exactly 365 days before
    await reading_history.record_loans(patron.id, [old, kept], now=now())
    assert await apply_retention(now=now(), today=today) == 1
    assert [e.title for e in await reading_history.history(patron.id)] == ["Kept"]
    event = await ConsentEvent.get(patron_id=patron.id, kind=EventKind.ERASED)
    assert event.detail == {"rows_deleted": 1, "reason": "retention"}
    assert await apply_retention(now=now(), today=today) == 0  # idempotent


async def test_an_entry_dated_in_the_future_still_expires_from_when_it_was_recorded() -> None:
    await publish(standard_catalog())  # reading history: retention_days = 365
    patron = await make_patron()
    await decides(patron.id, "reading_history", Decision.YES)
    far_future = reading_history.Loan("Misdated", "", date(9999, 12, 31))
    recorded = now() - timedelta(days=366)
    await reading_history.record_loans(patron.id, [far_future], now=recorded)
    assert await apply_retention(now=now(), today=now().date()) == 1
    assert await reading_history.history(patron.id) == []


async def test_retention_keeps_saved_lists_still_in_use() -> None:
    await publish(standard_catalog())  # saved lists: retention_days = 365
    patron = await make_patron()
    await decides(patron.id, "saved_lists", Decision.YES)
    long_ago = now() - timedelta(days=400)
    unused = await saved_lists.create_list(patron.id, "Unused", now=long_ago)
    await saved_lists.add_to_list(patron.id, unused, "Old title", now=long_ago)
    in_use = await saved_lists.create_list(patron.id, "In use", now=long_ago)
    await saved_lists.add_to_list(patron.id, in_use, "New title", now=now())
    assert await apply_retention(now=now(), today=now().date()) == 2
    assert [saved.name for saved in await saved_lists.saved_lists(patron.id)] == ["In use"]


async def test_a_retention_batch_begins_after_the_last_one_ended() -> None:
    # Each batch reads on from where the last stopped, never from the first row again: with
    # millions of rows kept, starting over each time reads the table once a batch.
    await publish(standard_catalog())  # reading history: retention_days = 365
    patron = await make_patron()
    await decides(patron.id, "reading_history", Decision.YES)
    today = date(2026, 7, 1)
    old = [reading_history.Loan(f"Old {n}", "", date(2025, 1, 1)) for n in range(4)]
    await reading_history.record_loans(patron.id, old, now=now())
    ids = list(
        await HistoryEntry.filter(patron_id=patron.id).order_by("id").values_list("id", flat=True)
    )
    cutoff = Cutoff.past(365, now=now(), today=today)
    batch = await reading_history.expire(cutoff, 2, ids[1])
    assert (batch.taken, batch.last, dict(batch.counts)) == (2, ids[3], {patron.id: 2})
    left = (
        await HistoryEntry.filter(patron_id=patron.id).order_by("id").values_list("id", flat=True)
    )
    assert list(left) == ids[:2]


async def test_saved_lists_expire_after_the_last_batch_too() -> None:
    await publish(standard_catalog())  # saved lists: retention_days = 365
    patron = await make_patron()
    await decides(patron.id, "saved_lists", Decision.YES)
    long_ago = now() - timedelta(days=400)
    made = [await saved_lists.create_list(patron.id, f"List {n}", now=long_ago) for n in range(3)]
    cutoff = Cutoff.past(365, now=now(), today=now().date())
    batch = await saved_lists.expire(cutoff, 5, made[0])
    assert (batch.taken, batch.last) == (2, made[2])
    assert [saved.name for saved in await saved_lists.saved_lists(patron.id)] == ["List 0"]
