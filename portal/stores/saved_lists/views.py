"""The page of store `saved_lists`, behind the consent gate: the patron's lists, making one,
adding a title, deleting a list."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal.clock import utcnow
from portal.consent.policy import ConsentError
from portal.errors import ErrorCode
from portal.patrons.access import require_patron
from portal.stores.base import StoreError
from portal.stores.pages import StorePage, open_store, refused
from portal.stores.saved_lists.forms import parse_list_id, parse_list_name, parse_new_item
from portal.stores.saved_lists.services import (
    KEY,
    add_to_list,
    create_list,
    delete_list,
    saved_lists,
)
from portal.web.rendering import render
from portal.web.requests import redirect_to


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
    try:
        name = parse_list_name(await request.form())
    except StoreError as failure:
        return await page(request, error=failure.code)
    try:
        await create_list(patron.patron_id, name, now=utcnow())
    except ConsentError as failure:
        return await refused(request, KEY, failure)
    return redirect_to(request, "stores.saved_lists")


async def add_item(request: Request) -> Response:
    patron = require_patron(request)
    try:
        item = parse_new_item(await request.form())
        await add_to_list(patron.patron_id, item.list_id, item.title, now=utcnow())
    except ConsentError as failure:
        return await refused(request, KEY, failure)
    except StoreError as failure:
        return await page(request, error=failure.code)
    return redirect_to(request, "stores.saved_lists")


async def remove(request: Request) -> Response:
    patron = require_patron(request)
    list_id = parse_list_id(await request.form())
    try:
        await delete_list(patron.patron_id, list_id, now=utcnow())
    except StoreError as failure:
        return await page(request, error=failure.code)
    return redirect_to(request, "stores.saved_lists")


routes = [
    Route("/saved-lists", page, methods=["GET"], name="stores.saved_lists"),
    Route("/saved-lists", create, methods=["POST"], name="stores.saved_lists.create"),
    Route("/saved-lists/items", add_item, methods=["POST"], name="stores.saved_lists.add"),
    Route("/saved-lists/delete", remove, methods=["POST"], name="stores.saved_lists.delete"),
]
