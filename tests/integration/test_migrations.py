"""Models and migrations never drift apart: a model change without its migration fails."""

from __future__ import annotations

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
from portal.db import apply_migrations, tortoise_config
from portal.ledger.models import ConsentEvent
from portal.patrons.models import Patron
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
