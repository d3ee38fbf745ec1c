"""Models and migrations never drift apart: a model change without its migration fails."""

from __future__ import annotations

from tortoise import Tortoise
from tortoise.migrations.autodetector import MigrationAutodetector

from portal.db import tortoise_config


async def test_models_match_the_migrations() -> None:
    config = tortoise_config("sqlite://:memory:")
    await Tortoise.init(config=config)
    try:
        detector = MigrationAutodetector(Tortoise.apps, config["apps"])
        pending = await detector.changes()
    finally:
        await Tortoise.close_connections()
    assert [writer.name for writer in pending] == [], "run `make migration` and commit it"
