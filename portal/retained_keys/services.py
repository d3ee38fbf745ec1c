"""The keys retained data is sealed under: fetched or made for a write, fetched once for a
page, destroyed in the erasing transaction that deletes their rows, and carried across a
restore (`export_keys`, `import_keys`, `settle_after_restore`). A key is destroyed only when
the consent it served ended: retention deletes rows and keeps the key, so a missing key
always means "this consent ended" (docs/PROMISES.md promise 4)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.connection import connections
from tortoise.transactions import in_transaction

from portal.catalog.services import PublishedService, services_by_id
from portal.clock import utcnow
from portal.consent.models import ConsentState
from portal.consent.services import Step, set_choice
from portal.db import Erasure, erasing, fetch_rows
from portal.ledger import details
from portal.ledger.models import ConsentEvent, EventKind
from portal.ledger.services import SYSTEM_JOB, record
from portal.patrons.models import Patron
from portal.retained_keys.models import KEY_TABLE, WRAP_TABLE, RetainedDataKey, RetainedKeyWrap
from portal.retained_keys.policy import (
    CONTACT_STORE,
    SEALED_TABLES,
    PatronKey,
    SealError,
    bucket_of,
    context,
    new_key,
    open_sealed,
    unwrap_key,
    wrap_key,
)

__all__ = [
    "KEY_TABLE",
    "WRAP_TABLE",
    "Unreadable",
    "consents_ended_since",
    "destroy_key",
    "destroy_keys",
    "end_consents_ended_live",
    "export_keys",
    "import_keys",
    "key_for",
    "key_of",
    "keys_of",
    "replace_key",
    "settle_after_restore",
]

# Rows read at once when a restored database is searched for what no longer opens.
BATCH = 5000
# Each key with the wrapping key it is wrapped under: one join, one AES-GCM open per key.
KEYS_JOIN = (
    "SELECT k.patron_id, k.store, k.key, w.key AS wrapping FROM retained_data_key k "
    "JOIN retained_key_wrap w ON w.id = k.wrapped_by_id "
)
_KEYS = KEYS_JOIN + "WHERE k.patron_id IN ({})"
_KEYS_OF_STORES = _KEYS + " AND k.store LIKE ?"
_KEY = KEYS_JOIN + "WHERE k.patron_id = ? AND k.store = ?"
# The newest wrapping key of a bucket, which new keys are wrapped under. On PostgreSQL it is
# locked against deletion (FOR KEY SHARE) until the writer commits: compaction deletes an
# old wrapping key only once no key is wrapped under it, and a writer that read it before
# compaction made the next one must not wrap a key under it that the deletion then misses
# (the foreign key would refuse the writer's insert). SQLite's writers are serialised.
_NEWEST_WRAP = (
    "SELECT id, key FROM retained_key_wrap WHERE bucket = ? ORDER BY generation DESC LIMIT 1"
)
_DELETE = "DELETE FROM {} WHERE id IN ({})"  # a table of policy.SEALED_TABLES


def _marks(count: int) -> str:
    return ", ".join("?" * count)


def unwrapped(row: dict[str, Any]) -> bytes:
    """A row of KEYS_JOIN's: the patron's key, unwrapped."""
    return unwrap_key(bytes(row["wrapping"]), bytes(row["key"]), row["patron_id"], row["store"])


def _postgres() -> bool:
    dialect: str = connections.get("default").capabilities.dialect
    return dialect == "postgres"


async def wrapping_key(bucket: int, *, now: datetime) -> tuple[int, bytes]:
    """The bucket's newest wrapping key (id, key), made on the bucket's first need: race-free,
    as two first writers both insert generation 0 and one insert is ignored (UNIQUE (bucket,
    generation)). In the writer's transaction, which it stays locked in (_NEWEST_WRAP)."""
    newest = _NEWEST_WRAP + (" FOR KEY SHARE" if _postgres() else "")
    for _ in range(3):
        rows = await fetch_rows(newest, bucket)
        if rows:
            return rows[0]["id"], bytes(rows[0]["key"])
        await RetainedKeyWrap.bulk_create(
            [RetainedKeyWrap(bucket=bucket, generation=0, key=new_key(), created_at=now)],
            ignore_conflicts=True,
        )
    raise RuntimeError(f"no wrapping key for bucket {bucket}")


async def key_for(patron_id: int, store: str, *, now: datetime) -> PatronKey:
    """The patron's key for the store, made on its first write. Race-free without a lock:
    two first writes both insert, one insert is ignored (UNIQUE (patron, store)), and both
    read the one row that stands. In the writer's transaction."""
    found = await key_of(patron_id, store)
    if found is not None:
        return found
    wrap_id, wrapping = await wrapping_key(bucket_of(patron_id), now=now)
    await RetainedDataKey.bulk_create(
        [
            RetainedDataKey(
                patron_id=patron_id,
                store=store,
                key=wrap_key(wrapping, new_key(), patron_id, store),
                wrapped_by_id=wrap_id,
                created_at=now,
            )
        ],
        ignore_conflicts=True,
    )
    made = await key_of(patron_id, store)
    if made is None:  # the row just inserted, or the one another writer inserted first
        raise RuntimeError(f"no key for patron {patron_id} and store {store}")
    return made


async def key_of(patron_id: int, store: str) -> PatronKey | None:
    """The key to open what is kept, or None: nothing was ever kept, or it was erased."""
    rows = await fetch_rows(_KEY, patron_id, store)
    return PatronKey(patron_id, unwrapped(rows[0])) if rows else None


async def keys_of(patron_ids: list[int], store_prefix: str) -> dict[tuple[int, str], PatronKey]:
    """Several patrons' keys at once (the API reads a hundred patrons' contacts), of every
    store whose name starts with `store_prefix`, by (patron, store)."""
    if not patron_ids:
        return {}
    rows = await fetch_rows(
        _KEYS_OF_STORES.format(_marks(len(patron_ids))),
        *patron_ids,
        store_prefix + "%",
    )
    return {
        (row["patron_id"], row["store"]): PatronKey(row["patron_id"], unwrapped(row))
        for row in rows
    }


async def destroy_key(erasure: Erasure, patron_id: int, store: str) -> int:
    """Every copy of what the key sealed becomes unreadable: inside the erasing transaction
    that deletes the rows, counted there so that SQLite's write-ahead log is scrubbed of it.
    Its wrapping key is marked for compaction, which rotates it: the key's wrapped bytes
    left in a dead tuple then open under no key that exists. Marked before the key row is
    deleted, so that this transaction never holds the key row while waiting for the
    wrapping key that compaction may be deleting (which waits for the key row)."""
    under = await RetainedDataKey.filter(patron_id=patron_id, store=store).values_list(
        "wrapped_by_id", flat=True
    )
    await _mark(list(under))
    rows = await fetch_rows(
        "DELETE FROM retained_data_key WHERE patron_id = ? AND store = ? RETURNING wrapped_by_id",
        patron_id,
        store,
    )
    # Re-wrapped by compaction between the two statements: its new wrapping key is marked.
    await _mark([row["wrapped_by_id"] for row in rows if row["wrapped_by_id"] not in under])
    return erasure.deleted(len(rows))


async def _mark(wrap_ids: list[Any]) -> None:
    ids = sorted(set(wrap_ids))
    if not ids:
        return
    if len(ids) > 1:
        # A batch's row locks lowest id first, as every batch takes them: two never deadlock.
        # NO KEY UPDATE, the lock the UPDATE below takes anyway: a FOR UPDATE would conflict
        # with the KEY SHARE a writer (or compaction re-wrapping a key under this wrapping
        # key) holds, and deadlock with compaction. Whole rows: Tortoise leaves the lock out
        # of a values() query.
        await (
            RetainedKeyWrap.filter(id__in=ids, rotate=False)
            .order_by("id")
            .select_for_update(no_key=True)
        )
    # A row lock on a tiny table; already marked: nothing written.
    await RetainedKeyWrap.filter(id__in=ids, rotate=False).update(rotate=True)


async def destroy_keys(erasure: Erasure, patron_ids: list[int], store: str) -> int:
    """`destroy_key` for a batch of patrons, in a statement or two (a job ending their
    consents), their wrapping keys marked as `destroy_key` marks one."""
    if not patron_ids:
        return 0
    under = await RetainedDataKey.filter(patron_id__in=patron_ids, store=store).values_list(
        "wrapped_by_id", flat=True
    )
    await _mark(list(under))
    rows = await fetch_rows(
        f"DELETE FROM retained_data_key WHERE patron_id IN ({_marks(len(patron_ids))}) "  # noqa: S608 - only marks
        "AND store = ? RETURNING wrapped_by_id",
        *patron_ids,
        store,
    )
    await _mark([row["wrapped_by_id"] for row in rows if row["wrapped_by_id"] not in under])
    return erasure.deleted(len(rows))


async def replace_key(erasure: Erasure, patron_id: int, store: str, *, now: datetime) -> PatronKey:
    """A partial erasure (one list, a replaced number): the old key goes, so older copies of
    what was deleted are unreadable, and a new one is made; the caller seals what is kept
    again under it."""
    await destroy_key(erasure, patron_id, store)
    return await key_for(patron_id, store, now=now)


async def export_keys() -> list[tuple[int, str, bytes]]:
    """Every key, unwrapped, for the restore of a backup that does not carry the key table
    (nor the wrapping keys): the restore wraps them again under the new database's own."""
    rows = await fetch_rows(KEYS_JOIN + "ORDER BY k.id")
    return [(row["patron_id"], row["store"], unwrapped(row)) for row in rows]


async def import_keys(keys: Iterable[tuple[int, str, bytes]]) -> int:
    """Keys into a restored database: only for patrons it holds, a key it holds untouched.
    Returns the keys written. In batches: a consortium holds millions."""
    moment = utcnow()
    written = 0
    batch: list[tuple[int, str, bytes]] = []
    for item in [*keys, None]:
        if item is not None:
            batch.append(item)
            if len(batch) < BATCH:
                continue
        if not batch:
            break
        patrons = sorted({patron for patron, _, _ in batch})
        held = {row["id"] for row in await Patron.filter(id__in=patrons).values("id")}
        kept = set((await _keys_by_patron(patrons)).keys())
        async with in_transaction():  # the wrapping keys stay locked until the keys are in
            wrappings: dict[int, tuple[int, bytes]] = {}
            new = []
            for patron, store, key in batch:
                if patron not in held or (patron, store) in kept:
                    continue
                bucket = bucket_of(patron)
                if bucket not in wrappings:
                    wrappings[bucket] = await wrapping_key(bucket, now=moment)
                wrap_id, wrapping = wrappings[bucket]
                wrapped = wrap_key(wrapping, key, patron, store)
                new.append(
                    RetainedDataKey(
                        patron_id=patron,
                        store=store,
                        key=wrapped,
                        wrapped_by_id=wrap_id,
                        created_at=moment,
                    )
                )
            # Ignoring a conflict: a key made meanwhile by a write stays (it seals that write).
            await RetainedDataKey.bulk_create(new, ignore_conflicts=True)
        written += len(new)
        batch = []
    return written


async def replace_keys(keys: Iterable[tuple[int, str, bytes]]) -> int:
    """A restored database's keys become today's (`import_keys`): whatever key table it came
    with is emptied first (a copy made outside `portal backup` may carry one), so that no key
    destroyed since the copy was made opens its rows again; and so are its wrapping keys."""
    await RetainedDataKey.all().delete()
    await RetainedKeyWrap.all().delete()
    return await import_keys(keys)


@dataclass(frozen=True)
class Unreadable:
    """What a restore could not bring back: rows that no key opens any more, and the
    consents in force over them that were ended. Counts only, never patrons."""

    rows: int
    consents_ended: int


async def settle_after_restore(
    *, now: datetime, forget_contacts: Callable[[int, str], Awaitable[int]]
) -> Unreadable:
    """After a restore and `import_keys`: every sealed row that no key opens is deleted. Where
    the patron has no key for that store any more, its consent ended after the backup (a key
    is destroyed only then): every consent the restored database holds in force over that
    store for that patron is ended too (an EXPIRED event, and an ERASED event whose reason is
    "restore"), so no withdrawn consent comes back in force and the patron is asked again.
    Where a newer key stands (part of the store was deleted since, or a number changed), only
    the rows go: the consent is the patron's still. Connected systems are not asked again:
    they were when the consent ended. `forget_contacts`: portal.outbox's, which takes a
    channel's number or address out of the patron's requests restored with it."""
    lost = await _unopened_rows()
    held = await _keys_by_patron(sorted({patron for patron, _ in lost})) if lost else {}
    rows = ended = 0
    for (patron_id, store), by_table in sorted(lost.items()):
        async with erasing() as erasure:
            deleted = 0
            for table in (sealed.table for sealed in SEALED_TABLES):
                ids = by_table.get(table, [])
                for start in range(0, len(ids), BATCH):
                    chunk = ids[start : start + BATCH]
                    await fetch_rows(_DELETE.format(table, _marks(len(chunk))), *chunk)
                    deleted += len(chunk)
            erasure.deleted(deleted)
            if store.startswith(CONTACT_STORE):
                # The requests restored with it may carry the number (sealed, or in clear
                # from before migration 0025): taken out, as erasing it does.
                channel = store.removeprefix(CONTACT_STORE)
                erasure.deleted(await forget_contacts(patron_id, channel))
            withdrawn = (patron_id, store) not in held
            ended += await _end_consents(patron_id, store, deleted, now=now, end=withdrawn)
        rows += deleted
    return Unreadable(rows=rows, consents_ended=ended)


async def consents_ended_since(moment: datetime) -> list[tuple[int, int]]:
    """In the live database: each (patron, service) whose consent is not in force now and
    changed since `moment` (a backup's time), so that a restore of that backup ends it too."""
    changed = set(
        await ConsentEvent.filter(occurred_at__gte=moment, service_id__isnull=False)
        .order_by("patron_id", "service_id")
        .distinct()
        .values_list("patron_id", "service_id")
    )
    ended: list[tuple[int, int]] = []
    patrons = sorted({patron for patron, _ in changed})
    for start in range(0, len(patrons), BATCH):
        not_in_force = await ConsentState.filter(
            patron_id__in=patrons[start : start + BATCH], granted=False
        ).values_list("patron_id", "service_id")
        ended.extend(pair for pair in not_in_force if pair in changed)
    return sorted(ended)


async def end_consents_ended_live(pairs: Iterable[tuple[int, int]], *, now: datetime) -> int:
    """In a restored database: each consent it holds in force that the live database has
    ended since the backup (`consents_ended_since`) is ended here too, with an EXPIRED
    event: a withdrawal of a service that kept nothing sealed (a newsletter) has no key to
    miss, and must not come back in force either. Returns the consents ended."""
    ended = 0
    for patron_id, service_id in pairs:
        async with in_transaction():
            state = (
                await ConsentState.filter(patron_id=patron_id, service_id=service_id)
                .select_for_update()
                .first()
            )
            if state is None or not state.granted:
                continue
            service = (await services_by_id([service_id]))[service_id]
            step = Step(patron_id=patron_id, service=service, now=now, party=SYSTEM_JOB)
            await set_choice(step, state, EventKind.EXPIRED, None, granted=False)
            ended += 1
    return ended


async def _unopened_rows() -> dict[tuple[int, str], dict[str, list[int]]]:
    lost: dict[tuple[int, str], dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
    for sealed in SEALED_TABLES:
        after = 0
        while batch := await fetch_rows(sealed.rows, after, BATCH):
            after = batch[-1]["id"]
            patrons = sorted({row["patron_id"] for row in batch})
            keys = await _keys_by_patron(patrons)
            for row in batch:
                key = keys.get((row["patron_id"], row["store"]))
                if key is None or not _opens(key, sealed.table, sealed.column, row):
                    lost[(row["patron_id"], row["store"])][sealed.table].append(row["id"])
    return lost


def _opens(key: bytes, table: str, column: str, row: dict[str, object]) -> bool:
    try:
        open_sealed(
            key, str(row["sealed"]), context=context(table, column, int(str(row["patron_id"])))
        )
    except SealError:
        return False
    return True


async def _keys_by_patron(patron_ids: list[int]) -> dict[tuple[int, str], bytes]:
    rows = await fetch_rows(_KEYS.format(_marks(len(patron_ids))), *patron_ids)
    return {(row["patron_id"], row["store"]): unwrapped(row) for row in rows}


def _uses(service: PublishedService, store: str) -> bool:
    if store.startswith(CONTACT_STORE):
        channel = store.removeprefix(CONTACT_STORE)
        return service.choice is not None and service.choice.channel == channel
    return service.store == store


async def _end_consents(patron_id: int, store: str, rows: int, *, now: datetime, end: bool) -> int:
    """The ERASED event of what a restore could not open, against the store's service in
    force; and, when `end`, those consents ended first. Returns the consents ended."""
    states = await ConsentState.filter(patron_id=patron_id, granted=True).select_for_update()
    services = await services_by_id([state.service_id for state in states])
    using = [state for state in states if _uses(services[state.service_id], store)]
    for state in using if end else []:
        service = services[state.service_id]
        step = Step(patron_id=patron_id, service=service, now=now, party=SYSTEM_JOB)
        await set_choice(step, state, EventKind.EXPIRED, None, granted=False)
    if using:
        first = services[using[0].service_id]
        await record(
            patron_id,
            EventKind.ERASED,
            SYSTEM_JOB,
            now=now,
            service_id=first.id,
            purposes=first.terms["purposes"],
            detail=details.Erased(rows_deleted=rows, reason="restore"),
        )
    return len(using) if end else 0
