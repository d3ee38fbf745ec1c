"""Scheduled work in bounded batches (issue 25): rows are taken a batch at a time by a keyset
on id (never OFFSET, never the whole candidate set), each batch in its own short transaction,
so pages and the API wait behind a job for one batch at most, and a job killed half-way
finds the rest by the same predicate when it runs again."""

from __future__ import annotations

from typing import Any, Protocol

from tortoise.queryset import QuerySet

# Rows (or patrons) per batch: small enough that a batch's transaction holds its locks for
# milliseconds, large enough that the round trips do not dominate. Read when a job runs
# (batches.BATCH), so a test can make it small.
BATCH = 1000


class Progress(Protocol):
    """Told after each batch committed: how many rows (or patrons) it looked at."""

    async def __call__(self, rows: int) -> None: ...


async def no_progress(rows: int) -> None:
    """For a caller that does not record progress (a test, a use case run by hand)."""


async def delete_in_batches(query: QuerySet[Any], progress: Progress = no_progress) -> int:
    """Delete what `query` selects, BATCH rows a statement, lowest id first: each DELETE is
    its own transaction, and names its rows by id *and* the query's predicate, so a row that
    stopped matching since it was read (a session used meanwhile) is left alone. Returns the
    rows deleted."""
    deleted = 0
    after = 0
    while True:
        batch = query.filter(id__gt=after).order_by("id").limit(BATCH)
        ids = [int(row["id"]) for row in await batch.values("id")]
        if not ids:
            return deleted
        done: int = await query.filter(id__in=ids).delete()
        deleted += done
        await progress(done)
        if len(ids) < BATCH:
            return deleted
        after = max(ids)
