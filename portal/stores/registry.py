"""The registry of stores of retained data: which stores exist, and through their `Store`
declarations their models and use cases. A new store is one package under portal/stores/
(models, services declaring `STORE`, views) and one line here; the catalog accepts
`store = "…"` only for a key listed here. No web code: the pages are gathered by
portal.stores.views."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from portal.catalog.services import all_services
from portal.stores.base import Cutoff, Retained, Store
from portal.stores.reading_history import services as reading_history
from portal.stores.saved_lists import services as saved_lists

STORES: dict[str, Store] = {
    store.key: store
    for store in (
        reading_history.STORE,
        saved_lists.STORE,
    )
}

KEYS = tuple(STORES)
PAGES = {key: store.page for key, store in STORES.items()}
TABLES = [model._meta.db_table for store in STORES.values() for model in store.models]


@dataclass(frozen=True)
class StoreRetention:
    """One store against its service's retention limit, for the privacy officer."""

    store: str
    service: str
    retention_days: int
    retained: Retained


async def retention_report(*, now: datetime, today: date) -> list[StoreRetention]:
    """Every published service's store: the oldest item kept and the items past the limit
    (none, while `portal apply-retention` runs every day)."""
    report = []
    for service in await all_services():
        if service.store is None:
            continue
        days = int(service.terms["retention_days"])
        retained = await STORES[service.store].retained(Cutoff.past(days, now=now, today=today))
        report.append(StoreRetention(service.store, service.key, days, retained))
    return report
