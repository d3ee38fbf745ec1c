"""The use cases of store `saved_lists`: making lists and adding titles (refused without a
current consent), deleting a list, and the store's erasure, retention and export as its
registry entry declares them."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.expressions import Subquery
from tortoise.transactions import in_transaction

from portal.consent.services import require_current_consent
from portal.db import Erasure, erasing
from portal.errors import StoreCode
from portal.patrons.services import lock_patron
from portal.retained_keys.policy import PatronKey
from portal.retained_keys.services import (
    destroy_key,
    destroy_keys,
    key_for,
    key_of,
    replace_key,
)
from portal.stores.base import Cutoff, Expired, Retained, Store, StoreError
from portal.stores.saved_lists.models import SavedList, SavedListItem

KEY = "saved_lists"
LISTS = SavedList._meta.db_table
ITEMS = SavedListItem._meta.db_table


@dataclass(frozen=True)
class ListView:
    id: int
    name: str
    titles: tuple[str, ...]


async def _lists(patron_id: int) -> tuple[PatronKey | None, list[SavedList]]:
    """The patron's lists with their items, and the one key that opens them (none: nothing
    can be read, as nothing is kept)."""
    key = await key_of(patron_id, KEY)
    if key is None:
        return None, []
    return key, await SavedList.filter(patron_id=patron_id).prefetch_related("items")


async def saved_lists(patron_id: int) -> list[ListView]:
    key, lists = await _lists(patron_id)
    return [
        ListView(
            saved.id,
            key.open(LISTS, "name", saved.name),
            tuple(key.open(ITEMS, "title", item.title) for item in saved.items),
        )
        for saved in lists
        if key is not None
    ]


async def export(patron_id: int) -> list[dict[str, Any]]:
    key, lists = await _lists(patron_id)
    return [
        {
            "name": key.open(LISTS, "name", saved.name),
            "created_at": saved.created_at.isoformat(timespec="seconds"),
            "items": [
                {
                    "title": key.open(ITEMS, "title", item.title),
                    "added_at": item.added_at.isoformat(timespec="seconds"),
                }
                for item in saved.items
            ],
        }
        for saved in lists
        if key is not None
    ]


async def create_list(patron_id: int, name: str, *, now: datetime) -> int:
    async with in_transaction():
        await require_current_consent(patron_id, KEY)
        key = await key_for(patron_id, KEY, now=now)
        saved = await SavedList.create(
            patron_id=patron_id, name=key.seal(LISTS, "name", name), created_at=now
        )
    return saved.id


async def add_to_list(patron_id: int, list_id: int, title: str, *, now: datetime) -> None:
    async with in_transaction():
        await require_current_consent(patron_id, KEY)
        saved = await SavedList.get_or_none(id=list_id, patron_id=patron_id)
        if saved is None:
            raise StoreError(StoreCode.NOT_FOUND)
        key = await key_for(patron_id, KEY, now=now)
        await SavedListItem.create(
            saved_list_id=saved.id, title=key.seal(ITEMS, "title", title), added_at=now
        )


async def delete_list(patron_id: int, list_id: int, *, now: datetime) -> None:
    """Deleting one's own data never needs consent. A partial erasure (one list, not the
    service): the list and its items go and are scrubbed after the commit like any erasure,
    with no ledger event or deletion request (no consent ended; connected systems hold no
    saved list). The key is replaced and the lists kept sealed again under the new one, so
    an older copy of the deleted list (a backup, a dead tuple) is unreadable too."""
    async with erasing() as erasure:
        # As adding a title does: no title may be sealed under the key being replaced.
        await lock_patron(patron_id)
        saved = await SavedList.get_or_none(id=list_id, patron_id=patron_id)
        if saved is None:
            raise StoreError(StoreCode.NOT_FOUND)
        items: int = await SavedListItem.filter(saved_list_id=saved.id).delete()
        await saved.delete()
        erasure.deleted(items + 1)
        await _reseal(erasure, patron_id, now=now)


async def _reseal(erasure: Erasure, patron_id: int, *, now: datetime) -> None:
    old, kept = await _lists(patron_id)
    new = await replace_key(erasure, patron_id, KEY, now=now)
    if old is None:
        return
    for saved in kept:
        saved.name = new.seal(LISTS, "name", old.open(LISTS, "name", saved.name))
        await saved.save(update_fields=["name"])
        for item in saved.items:
            item.title = new.seal(ITEMS, "title", old.open(ITEMS, "title", item.title))
            await item.save(update_fields=["title"])


async def erase(erasure: Erasure, patron_id: int) -> int:
    """The rows and their key, in the caller's erasing transaction."""
    list_ids = await SavedList.filter(patron_id=patron_id).values_list("id", flat=True)
    items: int = await SavedListItem.filter(saved_list_id__in=list_ids).delete()
    lists: int = await SavedList.filter(id__in=list_ids).delete()
    await destroy_key(erasure, patron_id, KEY)
    return items + lists


async def erase_many(erasure: Erasure, patron_ids: list[int]) -> Counter[int]:
    """`erase` for a batch of patrons: a statement per table and one for their keys."""
    lists = await SavedList.filter(patron_id__in=patron_ids).values("id", "patron_id")
    owner = {int(row["id"]): int(row["patron_id"]) for row in lists}
    counts = Counter(owner.values())
    items = await SavedListItem.filter(saved_list_id__in=list(owner)).values("saved_list_id")
    counts.update(owner[int(row["saved_list_id"])] for row in items)
    await SavedListItem.filter(saved_list_id__in=list(owner)).delete()
    await SavedList.filter(id__in=list(owner)).delete()
    await destroy_keys(erasure, patron_ids, KEY)
    return counts


async def expire(cutoff: Cutoff, limit: int, after: int) -> Expired:
    # A list lives while it is used: its newest change counts, not its creation. Decided in
    # the query, so the first `limit` lists it returns are all stale ones.
    used = SavedListItem.filter(added_at__gte=cutoff.moment).values("saved_list_id")
    stale = (
        await SavedList.filter(created_at__lt=cutoff.moment, id__gt=after)
        .exclude(id__in=Subquery(used))
        .order_by("id")
        .limit(limit)
        .prefetch_related("items")
    )
    counts: Counter[int] = Counter()
    for saved in stale:
        counts[saved.patron_id] += 1 + len(saved.items)
    ids = [saved.id for saved in stale]
    await SavedListItem.filter(saved_list_id__in=ids).delete()
    await SavedList.filter(id__in=ids).delete()
    return Expired(counts, len(ids), max(ids, default=after))


async def retained(cutoff: Cutoff) -> Retained:
    """By the rule of `expire`: a list's age counts from its newest change."""
    lists = await SavedList.all().prefetch_related("items")
    newest = [max([saved.created_at, *(item.added_at for item in saved.items)]) for saved in lists]
    return Retained(
        oldest=min(newest).date() if newest else None,
        overdue=sum(1 for moment in newest if moment < cutoff.moment),
    )


STORE = Store(
    key=KEY,
    models=(SavedList, SavedListItem),
    erase=erase,
    erase_many=erase_many,
    expire=expire,
    export=export,
    retained=retained,
    page="stores.saved_lists",
)
