"""The data inventory (portal.officer.inventory) against the real migrated schema, on SQLite
and PostgreSQL: a column a migration adds without its line in the inventory, or a line for
a column that no longer exists, fails here and names it. The README renders the inventory."""

from __future__ import annotations

from pathlib import Path

from tortoise.connection import connections

from portal.officer.inventory import INVENTORY, differences, rendered_readme

ROOT = Path(__file__).resolve().parents[2]


async def _schema() -> dict[str, set[str]]:
    connection = connections.get("default")
    schema: dict[str, set[str]] = {}
    if connection.capabilities.dialect == "sqlite":
        _, tables = await connection.execute_query(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
        )
        for table in tables:
            _, columns = await connection.execute_query(f"PRAGMA table_info('{table['name']}')")
            schema[table["name"]] = {column["name"] for column in columns}
        return schema
    _, rows = await connection.execute_query(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE table_schema = 'public'"
    )
    for row in rows:
        schema.setdefault(row["table_name"], set()).add(row["column_name"])
    return schema


async def test_the_inventory_lists_exactly_the_migrated_schema(db: str) -> None:
    problems = differences(await _schema())
    assert problems == [], (
        "The data inventory (portal/officer/inventory.toml) and the migrated schema differ:\n  "
        + "\n  ".join(problems)
        + "\nGive each stored column its line (what it holds), each table its purpose and "
        "retention, then run `python -m portal.officer.inventory` to update the README."
    )


def test_a_missing_or_extra_column_is_named() -> None:
    schema = {table.name: set(table.columns) for table in INVENTORY}
    schema["patron"] = (schema["patron"] - {"locale"}) | {"nickname"}
    schema["receipt_key"] = {"id", "public_key"}
    assert differences(schema) == [
        "table receipt_key is stored but not in the inventory",
        "column patron.nickname is stored but not in the inventory",
        "column patron.locale is in the inventory but not stored",
    ]


def test_every_table_has_a_purpose_and_a_retention_and_every_column_a_line() -> None:
    for table in INVENTORY:
        assert table.purpose, table.name
        assert table.kept, table.name
        assert all(what.strip() for what in table.columns.values()), table.name


def test_the_readme_renders_the_current_inventory() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert rendered_readme(readme) == readme, (
        "README.md's data inventory is stale: run `python -m portal.officer.inventory`"
    )
