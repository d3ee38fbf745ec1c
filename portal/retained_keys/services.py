"""The keys retained data is sealed under: fetched or made for a write, fetched once for a
page, destroyed in the erasing transaction that deletes their rows, and carried across a
restore (`export_keys`, `import_keys`, `settle_after_restore`). A key is destroyed only when
the consent it served ended: retention deletes rows and keeps the key, so a missing key
always means "this consent ended" (docs/PROMISES.md promise 4)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from portal.catalog.services import PublishedService, services_by_id
from portal.clock import utcnow
from portal.consent.models import ConsentState
from portal.consent.services import Step, set_choice
from portal.db import Erasure, erasing, fetch_rows
from portal.ledger import details
from portal.ledger.models import EventKind
from portal.ledger.services import SYSTEM_JOB, record
from portal.patrons.models import Patron
from portal.retained_keys.models import KEY_TABLE, RetainedDataKey
from portal.retained_keys.policy import (
    CONTACT_STORE,
    SEALED_TABLES,
    PatronKey,
    SealError,
    context,
    new_key,
    open_sealed,
)

__all__ = [
    "KEY_TABLE",
    "Unreadable",
    "destroy_key",
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
_KEYS = "SELECT patron_id, store, key FROM retained_data_key WHERE patron_id IN ({})"
_KEYS_OF_STORES = _KEYS + " AND store LIKE ?"
_DELETE = "DELETE FROM {} WHERE id IN ({})"  # a table of policy.SEALED_TABLES


def _marks(count: int) -> str:
    return ", ".join("?" * count)


async def key_for(patron_id: int, store: str, *, now: datetime) -> PatronKey:
    """The patron's key for the store, made on its first write. Race-free without a lock:
    two first writes both insert, one insert is ignored (UNIQUE (patron, store)), and both
    read the one row that stands. In the writer's transaction."""
    found = await key_of(patron_id, store)
    if found is not None:
        return found
    await RetainedDataKey.bulk_create(
        [RetainedDataKey(patron_id=patron_id, store=store, key=new_key(), created_at=now)],
        ignore_conflicts=True,
    )
    made = await key_of(patron_id, store)
    if made is None:  # the row just inserted, or the one another writer inserted first
        raise RuntimeError(f"no key for patron {patron_id} and store {store}")
    return made


async def key_of(patron_id: int, store: str) -> PatronKey | None:
    """The key to open what is kept, or None: nothing was ever kept, or it was erased."""
    rows = await fetch_rows(
        "SELECT key FROM retained_data_key WHERE patron_id = ? AND store = ?", patron_id, store
    )
    return PatronKey(patron_id, bytes(rows[0]["key"])) if rows else None


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
        (row["patron_id"], row["store"]): PatronKey(row["patron_id"], bytes(row["key"]))
        for row in rows
    }


async def destroy_key(erasure: Erasure, patron_id: int, store: str) -> int:
    """Every copy of what the key sealed becomes unreadable: inside the erasing transaction
    that deletes the rows, counted there so that SQLite's write-ahead log is scrubbed of it."""
    deleted: int = await RetainedDataKey.filter(patron_id=patron_id, store=store).delete()
    return erasure.deleted(deleted)


async def replace_key(erasure: Erasure, patron_id: int, store: str, *, now: datetime) -> PatronKey:
    """A partial erasure (one list, a replaced number): the old key goes, so older copies of
    what was deleted are unreadable, and a new one is made; the caller seals what is kept
    again under it."""
    await destroy_key(erasure, patron_id, store)
    return await key_for(patron_id, store, now=now)


async def export_keys() -> list[tuple[int, str, bytes]]:
    """Every key, for the restore of a backup that does not carry the key table."""
    rows = await fetch_rows("SELECT patron_id, store, key FROM retained_data_key ORDER BY id")
    return [(row["patron_id"], row["store"], bytes(row["key"])) for row in rows]


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
        new = [
            RetainedDataKey(patron_id=patron, store=store, key=key, created_at=moment)
            for patron, store, key in batch
            if patron in held and (patron, store) not in kept
        ]
        # Ignoring a conflict: a key made meanwhile by a write stays (it seals that write).
        await RetainedDataKey.bulk_create(new, ignore_conflicts=True)
        written += len(new)
        batch = []
    return written


async def replace_keys(keys: Iterable[tuple[int, str, bytes]]) -> int:
    """A restored database's keys become today's (`import_keys`): whatever key table it came
    with is emptied first (a copy made outside `portal backup` may carry one), so that no key
    destroyed since the copy was made opens its rows again."""
    await RetainedDataKey.all().delete()
    return await import_keys(keys)


@dataclass(frozen=True)
class Unreadable:
    """What a restore could not bring back: rows that no key opens any more, and the
    consents in force over them that were ended. Counts only, never patrons."""

    rows: int
    consents_ended: int


async def settle_after_restore(*, now: datetime) -> Unreadable:
    """After a restore and `import_keys`: every sealed row whose key is missing or was
    replaced (its consent ended after the backup, perhaps given again) is deleted, and every
    consent the restored database holds in force over that store for that patron is ended
    (an EXPIRED event, and an ERASED event whose reason is "restore"): a key is destroyed
    only when its consent ended, so no withdrawn consent comes back in force; the patron is
    asked again. Connected systems are not asked again: they were when the consent ended."""
    lost = await _unopened_rows()
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
            ended += await _end_consents(patron_id, store, deleted, now=now)
        rows += deleted
    return Unreadable(rows=rows, consents_ended=ended)


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
    return {(row["patron_id"], row["store"]): bytes(row["key"]) for row in rows}


def _uses(service: PublishedService, store: str) -> bool:
    if store.startswith(CONTACT_STORE):
        channel = store.removeprefix(CONTACT_STORE)
        return service.choice is not None and service.choice.channel == channel
    return service.store == store


async def _end_consents(patron_id: int, store: str, rows: int, *, now: datetime) -> int:
    states = await ConsentState.filter(patron_id=patron_id, granted=True).select_for_update()
    services = await services_by_id([state.service_id for state in states])
    using = [state for state in states if _uses(services[state.service_id], store)]
    for state in using:
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
    return len(using)
