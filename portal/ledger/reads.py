"""The ledger's tables read in batches for its checkpoints (portal.ledger.checkpoints): raw SQL
keyed on id or position, since building ORM objects for a hundred million events costs more
than hashing them; each event's leaf as portal.ledger.merkle defines it."""

# ruff: noqa: S608 - the SQL here is built from constant column names, never from input

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC
from typing import Any

from portal.db import as_datetime, fetch_rows
from portal.ledger import merkle

BATCH = 2000  # rows read, or leaves written, per query
# Rows named in one IN (…): well within SQLite's and PostgreSQL's limits on parameters.
CHUNK = 500

_COLUMNS = ", ".join(merkle.LEAF_FIELDS)
_JSON = ("purposes", "detail")


def leaf_of(row: dict[str, Any]) -> bytes:
    """The leaf data of an event read by raw SQL: the same bytes as from the ORM's values (its
    JSON columns decoded, its time in UTC: SQLite hands back text)."""
    event = row  # a dict of its own, made for this read
    for name in _JSON:
        if isinstance(event[name], str):
            event[name] = json.loads(event[name])
    moment = as_datetime(event["occurred_at"])
    event["occurred_at"] = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return merkle.leaf_data(event)


async def event_batches(
    after: int | None = None, upto: int | None = None
) -> AsyncIterator[list[tuple[int, bytes]]]:
    """(id, leaf hash) of the events after id `after` (None: from the first), up to `upto`,
    in id order."""
    while True:
        bounds = [("id > ?", after), ("id <= ?", upto)]
        where = " AND ".join(clause for clause, value in bounds if value is not None)
        rows = await fetch_rows(
            f"SELECT {_COLUMNS} FROM consent_event"
            + (f" WHERE {where}" if where else "")
            + " ORDER BY id LIMIT ?",
            *[value for _, value in bounds if value is not None],
            BATCH,
        )
        if not rows:
            return
        yield [(int(row["id"]), merkle.leaf_hash(leaf_of(row))) for row in rows]
        if len(rows) < BATCH:
            return
        after = int(rows[-1]["id"])


async def events_by_id(ids: Sequence[int]) -> dict[int, bytes]:
    """The leaf hash of each of these events still in the ledger, by id."""
    found: dict[int, bytes] = {}
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        marks = ", ".join("?" * len(chunk))
        for row in await fetch_rows(
            f"SELECT {_COLUMNS} FROM consent_event WHERE id IN ({marks})", *chunk
        ):
            found[int(row["id"])] = merkle.leaf_hash(leaf_of(row))
    return found


async def count_events(upto: int) -> int:
    rows = await fetch_rows("SELECT count(*) AS n FROM consent_event WHERE id <= ?", upto)
    return int(rows[0]["n"])


Leaf = tuple[int, int, bytes]  # (position, event id, leaf hash)


def _leaves(rows: list[dict[str, Any]]) -> list[Leaf]:
    return [
        (int(row["position"]), int(row["event_id"]), merkle.from_hex(row["leaf_hash"]) or b"")
        for row in rows
    ]


async def leaf_batches(start: int = 0, end: int | None = None) -> AsyncIterator[list[Leaf]]:
    """The stored leaves from position `start` on (before `end`, if given), in order."""
    while True:
        rows = await fetch_rows(
            "SELECT position, event_id, leaf_hash FROM ledger_leaf WHERE position >= ? "
            + ("" if end is None else "AND position < ? ")
            + "ORDER BY position LIMIT ?",
            *([start] if end is None else [start, end]),
            BATCH,
        )
        if not rows:
            return
        yield _leaves(rows)
        if len(rows) < BATCH:
            return
        start = int(rows[-1]["position"]) + 1


async def leaves_between(start: int, end: int) -> list[Leaf]:
    """The stored leaves at positions start to end - 1."""
    return _leaves(
        await fetch_rows(
            "SELECT position, event_id, leaf_hash FROM ledger_leaf "
            "WHERE position >= ? AND position < ? ORDER BY position",
            start,
            end,
        )
    )


async def block_batches() -> AsyncIterator[list[tuple[int, bytes]]]:
    """(index, hash) of the stored whole blocks, in order."""
    start = 0
    while True:
        rows = await fetch_rows(
            'SELECT "index", block_hash FROM ledger_block WHERE "index" >= ? '
            'ORDER BY "index" LIMIT ?',
            start,
            BATCH * 10,
        )
        if not rows:
            return
        yield [(int(row["index"]), merkle.from_hex(row["block_hash"]) or b"") for row in rows]
        if len(rows) < BATCH * 10:
            return
        start = int(rows[-1]["index"]) + 1


async def write_leaves(start: int, leaves: Sequence[tuple[int, bytes]]) -> None:
    """Store (event id, leaf hash) at positions from `start`: one insert for the batch."""
    for offset in range(0, len(leaves), BATCH):
        chunk = leaves[offset : offset + BATCH]
        marks = ", ".join(["(?, ?, ?)"] * len(chunk))
        values: list[Any] = []
        for position, (event_id, value) in enumerate(chunk, start=start + offset):
            values += [position, event_id, value.hex()]
        await fetch_rows(
            f"INSERT INTO ledger_leaf (position, event_id, leaf_hash) VALUES {marks}", *values
        )


async def write_blocks(start: int, blocks: Sequence[bytes]) -> None:
    for offset in range(0, len(blocks), BATCH):
        chunk = blocks[offset : offset + BATCH]
        marks = ", ".join(["(?, ?)"] * len(chunk))
        values: list[Any] = []
        for index, value in enumerate(chunk, start=start + offset):
            values += [index, value.hex()]
        await fetch_rows(f'INSERT INTO ledger_block ("index", block_hash) VALUES {marks}', *values)
