"""Publishing the catalog, and what it does to consents in force: a material change (new
purpose, data, recipient, or longer retention) pauses every consent given to the old terms,
in the same transaction as the publication (docs/PROMISES.md, "Notice version"). Consents
are the consent domain's, which depends on the catalog: it hands its pausing step in
(portal.officer.services.publish is the one place that does)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from portal.catalog.models import Publication
from portal.catalog.policy import Catalog
from portal.catalog.services import Change, forget_published_catalog, write_publication

# Pauses every consent in force for one service (its id) in the caller's transaction; returns
# how many it paused.
PauseConsents = Callable[[int, datetime], Awaitable[int]]


@dataclass(frozen=True)
class PublishReport:
    changes: dict[str, Change]
    consents_suspended: int


class PublishedMeanwhile(Exception):
    """Another publication came first (a second officer, or the same form sent twice):
    nothing was published. `source_hash` is the hash of what is published now."""

    def __init__(self, source_hash: str | None) -> None:
        super().__init__("published meanwhile")
        self.source_hash = source_hash


async def publish_catalog(
    catalog: Catalog,
    source_text: str,
    *,
    now: datetime,
    pause_consents: PauseConsents,
    based_on: int | None = None,
    record: Callable[[PublishReport], Awaitable[None]] | None = None,
) -> PublishReport:
    """All or nothing: every service and every pause, or nothing at all. `based_on`: the
    publication (its id, 0 for none) a preview was made against; if another came since,
    PublishedMeanwhile and nothing is published. `record` writes, in the same transaction,
    what must stand or fall with the publication (who published it)."""
    async with in_transaction():
        if based_on is not None:
            # Locking the latest publication serialises two publishers on PostgreSQL: the
            # second waits for the first. The lock hands back the row it waited for, so the
            # latest is read again, now seeing the first one's publication.
            await Publication.all().order_by("-id").select_for_update().first()
            latest = await Publication.all().order_by("-id").first()
            if (latest.id if latest else 0) != based_on:
                raise PublishedMeanwhile(latest.source_hash if latest else None)
        try:
            result = await write_publication(catalog, source_text, now=now)
        except IntegrityError:
            if based_on is None:
                raise
            # The very first publication has no row to lock: two first publishers both
            # write the same new services, and the unique keys let only one of them through.
            raise PublishedMeanwhile(None) from None
        suspended = 0
        for service_id in result.materially_changed:
            suspended += await pause_consents(service_id, now)
        report = PublishReport(changes=result.changes, consents_suspended=suspended)
        if record is not None:
            await record(report)
    forget_published_catalog()
    return report
