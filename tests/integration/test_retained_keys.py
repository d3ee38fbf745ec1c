"""The keys retained data is sealed under: one per patron and store, made once whatever the
race, destroyed with the rows, and carried across a restore so that nothing erased after a
backup comes back readable or in force (docs/PROMISES.md promise 4)."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest
from tortoise.connection import connections
from tortoise.transactions import in_transaction

from portal.consent.models import ConsentState
from portal.consent.policy import Decision
from portal.contacts.models import MessageContact
from portal.erasure.services import apply_retention
from portal.ledger.models import ConsentEvent, EventKind
from portal.outbox.models import OutboxMessage
from portal.outbox.services import bodies_to_send, forget_contacts_on
from portal.retained_keys.models import RetainedDataKey
from portal.retained_keys.services import (
    Unreadable,
    export_keys,
    import_keys,
    key_for,
    key_of,
    settle_after_restore,
)
from portal.stores.reading_history import services as reading_history
from portal.stores.reading_history.models import HistoryEntry
from portal.stores.saved_lists import services as saved_lists
from portal.stores.saved_lists.models import SavedList, SavedListItem
from tests.factories import (
    TEST_CONTACTS,
    catalog_text,
    decides,
    make_patron,
    messages_table,
    now,
    publish,
    service_table,
    standard_catalog,
    system_table,
)

pytestmark = pytest.mark.usefixtures("db")


def loan(title: str) -> reading_history.Loan:
    return reading_history.Loan(title, "", date(2026, 2, 2))


async def test_two_first_writes_for_one_patron_share_one_key() -> None:
    """Meaningful on PostgreSQL: both transactions insert, one insert gives way to the
    other, and both read the one key that stands."""
    patron = await make_patron()
    started = asyncio.Event()
    waiting = 0

    async def first_write() -> bytes:
        nonlocal waiting
        async with in_transaction():
            waiting += 1
            if waiting == 2:
                started.set()
            await asyncio.wait_for(started.wait(), 5)
            key = await key_for(patron.id, "reading_history", now=now())
            await asyncio.sleep(0.05)  # both inserts in flight before either commits
            return key.key

    if connections.get("default").capabilities.dialect == "sqlite":
        started.set()  # SQLite runs one writing transaction at a time
    one, two = await asyncio.gather(first_write(), first_write())
    assert one == two
    assert await RetainedDataKey.filter(patron_id=patron.id).count() == 1


async def test_a_withdrawal_destroys_the_key() -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    await decides(patron.id, "reading_history", Decision.YES)
    await reading_history.record_loans(patron.id, [loan("Dune")], now=now())
    assert await key_of(patron.id, "reading_history") is not None
    await decides(patron.id, "reading_history", Decision.NO)
    assert await key_of(patron.id, "reading_history") is None
    assert await reading_history.history(patron.id) == []


async def test_retention_deletes_rows_and_keeps_the_key() -> None:
    """The consent is still in force: a missing key must keep meaning it ended."""
    await publish(standard_catalog())
    patron = await make_patron()
    await decides(patron.id, "reading_history", Decision.YES)
    old = reading_history.Loan("Old", "", date(2001, 1, 1))
    await reading_history.record_loans(patron.id, [old, loan("Recent")], now=now())
    kept = await key_of(patron.id, "reading_history")
    assert await apply_retention(now=now(), today=now().date()) == 1
    assert [e.title for e in await reading_history.history(patron.id)] == ["Recent"]
    after = await key_of(patron.id, "reading_history")
    assert kept is not None
    assert after is not None
    assert after.key == kept.key


async def test_deleting_one_list_replaces_the_key_and_keeps_the_others_readable() -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    await decides(patron.id, "saved_lists", Decision.YES)
    gone = await saved_lists.create_list(patron.id, "Gone", now=now())
    stays = await saved_lists.create_list(patron.id, "Stays", now=now())
    await saved_lists.add_to_list(patron.id, stays, "Kindred", now=now())
    before = await key_of(patron.id, "saved_lists")
    await saved_lists.delete_list(patron.id, gone, now=now())
    after = await key_of(patron.id, "saved_lists")
    assert before is not None
    assert after is not None
    assert after.key != before.key
    [left] = await saved_lists.saved_lists(patron.id)
    assert (left.name, left.titles) == ("Stays", ("Kindred",))


async def test_keys_are_imported_only_for_patrons_held_and_never_replace_one() -> None:
    patron = await make_patron()
    kept = await key_for(patron.id, "saved_lists", now=now())
    written = await import_keys(
        [
            (patron.id, "saved_lists", b"\x01" * 32),  # held: untouched
            (patron.id, "reading_history", b"\x02" * 32),
            (patron.id + 1000, "reading_history", b"\x03" * 32),  # no such patron
        ]
    )
    assert written == 1
    assert sorted(await export_keys()) == sorted(
        [(patron.id, "saved_lists", kept.key), (patron.id, "reading_history", b"\x02" * 32)]
    )


async def _restore(rows: list[dict[str, object]], keys: list[tuple[int, str, bytes]]) -> None:
    """What a restore does here: the rows of the backup back in place, a key table the
    backup did not carry, then the keys exported from the live database imported."""
    await HistoryEntry.all().delete()
    await RetainedDataKey.all().delete()
    await HistoryEntry.bulk_create([HistoryEntry(**row) for row in rows])
    await import_keys(keys)


async def test_a_restore_brings_back_nothing_erased_after_the_backup() -> None:
    await publish(standard_catalog())
    stays, again, gone = await make_patron(), await make_patron(), await make_patron()
    for patron in (stays, again, gone):
        await decides(patron.id, "reading_history", Decision.YES)
        await reading_history.record_loans(patron.id, [loan("Kept"), loan("Also")], now=now())
    backup = await HistoryEntry.all().values()
    # After the backup: one withdraws and says yes again (a new key), one withdraws. (The
    # consent states are not restored here: `again` holds today's yes.)
    await decides(again.id, "reading_history", Decision.NO)
    await decides(again.id, "reading_history", Decision.YES)
    await reading_history.record_loans(again.id, [loan("New")], now=now())
    await decides(gone.id, "reading_history", Decision.NO)
    live = await export_keys()

    await _restore(backup, live)
    # The restored database still holds both consents in force, as they were then.
    await ConsentState.filter(patron_id=gone.id).update(granted=True)

    outcome = await settle_after_restore(now=now(), forget_contacts=forget_contacts_on)

    assert outcome == Unreadable(rows=4, consents_ended=1)
    assert {e.title for e in await reading_history.history(stays.id)} == {"Kept", "Also"}
    for patron in (again, gone):
        assert await HistoryEntry.filter(patron_id=patron.id).count() == 0
    # Gone: no key at all, so the consent ended after the backup; it is ended here too.
    assert not await ConsentState.exists(patron_id=gone.id, granted=True)
    kinds = await ConsentEvent.filter(patron_id=gone.id).order_by("-id").limit(2)
    assert [event.kind for event in kinds] == [EventKind.ERASED, EventKind.EXPIRED]
    assert kinds[0].detail == {"rows_deleted": 2, "reason": "restore"}
    # Again: a newer key stands, the patron's yes of today; only the old rows go.
    assert await ConsentState.exists(patron_id=again.id, granted=True)
    last = await ConsentEvent.filter(patron_id=again.id).order_by("-id").first()
    assert last is not None
    assert (last.kind, last.detail) == (EventKind.ERASED, {"rows_deleted": 2, "reason": "restore"})
    assert await ConsentState.exists(patron_id=stays.id, granted=True)
    settled = await settle_after_restore(now=now(), forget_contacts=forget_contacts_on)
    assert settled == Unreadable(rows=0, consents_ended=0)


async def test_a_restore_settles_saved_lists_and_contacts_as_it_does_history() -> None:
    """Every sealed store, not only reading history: a list and a number kept before the
    backup, withdrawn after it, are erased by the restore and their consents ended."""
    gateway = system_table("sms_gateway", "http://127.0.0.1:9/deletions")
    await publish(
        gateway
        + catalog_text(
            service_table("saved_lists", store="saved_lists"),
            messages_table(
                kinds=("hold_filled",), channels=("sms",), channel_systems={"sms": ("sms_gateway",)}
            ),
        )
    )
    patron = await make_patron()
    choice = "messages__hold_filled__sms"
    await decides(patron.id, "saved_lists", Decision.YES)
    await decides(patron.id, choice, Decision.YES)  # keeps the test number
    listed = await saved_lists.create_list(patron.id, "Summer", now=now())
    await saved_lists.add_to_list(patron.id, listed, "Kindred", now=now())
    restored = (SavedList, SavedListItem, MessageContact, OutboxMessage)
    backup = {model: await model.all().values() for model in restored}
    number = TEST_CONTACTS["sms"]
    # Sent to the gateway; sealed in the stored request under the key for the channel.
    assert any(
        number in body for body in (await bodies_to_send(await OutboxMessage.all())).values()
    )
    assert not any(number in row["body"] for row in backup[OutboxMessage])
    assert all(backup.values())
    # After the backup: both withdrawn, so both keys are destroyed.
    await decides(patron.id, "saved_lists", Decision.NO)
    await decides(patron.id, choice, Decision.NO)
    live = await export_keys()

    for model in (SavedListItem, SavedList, MessageContact, OutboxMessage):
        await model.all().delete()
    await RetainedDataKey.all().delete()
    for model in restored:
        await model.bulk_create([model(**row) for row in backup[model]])
    await ConsentState.filter(patron_id=patron.id).update(granted=True)  # as in the backup
    await import_keys(live)

    outcome = await settle_after_restore(now=now(), forget_contacts=forget_contacts_on)

    assert outcome == Unreadable(rows=3, consents_ended=2)
    for model in (SavedList, SavedListItem, MessageContact):
        assert await model.all().count() == 0
    # The requests restored with the number carry it no more.
    assert not [row.body for row in await OutboxMessage.all() if number in row.body]
    sent = await bodies_to_send(await OutboxMessage.all())
    assert sent
    assert not [body for body in sent.values() if number in body]
    assert not await ConsentState.exists(patron_id=patron.id, granted=True)


async def test_a_title_added_while_a_list_is_deleted_stays_readable(monkeypatch) -> None:
    """Meaningful on PostgreSQL: deleting a list replaces the key and re-seals what is kept;
    a title added meanwhile must wait, or it is sealed under the key being destroyed."""
    await publish(standard_catalog())
    patron = await make_patron()
    await decides(patron.id, "saved_lists", Decision.YES)
    going = await saved_lists.create_list(patron.id, "Going", now=now())
    staying = await saved_lists.create_list(patron.id, "Staying", now=now())
    replacing = asyncio.Event()
    real_replace = saved_lists.replace_key

    async def slow_replace(*args: object, **kwargs: object) -> object:
        replacing.set()
        await asyncio.sleep(0.2)  # the kept lists already read, the new key not yet made
        return await real_replace(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(saved_lists, "replace_key", slow_replace)

    async def add_meanwhile() -> None:
        await replacing.wait()
        await saved_lists.add_to_list(patron.id, staying, "Parable of the Sower", now=now())

    if connections.get("default").capabilities.dialect == "sqlite":
        replacing.set()  # one writing transaction at a time: nothing to interleave
    await asyncio.gather(saved_lists.delete_list(patron.id, going, now=now()), add_meanwhile())
    [kept] = await saved_lists.saved_lists(patron.id)
    assert (kept.name, kept.titles) == ("Staying", ("Parable of the Sower",))
