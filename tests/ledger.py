"""What a database superuser can do to the ledger, for the tests that show it is found."""

from __future__ import annotations

import importlib

from tortoise.connection import connections

APPEND_ONLY = importlib.import_module("migrations.0004_ledger_append_only")


async def as_superuser(*statements: str) -> None:
    """What a database superuser can do: the append-only triggers off, the change, back on."""
    db = connections.get("default")
    if db.capabilities.dialect == "postgres":
        await db.execute_script("ALTER TABLE consent_event DISABLE TRIGGER USER")
        for statement in statements:
            await db.execute_script(statement)
        await db.execute_script("ALTER TABLE consent_event ENABLE TRIGGER USER")
        return
    for statement in APPEND_ONLY.SQLITE_REVERSE:
        await db.execute_script(statement)
    for statement in statements:
        await db.execute_script(statement)
    for statement in APPEND_ONLY.SQLITE:
        await db.execute_script(statement)
