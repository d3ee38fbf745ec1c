"""The use cases of store `reading_history`: the library system hands loans over (refused
whole without a current consent), the patron reads them, and the store's erasure, retention
and export as its registry entry declares them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from portal.consent.services import require_current_consent
from portal.db import Erasure, fetch_rows
from portal.retained_keys.policy import PatronKey
from portal.retained_keys.services import destroy_key, destroy_keys, key_for, key_of
from portal.stores.base import Cutoff, Expired, Retained, Store
from portal.stores.reading_history.models import HistoryEntry

KEY = "reading_history"
TABLE = HistoryEntry._meta.db_table
_ERASE_MANY = f"DELETE FROM {TABLE} WHERE patron_id IN ({{}}) RETURNING patron_id"  # noqa: S608


@dataclass(frozen=True)
class Loan:
    title: str
    author: str
    borrowed_on: date


async def record_loans(
    patron_id: int, loans: list[Loan], *, now: datetime, recorded_by_client: int | None = None
) -> int:
    """What the library system hands over (`recorded_by_client`: which one); refused whole
    without a current consent."""
    async with in_transaction():
        await require_current_consent(patron_id, KEY)
        key = await key_for(patron_id, KEY, now=now)
        await HistoryEntry.bulk_create(
            [
                HistoryEntry(
                    patron_id=patron_id,
                    title=key.seal(TABLE, "title", loan.title),
                    author=key.seal(TABLE, "author", loan.author),
                    borrowed_on=loan.borrowed_on,
                    recorded_at=now,
                    recorded_by_client=recorded_by_client,
                )
                for loan in loans
            ]
        )
    return len(loans)


async def _opened(patron_id: int) -> list[tuple[HistoryEntry, Loan]]:
    """The patron's entries with what they say: one key read for the page, not per row.
    No key means nothing can be read (erased, or never kept)."""
    key = await key_of(patron_id, KEY)
    if key is None:
        return []
    return [(entry, _loan(key, entry)) for entry in await HistoryEntry.filter(patron_id=patron_id)]


def _loan(key: PatronKey, entry: HistoryEntry) -> Loan:
    return Loan(
        title=key.open(TABLE, "title", entry.title),
        author=key.open(TABLE, "author", entry.author),
        borrowed_on=entry.borrowed_on,
    )


async def history(patron_id: int) -> list[Loan]:
    return [loan for _, loan in await _opened(patron_id)]


async def export(patron_id: int) -> list[dict[str, Any]]:
    return [
        {
            "title": loan.title,
            "author": loan.author,
            "borrowed_on": entry.borrowed_on.isoformat(),
            "recorded_at": entry.recorded_at.isoformat(timespec="seconds"),
        }
        for entry, loan in await _opened(patron_id)
    ]


async def erase(erasure: Erasure, patron_id: int) -> int:
    """The rows and their key, in the caller's erasing transaction: a copy of a row kept
    anywhere (a backup, a dead tuple) is unreadable once the key is gone."""
    deleted: int = await HistoryEntry.filter(patron_id=patron_id).delete()
    await destroy_key(erasure, patron_id, KEY)
    return deleted


async def erase_many(erasure: Erasure, patron_ids: list[int]) -> Counter[int]:
    """`erase` for a batch of patrons: one DELETE, whose RETURNING counts each one's rows."""
    if not patron_ids:
        return Counter()
    rows = await fetch_rows(_ERASE_MANY.format(", ".join("?" * len(patron_ids))), *patron_ids)
    await destroy_keys(erasure, patron_ids, KEY)
    return Counter(int(row["patron_id"]) for row in rows)


async def expire(cutoff: Cutoff, limit: int, after: int) -> Expired:
    # A loan's age counts from the day it was borrowed, and never from later than the day it
    # was recorded: an entry whose loan date was wrong (in the future) still expires on time.
    expired = HistoryEntry.filter(Q(borrowed_on__lt=cutoff.day) | Q(recorded_at__lt=cutoff.moment))
    rows = await expired.filter(id__gt=after).order_by("id").limit(limit).values("id", "patron_id")
    counts = Counter(row["patron_id"] for row in rows)
    await expired.filter(id__in=[row["id"] for row in rows]).delete()
    return Expired(counts, len(rows), max((row["id"] for row in rows), default=after))


async def retained(cutoff: Cutoff) -> Retained:
    """By the rule of `expire`: an entry's age counts from the earlier of its two dates."""
    overdue = await HistoryEntry.filter(
        Q(borrowed_on__lt=cutoff.day) | Q(recorded_at__lt=cutoff.moment)
    ).count()
    first_loan = await HistoryEntry.all().order_by("borrowed_on").first()
    first_recorded = await HistoryEntry.all().order_by("recorded_at").first()
    days = [
        day
        for day in (
            first_loan.borrowed_on if first_loan else None,
            first_recorded.recorded_at.date() if first_recorded else None,
        )
        if day is not None
    ]
    return Retained(oldest=min(days) if days else None, overdue=overdue)


STORE = Store(
    key=KEY,
    models=(HistoryEntry,),
    erase=erase,
    erase_many=erase_many,
    expire=expire,
    export=export,
    retained=retained,
    page="stores.reading_history",
)
