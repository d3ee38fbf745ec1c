"""Compaction of erased keys without rewriting the key table: each wrapping key under which a
key was destroyed (services.destroy_key marks it) is rotated online. A new wrapping key is
made for its bucket, the bucket's keys are re-wrapped under it in short batches, the old one
is deleted, and only the wrapping-key table (a few MB) is rewritten. A destroyed key then
survives only wrapped under a wrapping key that exists nowhere (docs/PROMISES.md promise 4)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tortoise.connection import connections
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from portal import batches
from portal.batches import Progress, no_progress
from portal.db import LockBusy, briefly_locking, fetch_rows, rewrite_small_table
from portal.retained_keys.models import WRAP_TABLE, RetainedDataKey, RetainedKeyWrap
from portal.retained_keys.policy import new_key, unwrap_key, wrap_key

# Deleting an old wrapping key waits this long at most for a writer still holding it (FOR
# KEY SHARE, services.wrapping_key), and is tried this many times, the keys committed under
# it meanwhile re-wrapped before each; then it is left marked for the next run.
DELETE_TIMEOUT_MS = 200
DELETE_TRIES = 5
# The wrapping-key table's rewrite: each try waits this long for its lock, a pause between.
REWRITE_TIMEOUT_MS = 500
REWRITE_TRIES = 5
REWRITE_PAUSE_SECONDS = 1.0

_TO_REWRAP = (
    "SELECT id, patron_id, store, key FROM retained_data_key "
    "WHERE wrapped_by_id = ? AND id > ? ORDER BY id LIMIT ?"
)
# Only a row still wrapped by the old key: one deleted or replaced meanwhile is left alone.
_REWRAP = (
    "UPDATE retained_data_key SET key = {}, wrapped_by_id = {} WHERE id = {} AND wrapped_by_id = {}"
)


@dataclass(frozen=True)
class Rotated:
    wrapping_keys: int  # rotated and deleted
    keys: int  # re-wrapped
    left: int  # still marked: a writer held them each time (the next run goes on)


async def keys_to_rewrap() -> int:
    """The keys wrapped under marked wrapping keys: the job's total, before it starts."""
    counted: int = await RetainedDataKey.filter(wrapped_by__rotate=True).count()
    return counted


async def rotate_marked(*, now: datetime, progress: Progress = no_progress) -> Rotated:
    """Rotate every marked wrapping key, lowest id first; `progress` after each batch of keys
    re-wrapped. A run killed half-way leaves each key wrapped under the old wrapping key or
    the new one, both standing: the next run finds the old one still marked and finishes."""
    rotated = keys = left = 0
    after = 0
    while (
        marked := await RetainedKeyWrap.filter(rotate=True, id__gt=after)
        .order_by("id")
        .limit(batches.BATCH)
        .values_list("id", "bucket")
    ):
        for wrap_id, bucket in marked:
            done, rewrapped = await _rotate(wrap_id, bucket, now=now, progress=progress)
            keys += rewrapped
            rotated, left = rotated + done, left + (not done)
        after = marked[-1][0]
    await rewrite_small_table(
        WRAP_TABLE,
        timeout_ms=REWRITE_TIMEOUT_MS,
        tries=REWRITE_TRIES,
        pause=REWRITE_PAUSE_SECONDS,
    )
    return Rotated(rotated, keys, left)


async def _rotate(
    old_id: int, bucket: int, *, now: datetime, progress: Progress
) -> tuple[bool, int]:
    """One wrapping key: its keys re-wrapped under the bucket's successor, then deleted.
    Returns whether it was deleted, and the keys re-wrapped."""
    old = await RetainedKeyWrap.get_or_none(id=old_id)
    if old is None:
        return True, 0  # rotated by another run meanwhile
    new_id, new = await _successor(old_id, bucket, now=now)
    rewrapped = 0
    for _ in range(DELETE_TRIES):
        rewrapped += await _rewrap(old_id, bytes(old.key), new_id, new, progress)
        try:
            async with briefly_locking(DELETE_TIMEOUT_MS):
                await RetainedKeyWrap.filter(id=old_id).delete()
            return True, rewrapped
        except IntegrityError:
            continue  # a writer committed a key under it since the last batch: re-wrap that
        except LockBusy:
            continue  # a writer holds it still (FOR KEY SHARE), for a moment
    return False, rewrapped


async def _successor(old_id: int, bucket: int, *, now: datetime) -> tuple[int, bytes]:
    """The bucket's newest wrapping key when it is newer than the old one and unmarked (one
    an interrupted run made), otherwise a new generation. Committed before any key is
    re-wrapped, so every writer from then on wraps under it, not under the old one."""
    while True:
        newest = (
            await RetainedKeyWrap.filter(bucket=bucket)
            .order_by("-generation")
            .first()
            .values("id", "generation", "key", "rotate")
        )
        if newest is not None and newest["id"] != old_id and not newest["rotate"]:
            return newest["id"], bytes(newest["key"])
        generation = newest["generation"] + 1 if newest is not None else 0
        await RetainedKeyWrap.bulk_create(
            [RetainedKeyWrap(bucket=bucket, generation=generation, key=new_key(), created_at=now)],
            ignore_conflicts=True,
        )


async def _rewrap(old_id: int, old: bytes, new_id: int, new: bytes, progress: Progress) -> int:
    """Every key still wrapped under the old wrapping key, wrapped under the new one, BATCH
    keys a transaction. Returns the keys re-wrapped."""
    rewrapped = 0
    after = 0
    while True:
        async with in_transaction():
            rows = await fetch_rows(_TO_REWRAP, old_id, after, batches.BATCH)
            if not rows:
                return rewrapped
            values = []
            for row in rows:
                patron_id, store = row["patron_id"], row["store"]
                key = unwrap_key(old, bytes(row["key"]), patron_id, store)
                values.append([wrap_key(new, key, patron_id, store), new_id, row["id"], old_id])
            connection = connections.get("default")
            postgres = connection.capabilities.dialect == "postgres"
            marks = ("$1", "$2", "$3", "$4") if postgres else ("?",) * 4
            await connection.execute_many(_REWRAP.format(*marks), values)
        rewrapped += len(rows)
        await progress(len(rows))
        after = rows[-1]["id"]
