"""The data inventory's file (portal/officer/inventory.toml) is checked as it is read: a table
without what it holds, how long it is kept or a described column is refused by name."""

from __future__ import annotations

import pytest

from portal.officer.inventory import INVENTORY, InventoryError, parse_inventory

TABLE = """
[[table]]
name = "patron"
purpose = "a patron's account"
kept = "while the account exists"
[table.columns]
id = "row number"
"""


def test_a_well_formed_table_is_read_in_order() -> None:
    (table,) = parse_inventory(TABLE + 'locale = "preferred language"\n')
    assert table.name == "patron"
    assert list(table.columns) == ["id", "locale"]


def test_the_shipped_inventory_is_read() -> None:
    assert "patron" in {table.name for table in INVENTORY}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (TABLE.replace('kept = "while the account exists"\n', ""), "table #1 needs exactly"),
        (TABLE.replace("[table.columns]", 'owner = "x"\n[table.columns]'), "table #1 needs"),
        (TABLE.replace('purpose = "a patron\'s account"', 'purpose = ""'), "must be text"),
        (TABLE + TABLE, "table patron is listed twice"),
        (TABLE + 'locale = " "\n', "column patron.locale needs what it holds"),
        (TABLE + '[other]\nx = "y"\n', "a list of [[table]]"),
    ],
)
def test_a_malformed_inventory_is_refused_by_name(text: str, problem: str) -> None:
    with pytest.raises(InventoryError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        parse_inventory(text)
