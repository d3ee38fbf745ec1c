"""Publishing the catalog, and what it does to consents in force: a material change (new
purpose, data, recipient, or longer retention) pauses every consent given to the old terms,
in the same transaction as the publication (PRODUCT.md, "Notice version")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tortoise.transactions import in_transaction

from portal.catalog.policy import Catalog
from portal.catalog.services import Change, forget_published_catalog, write_publication
from portal.consent.policy import SuspensionReason
from portal.consent.services import suspend_service


@dataclass(frozen=True)
class PublishReport:
    changes: dict[str, Change]
    consents_suspended: int


async def publish_catalog(catalog: Catalog, source_text: str, *, now: datetime) -> PublishReport:
    """All or nothing: every service and every pause, or nothing at all."""
    async with in_transaction():
        result = await write_publication(catalog, source_text, now=now)
        suspended = 0
        for service_id in result.materially_changed:
            suspended += await suspend_service(service_id, SuspensionReason.MATERIAL_CHANGE, now)
    forget_published_catalog()
    return PublishReport(changes=result.changes, consents_suspended=suspended)
