"""Store `saved_lists`: lists the patron makes of titles to remember, kept only while the
patron has consented. Erased in the withdrawal's transaction, and a list untouched for longer
than `retention_days` is deleted with its items."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tortoise import fields
from tortoise.models import Model
from tortoise.transactions import in_transaction

from portal.clock import utcnow
from portal.consent.policy import ConsentError
from portal.consent.services import require_current_consent
from portal.db import scrub_after_erasure
from portal.errors import ErrorCode, StoreCode
from portal.patrons.access import require_patron
from portal.patrons.models import Patron
from portal.stores.base import Cutoff, Retained, Store, StoreError, StorePage, open_store, refused
from portal.web.rendering import render
from portal.web.requests import field, number_field, redirect_to

KEY = "saved_lists"


class SavedList(Model):
    """Store `saved_lists`: lists the patron makes of titles to remember."""

    id = fields.IntField(primary_key=True)
    patron: fields.ForeignKeyRelation[Patron] = fields.ForeignKeyField(
        "models.Patron", related_name="saved_lists", on_delete=fields.RESTRICT, db_index=True
    )
    name = fields.CharField(max_length=200)
    created_at = fields.DatetimeField()

    patron_id: int
    items: fields.ReverseRelation[SavedListItem]

    class Meta:
        table = "saved_list"
        ordering = ("id",)


class SavedListItem(Model):
    id = fields.IntField(primary_key=True)
    saved_list: fields.ForeignKeyRelation[SavedList] = fields.ForeignKeyField(
        "models.SavedList", related_name="items", on_delete=fields.CASCADE, db_index=True
    )
    title = fields.CharField(max_length=500)
    added_at = fields.DatetimeField()

    saved_list_id: int

    class Meta:
        table = "saved_list_item"
        ordering = ("id",)


@dataclass(frozen=True)
class ListView:
    id: int
    name: str
    titles: tuple[str, ...]


# --- use cases ---------------------------------------------------------------------------


async def saved_lists(patron_id: int) -> list[ListView]:
    lists = await SavedList.filter(patron_id=patron_id).prefetch_related("items")
    return [
        ListView(saved.id, saved.name, tuple(item.title for item in saved.items)) for saved in lists
    ]


async def export(patron_id: int) -> list[dict[str, Any]]:
    lists = await SavedList.filter(patron_id=patron_id).prefetch_related("items")
    return [
        {
            "name": saved.name,
            "created_at": saved.created_at.isoformat(timespec="seconds"),
            "items": [
                {"title": item.title, "added_at": item.added_at.isoformat(timespec="seconds")}
                for item in saved.items
            ],
        }
        for saved in lists
    ]


async def create_list(patron_id: int, name: str, *, now: datetime) -> int:
    async with in_transaction():
        await require_current_consent(patron_id, KEY)
        saved = await SavedList.create(patron_id=patron_id, name=name, created_at=now)
    return saved.id


async def add_to_list(patron_id: int, list_id: int, title: str, *, now: datetime) -> None:
    async with in_transaction():
        await require_current_consent(patron_id, KEY)
        saved = await SavedList.get_or_none(id=list_id, patron_id=patron_id)
        if saved is None:
            raise StoreError(StoreCode.NOT_FOUND)
        await SavedListItem.create(saved_list_id=saved.id, title=title, added_at=now)


async def delete_list(patron_id: int, list_id: int) -> None:
    """Deleting one's own data never needs consent."""
    async with in_transaction():
        saved = await SavedList.get_or_none(id=list_id, patron_id=patron_id)
        if saved is None:
            raise StoreError(StoreCode.NOT_FOUND)
        await SavedListItem.filter(saved_list_id=saved.id).delete()
        await saved.delete()
    await scrub_after_erasure()


async def erase(patron_id: int) -> int:
    list_ids = await SavedList.filter(patron_id=patron_id).values_list("id", flat=True)
    items: int = await SavedListItem.filter(saved_list_id__in=list_ids).delete()
    lists: int = await SavedList.filter(id__in=list_ids).delete()
    return items + lists


async def expire(cutoff: Cutoff) -> Counter[int]:
    # A list lives while it is used: its newest change counts, not its creation.
    lists = await SavedList.filter(created_at__lt=cutoff.moment).prefetch_related("items")
    stale = [saved for saved in lists if all(item.added_at < cutoff.moment for item in saved.items)]
    counts: Counter[int] = Counter()
    for saved in stale:
        counts[saved.patron_id] += 1 + len(saved.items)
        await SavedListItem.filter(saved_list_id=saved.id).delete()
        await saved.delete()
    return counts


async def retained(cutoff: Cutoff) -> Retained:
    """By the rule of `expire`: a list's age counts from its newest change."""
    lists = await SavedList.all().prefetch_related("items")
    newest = [max([saved.created_at, *(item.added_at for item in saved.items)]) for saved in lists]
    return Retained(
        oldest=min(newest).date() if newest else None,
        overdue=sum(1 for moment in newest if moment < cutoff.moment),
    )


# --- pages -------------------------------------------------------------------------------


async def page(request: Request, *, error: ErrorCode | None = None) -> Response:
    visited = await open_store(request, KEY)
    if not isinstance(visited, StorePage):
        return visited
    context = {
        "lists": await saved_lists(visited.patron.patron_id),
        "service_key": visited.service.key,
    }
    return render(request, "stores/lists.html", context, error=error)


async def create(request: Request) -> Response:
    patron = require_patron(request)
    name = field(await request.form(), "name")
    if not name:
        return await page(request, error=StoreCode.LIST_NAME_MISSING)
    try:
        await create_list(patron.patron_id, name, now=utcnow())
    except ConsentError as failure:
        return await refused(request, KEY, failure)
    return redirect_to(request, "stores.saved_lists")


async def add_item(request: Request) -> Response:
    patron = require_patron(request)
    form = await request.form()
    title = field(form, "title")
    if not title:
        return await page(request, error=StoreCode.TITLE_MISSING)
    try:
        await add_to_list(patron.patron_id, number_field(form, "list_id") or 0, title, now=utcnow())
    except ConsentError as failure:
        return await refused(request, KEY, failure)
    except StoreError as failure:
        return await page(request, error=failure.code)
    return redirect_to(request, "stores.saved_lists")


async def remove(request: Request) -> Response:
    patron = require_patron(request)
    list_id = number_field(await request.form(), "list_id") or 0
    try:
        await delete_list(patron.patron_id, list_id)
    except StoreError as failure:
        return await page(request, error=failure.code)
    return redirect_to(request, "stores.saved_lists")


STORE = Store(
    key=KEY,
    models=(SavedList, SavedListItem),
    erase=erase,
    expire=expire,
    export=export,
    retained=retained,
    page="stores.saved_lists",
    routes=(
        Route("/saved-lists", page, methods=["GET"], name="stores.saved_lists"),
        Route("/saved-lists", create, methods=["POST"], name="stores.saved_lists.create"),
        Route("/saved-lists/items", add_item, methods=["POST"], name="stores.saved_lists.add"),
        Route("/saved-lists/delete", remove, methods=["POST"], name="stores.saved_lists.delete"),
    ),
)
