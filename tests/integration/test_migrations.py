"""Models and migrations never drift apart: a model change without its migration fails."""

from __future__ import annotations

from tortoise import Tortoise
from tortoise.connection import connections
from tortoise.migrations.api import migrate
from tortoise.migrations.autodetector import MigrationAutodetector

from portal.db import apply_migrations, tortoise_config
from portal.patrons.models import Patron


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
