"""Erased means unrecoverable from what the portal controls. Retained data is sealed under a
key per patron and store (portal.retained_keys), so no title is ever written in plaintext,
and erasing destroys the key: after a withdrawal (and, on PostgreSQL, the scheduled
compaction) neither the title nor the key's bytes remain in the SQLite database, its
write-ahead log or shared memory file, or PostgreSQL's files."""

from __future__ import annotations

from datetime import date

import pytest

from portal.consent.policy import Decision
from portal.erasure.services import compact
from portal.retained_keys.services import KEY_TABLE, key_of
from portal.stores.reading_history import services as reading_history
from tests.factories import decides, make_patron, now, publish, standard_catalog
from tests.forensics import files_hold

pytestmark = pytest.mark.usefixtures("db")
MARKER = "Zebra Marker Title 7731"
AUTHOR = "Okapi Marker Author 4410"


async def borrowed() -> tuple[int, bytes]:
    """A patron's loans, the marker among them; returns the patron and their key's bytes."""
    await publish(standard_catalog())
    patron = await make_patron()
    await decides(patron.id, "reading_history", Decision.YES)
    others = [reading_history.Loan(f"Kept by nobody {n}", "", date(2026, 1, 1)) for n in range(40)]
    await reading_history.record_loans(
        patron.id, [*others, reading_history.Loan(MARKER, AUTHOR, date(2026, 2, 2))], now=now()
    )
    assert MARKER in {loan.title for loan in await reading_history.history(patron.id)}
    key = await key_of(patron.id, reading_history.KEY)
    assert key is not None
    return patron.id, key.key


async def test_no_file_holds_a_title_or_author_even_before_erasure() -> None:
    """The new strength: what a patron read is never on disk in plaintext, so no copy of the
    files (a backup, a disk sent for repair) shows it."""
    _, key = await borrowed()
    assert await files_hold(key), "the check must be able to see what is written"
    assert not await files_hold(MARKER.encode())
    assert not await files_hold(AUTHOR.encode())


async def test_no_file_holds_an_erased_title_or_its_key(engine: str) -> None:
    patron_id, key = await borrowed()
    assert await files_hold(key, tables=[KEY_TABLE]), "the check must be able to see the key"
    await decides(patron_id, "reading_history", Decision.NO)
    if engine == "postgres":
        await compact()  # the scheduled job: `portal compact-erased`
    assert await key_of(patron_id, reading_history.KEY) is None
    assert not await files_hold(key, tables=[KEY_TABLE])
    assert not await files_hold(MARKER.encode())
