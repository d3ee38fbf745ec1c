"""Models and migrations never drift apart: a model change without its migration fails."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from tortoise import Tortoise
from tortoise.connection import connections
from tortoise.exceptions import IntegrityError
from tortoise.migrations.api import migrate
from tortoise.migrations.autodetector import MigrationAutodetector

from portal.api import services as api_clients
from portal.api.models import ApiClient
from portal.api.policy import Scope
from portal.catalog.models import NoticeVersion
from portal.contacts.services import contact_of
from portal.db import apply_migrations, fetch_rows, tortoise_config
from portal.ledger.models import ConsentEvent
from portal.outbox.models import OutboxMessage
from portal.outbox.policy import body_of, consent_payload
from portal.outbox.services import bodies_to_send
from portal.patrons.models import Patron
from portal.retained_keys import policy
from portal.stores.reading_history import services as reading_history
from portal.stores.saved_lists import services as saved_lists
from tests.factories import SECRET, now


async def test_models_match_the_migrations() -> None:
    config = tortoise_config("sqlite://:memory:")
    await Tortoise.init(config=config)
    try:
        detector = MigrationAutodetector(Tortoise.apps, config["apps"])
        pending = await detector.changes()
    finally:
        await Tortoise.close_connections()
    assert [writer.name for writer in pending] == [], "run `make migration` and commit it"


# Every index and unique constraint, as (table, columns, unique): names differ between a
# constraint declared in CREATE TABLE and an index made later, the protection does not.
_SQLITE_INDEXES = """
SELECT m.name AS tbl, il.name AS idx, il."unique" AS uniq, ii.seqno AS pos, ii.name AS col
FROM sqlite_master m, pragma_index_list(m.name) il, pragma_index_info(il.name) ii
WHERE m.type = 'table' AND il.origin != 'pk'
"""
_POSTGRES_INDEXES = """
SELECT t.relname AS tbl, c.relname AS idx, i.indisunique AS uniq, k.pos AS pos, a.attname AS col
FROM pg_index i
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, pos)
JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
WHERE n.nspname = 'public' AND NOT i.indisprimary
"""


async def _indexes(url: str, *, from_models: bool) -> set[tuple[str, tuple[str, ...], bool]]:
    await Tortoise.init(config=tortoise_config(url))
    try:
        if from_models:
            await Tortoise.generate_schemas(safe=False)
        connection = connections.get("default")
        sql = _SQLITE_INDEXES if connection.capabilities.dialect == "sqlite" else _POSTGRES_INDEXES
        rows: list[dict[str, Any]] = await connection.execute_query_dict(sql)
    finally:
        await Tortoise.close_connections()
    columns: dict[tuple[str, str, bool], list[tuple[int, str]]] = {}
    for row in rows:
        if row["tbl"] != "tortoise_migrations":
            columns.setdefault((row["tbl"], row["idx"], bool(row["uniq"])), []).append(
                (row["pos"], row["col"])
            )
    return {
        (table, tuple(col for _, col in sorted(cols)), unique)
        for (table, _, unique), cols in columns.items()
    }


async def test_migrated_database_has_every_index_and_unique_constraint_of_the_models(
    database_url: str, empty_database_url: str
) -> None:
    """SQLite rebuilds a table to alter a column; a rebuild that forgets an index or a
    UNIQUE constraint leaves a database slower, or open to duplicate consent states."""
    migrated = await _indexes(database_url, from_models=False)
    declared = await _indexes(empty_database_url, from_models=True)
    assert sorted(declared - migrated) == [], "missing from the migrated database"
    assert sorted(migrated - declared) == [], "in the database, not in the models"


async def test_upgrading_a_database_that_holds_data_keeps_it(empty_database_url: str) -> None:
    config = tortoise_config(empty_database_url)
    await migrate(config=config, target="models.0001_initial")
    await Tortoise.close_connections()
    await Tortoise.init(config=config)
    try:
        connection = connections.get("default")
        await connection.execute_query(
            "INSERT INTO patron (card_lookup, created_at) "
            "VALUES ('abc', '2026-01-01 00:00:00+00:00')"
        )
    finally:
        await Tortoise.close_connections()
    await apply_migrations(empty_database_url)
    await Tortoise.init(config=config)
    try:
        patron = await Patron.get(card_lookup="abc")
        assert patron.shares_with_guardians is False
        assert patron.born_on is None
    finally:
        await Tortoise.close_connections()


async def test_static_api_tokens_are_retired_and_their_clients_kept(
    empty_database_url: str,
) -> None:
    config = tortoise_config(empty_database_url)
    await migrate(config=config, target="models.0007_staff_audit_append_only")
    await Tortoise.close_connections()
    await Tortoise.init(config=config)
    try:
        await connections.get("default").execute_query(
            "INSERT INTO api_client (name, token_lookup, created_at) "
            "VALUES ('ils', 'a-static-token-hash', '2026-01-01 00:00:00+00:00')"
        )
    finally:
        await Tortoise.close_connections()
    await apply_migrations(empty_database_url)
    await Tortoise.init(config=config)
    try:
        [kept] = await api_clients.list_clients()
        assert (kept.name, kept.created_at.year) == ("ils", 2026)  # who did what stays known
        assert (kept.client_id, kept.secret_lookup, kept.scopes) == (None, None, frozenset())
        assert not kept.active
        # The README's way over: a secret and scopes for the existing client.
        issued = await api_clients.rotate_client(
            SECRET, "ils", frozenset({Scope.LOANS_WRITE}), now=now()
        )
        moved = await api_clients.client_for_authentication(issued.client_id)
        assert moved is not None
        assert (moved.id, moved.scopes) == (kept.id, frozenset({Scope.LOANS_WRITE}))
        assert await ApiClient.all().count() == 1
    finally:
        await Tortoise.close_connections()


async def test_sqlite_upgrade_stops_on_two_states_for_one_consent_and_changes_nothing(
    empty_database_url: str, engine: str
) -> None:
    """Before the unique index is restored on SQLite: two rows for one patron and service
    are named to the operator, and both are kept for them to decide from the ledger."""
    if engine != "sqlite":
        pytest.skip("PostgreSQL never lost the constraint: such rows cannot exist there")
    config = tortoise_config(empty_database_url)
    await migrate(config=config, target="models.0009_oauth_clients")
    await Tortoise.close_connections()
    await Tortoise.init(config=config)
    try:
        connection = connections.get("default")
        await connection.execute_script(
            "INSERT INTO patron (id, card_lookup, created_at) VALUES (7, 'abc', '2026-01-01');"
            "INSERT INTO service (id, key, revision, terms_revision, terms, position, "
            "published_at) VALUES (3, 'reading_history', 1, 1, '{}', 0, '2026-01-01');"
            "INSERT INTO consent_state (patron_id, service_id, granted, last_kind, "
            "terms_revision, revision, updated_at) VALUES "
            "(7, 3, 1, 'given', 1, 1, '2026-01-01'), (7, 3, 0, 'withdrawn', 1, 2, '2026-01-02');"
        )
    finally:
        await Tortoise.close_connections()
    with pytest.raises(RuntimeError, match="patron 7 service 3"):
        await apply_migrations(empty_database_url)
    await Tortoise.init(config=config)
    try:
        _, rows = await connections.get("default").execute_query("SELECT id FROM consent_state")
        assert len(rows) == 2
    finally:
        await Tortoise.close_connections()


async def test_child_notices_leave_earlier_versions_and_events_as_they_were(
    empty_database_url: str,
) -> None:
    config = tortoise_config(empty_database_url)
    await migrate(config=config, target="models.0009_oauth_clients")
    await Tortoise.close_connections()
    await Tortoise.init(config=config)
    try:
        run = connections.get("default").execute_query
        for statement in (
            "INSERT INTO patron (card_lookup, created_at) "
            "VALUES ('abc', '2026-01-01 00:00:00+00:00')",
            "INSERT INTO service (key, revision, terms_revision, terms, position, published_at) "
            "VALUES ('newsletter', 1, 1, '{}', 0, '2026-01-01 00:00:00+00:00')",
            "INSERT INTO notice_version (service_id, locale, revision, terms_revision, terms, "
            "texts, content_hash, published_at) "
            "VALUES (1, 'en', 1, 1, '{}', '{}', 'h', '2026-01-01 00:00:00+00:00')",
            "INSERT INTO consent_event (patron_id, service_id, kind, notice_version_id, "
            "notice_hash, locale, purposes, occurred_at, method, actor, channel, detail) "
            "VALUES (1, 1, 'given', 1, 'h', 'en', '[]', '2026-01-01 00:00:00+00:00', "
            "'online', 'patron', 'web', '{}')",
        ):
            await run(statement)
    finally:
        await Tortoise.close_connections()
    await apply_migrations(empty_database_url)
    await Tortoise.init(config=config)
    try:
        version = await NoticeVersion.get(id=1)
        assert (version.child_texts, version.child_hash) == (None, None)
        event = await ConsentEvent.get(id=1)
        assert (event.notice_hash, event.notice_audience) == ("h", None)
        # Adding the column kept the ledger append-only.
        with pytest.raises(IntegrityError, match="append-only"):
            await connections.get("default").execute_query(
                "UPDATE consent_event SET notice_audience = 'child'"
            )
    finally:
        await Tortoise.close_connections()


async def _files_hold(text: str, tables: list[str]) -> bool:
    """Whether the database's files (SQLite and its -wal, or PostgreSQL's relation files of
    `tables`) hold `text` anywhere, in any row, live or deleted."""
    connection = connections.get("default")
    if connection.capabilities.dialect == "sqlite":
        database = Path(connection.filename)  # type: ignore[attr-defined]
        files = [database, *database.parent.glob(database.name + "-*")]
        return any(text.encode() in file.read_bytes() for file in files if file.exists())
    await connection.execute_script("CHECKPOINT")
    for table in tables:
        rows = await connection.execute_query_dict(
            f"SELECT pg_read_binary_file(pg_relation_filepath('{table}')) AS data"
        )
        if text.encode() in bytes(rows[0]["data"]):
            return True
    return False


SEALED = ["history_entry", "saved_list", "saved_list_item", "message_contact"]


async def test_upgrading_seals_every_row_kept_before_and_leaves_no_plaintext(
    empty_database_url: str,
) -> None:
    config = tortoise_config(empty_database_url)
    await migrate(config=config, target="models.0022_merkle_ledger_checkpoints")
    await Tortoise.close_connections()
    await Tortoise.init(config=config)
    try:
        run = connections.get("default").execute_query
        for statement in (
            "INSERT INTO patron (card_lookup, created_at) "
            "VALUES ('abc', '2026-01-01 00:00:00+00:00')",
            "INSERT INTO history_entry (patron_id, title, author, borrowed_on, recorded_at) "
            "VALUES (1, 'Quokka Upgrade Title', 'Wombat Author', '2026-01-02', "
            "'2026-01-02 00:00:00+00:00')",
            "INSERT INTO saved_list (patron_id, name, created_at) "
            "VALUES (1, 'Numbat List Name', '2026-01-02 00:00:00+00:00')",
            "INSERT INTO saved_list_item (saved_list_id, title, added_at) "
            "VALUES (1, 'Bilby Item Title', '2026-01-02 00:00:00+00:00')",
            "INSERT INTO message_contact (patron_id, channel, value, changed_at) "
            "VALUES (1, 'email', 'platypus@example.org', '2026-01-02 00:00:00+00:00')",
        ):
            await run(statement)
        assert await _files_hold("Quokka Upgrade Title", SEALED), "the check sees plaintext"
    finally:
        await Tortoise.close_connections()
    await apply_migrations(empty_database_url)
    await Tortoise.init(config=config)
    try:
        for text in (
            "Quokka Upgrade Title",
            "Wombat Author",
            "Numbat List Name",
            "Bilby Item Title",
            "platypus@example.org",
        ):
            assert not await _files_hold(text, SEALED), text
        assert await reading_history.history(1) == [
            reading_history.Loan("Quokka Upgrade Title", "Wombat Author", date(2026, 1, 2))
        ]
        [saved] = await saved_lists.saved_lists(1)
        assert (saved.name, saved.titles) == ("Numbat List Name", ("Bilby Item Title",))
        assert await contact_of(1, "email") == "platypus@example.org"
    finally:
        await Tortoise.close_connections()


async def _bytes_on_disk(data: bytes, tables: list[str]) -> bool:
    """As _files_hold, for bytes."""
    connection = connections.get("default")
    if connection.capabilities.dialect == "sqlite":
        database = Path(connection.filename)  # type: ignore[attr-defined]
        files = [database, *database.parent.glob(database.name + "-*")]
        return any(data in file.read_bytes() for file in files if file.exists())
    await connection.execute_script("CHECKPOINT")
    for table in tables:
        rows = await connection.execute_query_dict(
            f"SELECT pg_read_binary_file(pg_relation_filepath('{table}')) AS data"
        )
        if data in bytes(rows[0]["data"]):
            return True
    return False


async def test_upgrading_wraps_every_key_and_seals_the_numbers_waiting_in_the_outbox(
    empty_database_url: str,
) -> None:
    """Keys kept before are wrapped under their bucket's wrapping key, and a number waiting
    in the outbox is sealed under the patron's key for its channel: afterwards no file holds
    a raw key nor the number, what was kept still opens, and the gateway is sent exactly the
    bytes it would have been sent before."""
    config = tortoise_config(empty_database_url)
    await migrate(config=config, target="models.0024_batches_job_progress")
    await Tortoise.close_connections()
    raw = {"reading_history": policy.new_key(), "contact:sms": policy.new_key()}
    number = "+12015550142"
    body = body_of(
        consent_payload(
            service="messages__hold_filled__sms",
            patron="ref-1",
            given_at=now(),
            message={"group": "messages", "channel": "sms", "contact": number},
        )
    )
    await Tortoise.init(config=config)
    try:
        postgres = connections.get("default").capabilities.dialect == "postgres"
        moment = now() if postgres else "2026-01-02 00:00:00+00:00"
        await fetch_rows("INSERT INTO patron (card_lookup, created_at) VALUES ('abc', ?)", moment)
        await fetch_rows(
            "INSERT INTO service (key, revision, terms_revision, terms, position, published_at) "
            "VALUES ('sms', 1, 1, '{}', 1, ?)",
            moment,
        )
        for store, key in raw.items():
            await fetch_rows(
                "INSERT INTO retained_data_key (patron_id, store, key, created_at) "
                "VALUES (1, ?, ?, ?)",
                store,
                key,
                moment,
            )
        where = policy.context("history_entry", "title", 1)
        await fetch_rows(
            "INSERT INTO history_entry (patron_id, title, author, borrowed_on, recorded_at) "
            "VALUES (1, ?, ?, '2026-01-02', ?)",
            policy.seal(raw["reading_history"], "Echidna Title", context=where),
            policy.seal(
                raw["reading_history"], "", context=policy.context("history_entry", "author", 1)
            ),
            moment,
        )
        await fetch_rows(
            "INSERT INTO outbox_message (message_id, system, kind, patron_id, service_id, body, "
            "created_at, give_up_at, state, attempts, due_ms, lease_until_ms) "
            "VALUES ('msg_1', 'sms_gateway', 'consent.given', 1, 1, ?, ?, ?, 'pending', 0, 0, 0)",
            body,
            moment,
            moment,
        )
        assert await _bytes_on_disk(raw["reading_history"], ["retained_data_key"])
        assert await _bytes_on_disk(number.encode(), ["outbox_message"])
    finally:
        await Tortoise.close_connections()
    await apply_migrations(empty_database_url)
    await Tortoise.init(config=config)
    try:
        for key in raw.values():
            assert not await _bytes_on_disk(key, ["retained_data_key"])
        assert not await _bytes_on_disk(number.encode(), ["outbox_message"])
        assert await reading_history.history(1) == [
            reading_history.Loan("Echidna Title", "", date(2026, 1, 2))
        ]
        assert await bodies_to_send(await OutboxMessage.all()) == {1: body}
    finally:
        await Tortoise.close_connections()
