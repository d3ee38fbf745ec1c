"""How many queries one portal process runs at once on PostgreSQL: with Tortoise's default
pool of 5, most of 32 concurrent consent checks waited for a connection, and some waited ten
times as long as the median (the check's p99 on PostgreSQL; README, "Performance")."""

from __future__ import annotations

import asyncio
import time

import pytest
from tortoise.connection import connections

from portal.db import POOL_SIZE, fetch_rows, tortoise_config


async def test_a_process_runs_as_many_queries_at_once_as_its_pool_holds(
    engine: str, db: str
) -> None:
    if engine != "postgres":
        pytest.skip("SQLite has one connection per process")
    started = time.monotonic()
    await asyncio.gather(*(fetch_rows("SELECT pg_sleep(0.3)") for _ in range(POOL_SIZE)))
    # Together, not in waves of five (5 × 0.3 s would be 1.2 s for 16).
    assert time.monotonic() - started < 0.9
    assert connections.get("default")._pool.get_size() == POOL_SIZE


def test_the_database_url_can_set_another_pool_size() -> None:
    config = tortoise_config("postgres://portal@127.0.0.1:5432/portal?maxsize=40")
    assert config["connections"]["default"]["credentials"]["maxsize"] == "40"
    config = tortoise_config("postgres://portal@127.0.0.1:5432/portal")
    assert config["connections"]["default"]["credentials"]["maxsize"] == POOL_SIZE
