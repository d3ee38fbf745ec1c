"""Erased means unrecoverable from what the portal controls. Retained data is sealed under a
key per patron and store (portal.retained_keys), so no title is ever written in plaintext;
the key is written only wrapped under its bucket's wrapping key, and erasing destroys it:
after a withdrawal and the scheduled compaction neither the title, nor the key, nor the
wrapping key it was under remain in the SQLite database, its write-ahead log or shared
memory file, or PostgreSQL's files; and no large table was rewritten to get there."""

from __future__ import annotations

from datetime import date

import pytest

from portal.consent.policy import Decision
from portal.contacts.services import contact_of
from portal.db import fetch_rows
from portal.erasure.services import compact
from portal.outbox.models import OutboxMessage
from portal.retained_keys.services import KEY_TABLE, WRAP_TABLE, key_of
from portal.stores.reading_history import services as reading_history
from tests.factories import (
    catalog_text,
    decides,
    make_patron,
    messages_table,
    now,
    publish,
    standard_catalog,
    system_table,
)
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


async def stored(patron_id: int) -> tuple[bytes, bytes]:
    """The key as it is written (wrapped), and the wrapping key it is wrapped under."""
    [row] = await fetch_rows(
        "SELECT k.key, w.key AS wrapping FROM retained_data_key k "
        "JOIN retained_key_wrap w ON w.id = k.wrapped_by_id WHERE k.patron_id = ? AND k.store = ?",
        patron_id,
        reading_history.KEY,
    )
    return bytes(row["key"]), bytes(row["wrapping"])


async def test_no_file_holds_a_title_or_author_even_before_erasure() -> None:
    """The new strength: what a patron read is never on disk in plaintext, so no copy of the
    files (a backup, a disk sent for repair) shows it; nor is the key it is sealed under,
    which is written only wrapped."""
    patron_id, key = await borrowed()
    wrapped, _ = await stored(patron_id)
    assert await files_hold(wrapped), "the check must be able to see what is written"
    assert not await files_hold(MARKER.encode())
    assert not await files_hold(AUTHOR.encode())
    assert not await files_hold(key)


async def test_no_file_holds_an_erased_title_its_key_or_the_key_that_wrapped_it() -> None:
    """After a withdrawal and the scheduled compaction (`portal compact-erased`), on both
    engines. PostgreSQL's write-ahead log is searched for the key itself (never written
    unwrapped) but not for the wrapping key: its INSERT stays in the log's segments until
    they are recycled, as any row does (SECURITY.md)."""
    patron_id, key = await borrowed()
    _, wrapping = await stored(patron_id)
    tables = [KEY_TABLE, WRAP_TABLE]
    assert await files_hold(wrapping, tables=tables), "the check must see the wrapping key"
    await decides(patron_id, "reading_history", Decision.NO)
    await compact(now=now())
    assert await key_of(patron_id, reading_history.KEY) is None
    assert not await files_hold(key)
    assert not await files_hold(wrapping, wal=False)
    assert not await files_hold(MARKER.encode())


async def _filenodes(tables: list[str]) -> dict[str, int]:
    """PostgreSQL's file of each table: VACUUM FULL writes a new one (and takes ACCESS
    EXCLUSIVE for as long as it copies), so an unchanged file means it was not rewritten."""
    rows = await fetch_rows(
        "SELECT relname, pg_relation_filenode(oid) AS node FROM pg_class WHERE relname = ANY(?)",
        tables,
    )
    return {row["relname"]: row["node"] for row in rows}


async def test_compaction_rewrites_neither_the_key_table_nor_the_outbox(engine: str) -> None:
    """At a consortium's scale those are millions of rows: rewriting them under an exclusive
    lock would stop every loan intake and history page for as long as it took."""
    if engine != "postgres":
        pytest.skip("SQLite zeroes deleted rows as it goes (secure_delete): nothing to rewrite")
    patron_id, _ = await borrowed()
    await decides(patron_id, "reading_history", Decision.NO)
    tables = [KEY_TABLE, OutboxMessage._meta.db_table]
    before = await _filenodes(tables)
    await compact(now=now())
    assert await _filenodes(tables) == before


PHONE = "+12015550173"


async def test_no_file_holds_a_number_sent_to_a_connected_system_nor_once_it_is_erased() -> None:
    """A text-message choice tells the gateway the number (CONSENT_GIVEN); the request waits
    in the outbox. Its number is sealed there under the patron's key for the channel, so
    erasing the number (the last text choice off) leaves nothing readable behind, with no
    rewrite of the outbox."""
    await publish(
        system_table("sms_gateway", "http://127.0.0.1:9/deletions")
        + catalog_text(messages_table(channel_systems={"sms": ("sms_gateway",)}))
    )
    patron = await make_patron()
    service = "messages__hold_filled__sms"
    await decides(patron.id, service, Decision.YES, contact="(201) 555-0173")
    assert await OutboxMessage.filter(patron_id=patron.id).count() == 1
    assert await contact_of(patron.id, "sms") == PHONE
    assert not await files_hold(PHONE.encode())
    await decides(patron.id, service, Decision.NO)
    await compact(now=now())
    assert await contact_of(patron.id, "sms") is None
    assert not await files_hold(PHONE.encode())
