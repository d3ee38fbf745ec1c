"""What a store of retained data declares (how it erases one patron's data, how it applies
its retention, its pages), and what every store's pages share: the consent gate in front."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from tortoise.models import Model

from portal.catalog.services import PublishedService
from portal.consent.policy import Status
from portal.consent.reads import status_of_store
from portal.consent.views import gate
from portal.errors import DomainError, StoreCode
from portal.patrons.access import require_patron
from portal.patrons.services import Identity


class StoreError(DomainError):
    """A StoreCode: not_found, and the stores' form errors."""


@dataclass(frozen=True)
class Cutoff:
    """Retention: rows dated before `day` (or recorded before `moment`) are past it."""

    day: date
    moment: datetime


@dataclass(frozen=True)
class Retained:
    """What a store holds against its retention (the privacy officer's "promises kept"): the
    day its oldest item's age counts from, and how many items are past the cutoff."""

    oldest: date | None
    overdue: int


@dataclass(frozen=True)
class Store:
    key: str  # what a catalog service names as `store = "…"`
    models: tuple[type[Model], ...]
    # Delete every row of one patron; runs inside the withdrawal's transaction.
    erase: Callable[[int], Awaitable[int]]
    # Delete every row past the cutoff; returns rows deleted per patron.
    expire: Callable[[Cutoff], Awaitable[Counter[int]]]
    # Every row of one patron as plain JSON values: their copy of what is kept (portal.rights).
    export: Callable[[int], Awaitable[list[dict[str, Any]]]]
    # Read only: the oldest item and the items past the cutoff, by the rules of `expire`.
    retained: Callable[[Cutoff], Awaitable[Retained]]
    page: str  # route name of the store's own page, linked from My privacy and the notice
    routes: Sequence[BaseRoute]


@dataclass(frozen=True)
class StorePage:
    """A signed-in patron on a store's page, with the service that owns the store."""

    patron: Identity
    service: PublishedService


async def open_store(request: Request, store: str) -> StorePage | Response:
    """The patron and the store's service when its consent is current; otherwise the notice
    with its two equal choices (nothing of the store is shown or kept)."""
    patron = require_patron(request)
    service, status = await status_of_store(patron.patron_id, store)
    if service is None:
        raise StoreError(StoreCode.NOT_FOUND)
    if status is not Status.ON:
        # After a yes, the decision leads on to this page (portal.decisions.views.onward).
        return await gate(request, service.key, onward=request.scope["route"].name)
    return StorePage(patron, service)


async def refused(request: Request, store: str, failure: DomainError) -> Response:
    """A write refused because the consent ended meanwhile: the notice again, with why."""
    patron = require_patron(request)
    service, _ = await status_of_store(patron.patron_id, store)
    if service is None:
        raise StoreError(StoreCode.NOT_FOUND)
    return await gate(request, service.key, error=failure.code)
