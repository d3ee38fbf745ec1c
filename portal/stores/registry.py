"""The registry of stores of retained data. A new store is one module declaring a `Store`
(its models, erasure, retention and pages) and one line here; the catalog accepts
`store = "…"` only for a key listed here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from starlette.routing import BaseRoute
from tortoise.transactions import in_transaction

from portal.catalog.services import all_services
from portal.db import compact_tables, scrub_after_erasure
from portal.ledger.details import Erased
from portal.ledger.models import EventKind
from portal.ledger.services import SYSTEM_JOB, record
from portal.outbox.services import request_retention
from portal.stores import reading_history, saved_lists
from portal.stores.base import Cutoff, Retained, Store

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
routes: list[BaseRoute] = [route for store in STORES.values() for route in store.routes]
# Read by Tortoise (portal.db lists this module among the model modules).
__models__ = [model for store in STORES.values() for model in store.models]


async def erase(patron_id: int, store: str) -> int:
    """Delete every row of a store for one patron; call inside the withdrawal's transaction."""
    return await STORES[store].erase(patron_id)


async def apply_retention(*, now: datetime, today: date) -> int:
    """Scheduled: delete retained rows older than their service's retention period, as each
    notice promises, and record each patron's erasure; and ask each connected system holding
    a service's data to delete its entries older than that too (one request per system and
    day, about every patron). Returns the rows deleted here."""
    deleted = 0
    for service in await all_services():
        if service.store is None and not service.systems:
            continue
        days = int(service.terms["retention_days"])
        cutoff = Cutoff(day=today - timedelta(days=days), moment=now - timedelta(days=days))
        async with in_transaction():
            await request_retention(service, before=cutoff.day, now=now)
            if service.store is None:
                continue
            counts = await STORES[service.store].expire(cutoff)
            for patron_id, rows in counts.items():
                await record(
                    patron_id,
                    EventKind.ERASED,
                    SYSTEM_JOB,
                    now=now,
                    service_id=service.id,
                    purposes=service.terms["purposes"],
                    detail=Erased(rows_deleted=rows, reason="retention"),
                )
                deleted += rows
    if deleted:
        await scrub_after_erasure()
    return deleted


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
        cutoff = Cutoff(day=today - timedelta(days=days), moment=now - timedelta(days=days))
        retained = await STORES[service.store].retained(cutoff)
        report.append(StoreRetention(service.store, service.key, days, retained))
    return report


async def compact() -> None:
    """Scheduled: rewrite every store's tables so erased rows leave no bytes behind."""
    await compact_tables(TABLES)
