"""Erased means unrecoverable from what the portal controls: after a withdrawal no copy of
an erased title remains in the SQLite database, its write-ahead log or shared memory file,
nor, once the scheduled compaction ran, in PostgreSQL's table files."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from tortoise.connection import connections

from portal.consent.policy import Decision
from portal.erasure.services import compact
from portal.stores.reading_history import services as reading_history
from tests.factories import decides, make_patron, now, publish, standard_catalog

pytestmark = pytest.mark.usefixtures("db")
MARKER = "Zebra Marker Title 7731"


async def borrowed_and_withdrawn() -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    await decides(patron.id, "reading_history", Decision.YES)
    others = [reading_history.Loan(f"Kept by nobody {n}", "", date(2026, 1, 1)) for n in range(40)]
    await reading_history.record_loans(
        patron.id, [*others, reading_history.Loan(MARKER, "", date(2026, 2, 2))], now=now()
    )
    assert await table_bytes_hold(MARKER), "the check must be able to see the title first"
    await decides(patron.id, "reading_history", Decision.NO)


async def table_bytes_hold(text: str) -> bool:
    connection = connections.get("default")
    if connection.capabilities.dialect == "sqlite":
        database = Path(connection.filename)  # type: ignore[attr-defined]
        files = [database, *database.parent.glob(database.name + "-*")]
        return any(text.encode() in file.read_bytes() for file in files if file.exists())
    await connection.execute_script("CHECKPOINT")
    rows = await connection.execute_query_dict(
        "SELECT pg_read_binary_file(pg_relation_filepath('history_entry')) AS data"
    )
    return text.encode() in bytes(rows[0]["data"])


async def test_no_file_holds_an_erased_title(engine: str) -> None:
    await borrowed_and_withdrawn()
    if engine == "postgres":
        await compact()  # the scheduled job: `portal compact-erased`
    assert not await table_bytes_hold(MARKER)
