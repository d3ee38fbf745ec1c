"""What every store's pages share: the consent gate in front of a store page, and the notice
again when a write is refused. Imported only by the stores' views."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from portal.catalog.services import PublishedService
from portal.consent.policy import Status
from portal.consent.reads import status_of_store
from portal.consent.views import gate
from portal.errors import DomainError, StoreCode
from portal.patrons.access import require_patron
from portal.patrons.services import Identity
from portal.stores.base import StoreError


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
