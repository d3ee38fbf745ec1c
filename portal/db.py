"""Database wiring: the Tortoise configuration, and applying the migrations in migrations/."""

from __future__ import annotations

from typing import Any

from tortoise import Tortoise
from tortoise.migrations.api import migrate

MODEL_MODULES = [
    "portal.catalog.models",
    "portal.patrons.models",
    "portal.consent.models",
    "portal.erasure.models",
    "portal.api.models",
]


def tortoise_config(database_url: str) -> dict[str, Any]:
    return {
        "connections": {"default": database_url},
        "apps": {
            "models": {
                "models": MODEL_MODULES,
                "default_connection": "default",
                "migrations": "migrations",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


async def apply_migrations(database_url: str) -> None:
    try:
        await migrate(config=tortoise_config(database_url))
    finally:
        await Tortoise.close_connections()


# For Tortoise's own CLI (`tortoise makemigrations`), which compares models with migrations
# and needs no real database.
TORTOISE_ORM = tortoise_config("sqlite://:memory:")
