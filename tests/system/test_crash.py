"""The short crash test (the long one is `make crash`): SIGKILLs during concurrent decisions,
loans and lists break no promise."""

from __future__ import annotations

import pytest

from tests.crash import crash_run


async def test_killing_the_server_breaks_no_promise(engine: str, database_url: str) -> None:
    if engine != "postgres":
        pytest.skip("the crash test kills a server that shares PostgreSQL with the checker")
    report, problems = await crash_run(database_url, operations=160, kills=3, clients=6)
    assert report.kills == 3
    assert report.acknowledged > 50
    assert problems == []
