"""What a store of retained data declares: how it erases one patron's data, how it applies
its retention, what it exports, and the route name of its page. No web code: the erasing
use cases (portal.erasure) and the stores' own pages (portal.stores.pages) both build on it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from tortoise.models import Model

from portal.db import Erasure
from portal.errors import DomainError


class StoreError(DomainError):
    """A StoreCode: not_found, and the stores' form errors."""


@dataclass(frozen=True)
class Cutoff:
    """Retention: rows dated before `day` (or recorded before `moment`) are past it."""

    day: date
    moment: datetime

    @classmethod
    def past(cls, days: int, *, now: datetime, today: date) -> Cutoff:
        """A retention period of `days`: what is older than that is past it."""
        return cls(day=today - timedelta(days=days), moment=now - timedelta(days=days))


@dataclass(frozen=True)
class Retained:
    """What a store holds against its retention (the privacy officer's "promises kept"): the
    day its oldest item's age counts from, and how many items are past the cutoff."""

    oldest: date | None
    overdue: int


@dataclass(frozen=True)
class Expired:
    """One batch of a store's `expire`: rows deleted per patron, how many rows of its main
    table it took, and the highest id among them, after which the next batch looks (so a
    run reads each row once, however many batches it takes)."""

    counts: Counter[int]
    taken: int
    last: int


@dataclass(frozen=True)
class Store:
    key: str  # what a catalog service names as `store = "…"`
    models: tuple[type[Model], ...]
    # Delete every row of one patron and destroy the key they were sealed under; runs inside
    # the caller's erasing transaction. Returns the rows deleted.
    erase: Callable[[Erasure, int], Awaitable[int]]
    # The same for a batch of patrons at once (a job ending their consents): a statement per
    # table and one for their keys, not per patron. Returns rows deleted per patron.
    erase_many: Callable[[Erasure, list[int]], Awaitable[Counter[int]]]
    # Delete rows past the cutoff, at most `limit` (of its main table) lowest id first and
    # above `after`, so retention works in short batches (portal.batches), each beginning
    # where the last ended.
    expire: Callable[[Cutoff, int, int], Awaitable[Expired]]
    # Every row of one patron as plain JSON values: their copy of what is kept (portal.rights).
    export: Callable[[int], Awaitable[list[dict[str, Any]]]]
    # Read only: the oldest item and the items past the cutoff, by the rules of `expire`.
    retained: Callable[[Cutoff], Awaitable[Retained]]
    page: str  # route name of the store's own page, linked from My privacy and the notice
