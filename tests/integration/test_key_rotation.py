"""Compaction rotates the wrapping keys under which a key was destroyed (portal.retained_keys
.rotation): online, in batches, never rewriting the key table, resuming after a kill, and
safe against a writer that wraps a new key under the old wrapping key meanwhile."""

from __future__ import annotations

import asyncio
import time
from datetime import date

import asyncpg
import pytest
from tortoise.connection import connections
from tortoise.transactions import in_transaction

from portal import batches
from portal.consent.policy import Decision
from portal.db import erasing
from portal.erasure.services import compact
from portal.retained_keys import policy, rotation
from portal.retained_keys import services as retained_keys
from portal.retained_keys.models import RetainedDataKey, RetainedKeyWrap
from portal.retained_keys.rotation import Rotated, keys_to_rewrap
from portal.stores.reading_history import services as reading_history
from tests.factories import decides, make_patron, now, publish, standard_catalog

pytestmark = pytest.mark.usefixtures("db")


async def borrowers(count: int) -> list[int]:
    """Patrons who each handed over a loan, titled by their id."""
    await publish(standard_catalog())
    made = []
    for _ in range(count):
        patron = await make_patron()
        await decides(patron.id, "reading_history", Decision.YES)
        loan = reading_history.Loan(f"Title of {patron.id}", "", date(2026, 1, 1))
        await reading_history.record_loans(patron.id, [loan], now=now())
        made.append(patron.id)
    return made


async def titles(patron_id: int) -> list[str]:
    return [loan.title for loan in await reading_history.history(patron_id)]


async def test_a_withdrawal_marks_its_wrapping_key_and_compaction_rotates_it(monkeypatch) -> None:
    monkeypatch.setattr(policy, "BUCKETS", 2)
    monkeypatch.setattr(batches, "BATCH", 2)
    patrons = await borrowers(7)
    going = patrons[0]
    going_bucket = policy.bucket_of(going)
    [old] = await RetainedKeyWrap.filter(bucket=going_bucket)
    await decides(going, "reading_history", Decision.NO)
    assert [w.id for w in await RetainedKeyWrap.filter(rotate=True)] == [old.id]
    assert await keys_to_rewrap() == len([p for p in patrons[1:] if p % 2 == going_bucket])
    done: list[int] = []

    async def progress(rows: int) -> None:
        done.append(rows)

    rotated = await compact(now=now(), progress=progress)

    neighbours = [p for p in patrons[1:] if policy.bucket_of(p) == going_bucket]
    assert rotated == Rotated(wrapping_keys=1, keys=len(neighbours), left=0)
    assert sum(done) == len(neighbours)
    assert max(done) <= 2  # a batch at a time
    assert not await RetainedKeyWrap.exists(id=old.id)
    assert not await RetainedKeyWrap.exists(rotate=True)
    [new] = await RetainedKeyWrap.filter(bucket=going_bucket)
    assert new.generation == old.generation + 1
    for patron_id in patrons[1:]:
        assert await titles(patron_id) == [f"Title of {patron_id}"]
    assert await RetainedDataKey.filter(wrapped_by_id=new.id).count() == len(neighbours)
    # Nothing marked: nothing to do, nothing rewritten.
    assert await compact(now=now()) == Rotated(0, 0, 0)


async def test_a_rotation_killed_half_way_is_finished_by_the_next_run(monkeypatch) -> None:
    monkeypatch.setattr(policy, "BUCKETS", 1)
    monkeypatch.setattr(batches, "BATCH", 2)
    patrons = await borrowers(8)
    await decides(patrons[0], "reading_history", Decision.NO)
    [old] = await RetainedKeyWrap.all()

    class Killed(Exception):
        pass

    async def killed_after_two_batches(rows: int, seen: list[int] = []) -> None:  # noqa: B006
        seen.append(rows)
        if len(seen) == 2:
            raise Killed

    with pytest.raises(Killed):
        await compact(now=now(), progress=killed_after_two_batches)
    # Half-way: some keys under the new wrapping key, the rest under the old, all opening.
    [successor] = await RetainedKeyWrap.exclude(id=old.id)
    assert await RetainedDataKey.filter(wrapped_by_id=successor.id).count() == 4
    assert await RetainedDataKey.filter(wrapped_by_id=old.id).count() == 3
    for patron_id in patrons[1:]:
        assert await titles(patron_id) == [f"Title of {patron_id}"]

    assert await compact(now=now()) == Rotated(wrapping_keys=1, keys=3, left=0)
    # The successor the killed run made is used, not a third generation.
    assert [w.id for w in await RetainedKeyWrap.all()] == [successor.id]
    for patron_id in patrons[1:]:
        assert await titles(patron_id) == [f"Title of {patron_id}"]


async def test_a_writer_holding_the_old_wrapping_key_is_never_refused(
    engine: str, monkeypatch
) -> None:
    """The race: a loan intake reads its bucket's newest wrapping key, compaction makes the
    next one, re-wraps every key it sees and deletes the old one, then the intake inserts a
    key wrapped under the deleted one, and the foreign key refuses the loan. The intake holds
    the wrapping key (FOR KEY SHARE) until it commits: compaction leaves that one marked,
    and the next run re-wraps the intake's key and deletes it."""
    if engine != "postgres":
        pytest.skip("SQLite runs one writing transaction at a time: nothing to interleave")
    monkeypatch.setattr(policy, "BUCKETS", 1)
    monkeypatch.setattr(rotation, "DELETE_TRIES", 2)
    first, second, newcomer = await borrowers(3)
    await decides(first, "reading_history", Decision.NO)  # marks the one wrapping key
    await RetainedDataKey.filter(patron_id=newcomer).delete()  # its first loan is ahead
    holding, go_on = asyncio.Event(), asyncio.Event()
    real = retained_keys.wrapping_key

    async def held_open(bucket: int, *, now: object) -> tuple[int, bytes]:
        found = await real(bucket, now=now)  # type: ignore[arg-type]
        holding.set()
        await go_on.wait()  # the intake's transaction still open: compaction runs now
        return found

    monkeypatch.setattr(retained_keys, "wrapping_key", held_open)

    async def intake() -> None:
        async with in_transaction():
            key = await retained_keys.key_for(newcomer, reading_history.KEY, now=now())
        assert key is not None

    writer = asyncio.create_task(intake())
    real_rewrite = rotation.rewrite_small_table

    async def rewrite_once_the_intake_committed(*args: object, **kwargs: object) -> None:
        go_on.set()  # the rotation is over: the intake goes on, and its lock on the table ends
        await writer  # not refused
        await real_rewrite(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(rotation, "rewrite_small_table", rewrite_once_the_intake_committed)
    await holding.wait()
    during = await compact(now=now())
    assert during == Rotated(wrapping_keys=0, keys=1, left=1)
    assert await compact(now=now()) == Rotated(wrapping_keys=1, keys=1, left=0)  # the intake's
    assert await RetainedKeyWrap.all().count() == 1
    assert await retained_keys.key_of(newcomer, reading_history.KEY) is not None
    assert await titles(second) == [f"Title of {second}"]


async def test_compaction_makes_no_history_read_wait_a_second_behind_a_backup(
    engine: str, db: str, monkeypatch
) -> None:
    """A backup (pg_dump) holds ACCESS SHARE on every table for its whole length. A rewrite
    that waits for its exclusive lock queues every page behind it: the key table's VACUUM
    FULL waited up to 5 s, and so did every history page. Compaction now waits at most half
    a second at a time, for the wrapping-key table alone, while pages go on."""
    if engine != "postgres":
        pytest.skip("SQLite takes no table locks: writers wait their turn, readers never")
    monkeypatch.setattr(policy, "BUCKETS", 16)
    monkeypatch.setattr(batches, "BATCH", 2)
    monkeypatch.setattr(rotation, "REWRITE_PAUSE_SECONDS", 0.2)
    patrons = await borrowers(40)
    for patron_id in patrons[:16]:
        await decides(patron_id, "reading_history", Decision.NO)  # every bucket marked
    reader = patrons[-1]
    backup = await asyncpg.connect(db)
    await backup.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    await backup.execute("SELECT count(*) FROM retained_data_key")
    await backup.execute("SELECT count(*) FROM retained_key_wrap")
    await backup.execute("SELECT count(*) FROM outbox_message")
    waits: list[float] = []
    stop = asyncio.Event()

    async def history_pages() -> None:
        while not stop.is_set():
            started = time.monotonic()
            assert await titles(reader) == [f"Title of {reader}"]
            waits.append(time.monotonic() - started)
            await asyncio.sleep(0.01)

    async def backup_ends() -> None:
        await asyncio.sleep(2)
        await backup.execute("COMMIT")

    pages = asyncio.create_task(history_pages())
    ending = asyncio.create_task(backup_ends())
    try:
        await compact(now=now())
    finally:
        await ending
        stop.set()
        await pages
        await backup.close()
    assert len(waits) > 20
    assert max(waits) < 1.0, f"a history page waited {max(waits):.2f} s"
    assert not await RetainedKeyWrap.exists(rotate=True)
    assert await connections.get("default").execute_query_dict("SELECT 1")


async def test_a_batch_marking_wrapping_keys_never_waits_for_a_writer_holding_one(
    engine: str,
) -> None:
    """A job's batch (expire-consents) destroys many keys and marks their wrapping keys. A
    writer (a loan intake, or compaction re-wrapping a key) holds a wrapping key KEY SHARE
    until it commits. Marking must not wait for it: a FOR UPDATE did, and with compaction
    holding one and waiting for a key row the batch held, the two deadlocked."""
    if engine != "postgres":
        pytest.skip("SQLite runs one writing transaction at a time: nothing to interleave")
    first, second = await borrowers(2)
    assert policy.bucket_of(first) != policy.bucket_of(second)
    holding, go_on = asyncio.Event(), asyncio.Event()

    async def writer() -> None:
        async with in_transaction():
            await retained_keys.wrapping_key(policy.bucket_of(first), now=now())
            holding.set()
            await go_on.wait()

    held = asyncio.create_task(writer())
    await holding.wait()
    try:
        async with erasing() as erasure:
            await connections.get("default").execute_script("SET LOCAL lock_timeout = '1s'")
            destroyed = await retained_keys.destroy_keys(
                erasure, [first, second], reading_history.KEY
            )
    finally:
        go_on.set()
        await held
    assert destroyed == 2
    assert await RetainedKeyWrap.filter(rotate=True).count() == 2
