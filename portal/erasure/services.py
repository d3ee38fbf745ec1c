"""Retained data: accepted only under a current consent, erased when the consent ends.

Writes lock the patron's row first, the same lock a withdrawal takes, so data can never slip
in between a withdrawal's erasure and its commit (PRODUCT.md promises 2 and 4).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from tortoise.transactions import in_transaction

from portal.catalog.models import Service
from portal.consent.ledger import SYSTEM_JOB, record
from portal.consent.models import EventKind
from portal.consent.policy import Status
from portal.consent.state import status_of_store
from portal.erasure.models import HistoryEntry, SavedList, SavedListItem
from portal.patrons.models import Patron


class NoCurrentConsent(Exception):
    """The patron has not consented to the service that would retain this data."""

    code = "no_current_consent"


class NotFound(Exception):
    code = "not_found"


@dataclass(frozen=True)
class Loan:
    title: str
    author: str
    borrowed_on: date


async def erase_store(patron_id: int, store: str) -> int:
    """Delete every row of a store for a patron; call inside the withdrawal's transaction."""
    if store == "reading_history":
        deleted: int = await HistoryEntry.filter(patron_id=patron_id).delete()
        return deleted
    if store == "saved_lists":
        list_ids = await SavedList.filter(patron_id=patron_id).values_list("id", flat=True)
        items: int = await SavedListItem.filter(saved_list_id__in=list_ids).delete()
        lists: int = await SavedList.filter(id__in=list_ids).delete()
        return items + lists
    raise ValueError(f"unknown store {store!r}")


async def apply_retention(*, now: datetime, today: date) -> int:
    """Scheduled: delete retained rows older than their service's retention period, as each
    notice promises, and record each patron's erasure. Returns the rows deleted."""
    deleted = 0
    for service in await Service.filter(store__not_isnull=True):
        cutoff_day = today - timedelta(days=int(service.terms["retention_days"]))
        cutoff = now - timedelta(days=int(service.terms["retention_days"]))
        async with in_transaction():
            if service.store == "reading_history":
                expired = HistoryEntry.filter(borrowed_on__lt=cutoff_day)
                counts: Counter[int] = Counter(
                    row["patron_id"] for row in await expired.values("patron_id")
                )
                await expired.delete()
            else:
                # A list lives while it is used: its newest change counts, not its creation.
                lists = await SavedList.filter(created_at__lt=cutoff).prefetch_related("items")
                stale = [
                    saved for saved in lists if all(item.added_at < cutoff for item in saved.items)
                ]
                counts = Counter()
                for saved in stale:
                    counts[saved.patron_id] += 1 + len(saved.items)
                    await SavedListItem.filter(saved_list_id=saved.id).delete()
                    await saved.delete()
            for patron_id, rows in counts.items():
                await record(
                    patron_id,
                    EventKind.ERASED,
                    SYSTEM_JOB,
                    now=now,
                    service=service,
                    detail={"rows_deleted": rows, "reason": "retention"},
                )
                deleted += rows
    return deleted


async def _require_consent(patron_id: int, store: str) -> None:
    await Patron.filter(id=patron_id).select_for_update().first()
    _, status = await status_of_store(patron_id, store)
    if status is not Status.ON:
        raise NoCurrentConsent


async def record_loans(patron_id: int, loans: list[Loan], *, now: datetime) -> int:
    """What the library system hands over; refused whole without a current consent."""
    async with in_transaction():
        await _require_consent(patron_id, "reading_history")
        await HistoryEntry.bulk_create(
            [
                HistoryEntry(
                    patron_id=patron_id,
                    title=loan.title,
                    author=loan.author,
                    borrowed_on=loan.borrowed_on,
                    recorded_at=now,
                )
                for loan in loans
            ]
        )
    return len(loans)


async def reading_history(patron_id: int) -> list[HistoryEntry]:
    return await HistoryEntry.filter(patron_id=patron_id)


async def saved_lists(patron_id: int) -> list[SavedList]:
    return await SavedList.filter(patron_id=patron_id).prefetch_related("items")


async def create_list(patron_id: int, name: str, *, now: datetime) -> SavedList:
    async with in_transaction():
        await _require_consent(patron_id, "saved_lists")
        return await SavedList.create(patron_id=patron_id, name=name, created_at=now)


async def add_to_list(patron_id: int, list_id: int, title: str, *, now: datetime) -> None:
    async with in_transaction():
        await _require_consent(patron_id, "saved_lists")
        saved = await SavedList.get_or_none(id=list_id, patron_id=patron_id)
        if saved is None:
            raise NotFound
        await SavedListItem.create(saved_list_id=saved.id, title=title, added_at=now)


async def delete_list(patron_id: int, list_id: int) -> None:
    """Deleting one's own data never needs consent."""
    async with in_transaction():
        saved = await SavedList.get_or_none(id=list_id, patron_id=patron_id)
        if saved is None:
            raise NotFound
        await SavedListItem.filter(saved_list_id=saved.id).delete()
        await saved.delete()
