"""The unit tier is pure: no database, no app. A test that needs either belongs in
tests/integration, tests/functional or tests/system, which the PostgreSQL pass runs too."""

from __future__ import annotations

import pytest

NEEDS_A_DATABASE = {"db", "database_url", "empty_database_url", "portal", "settings"}


@pytest.fixture(autouse=True)
def _no_database(request: pytest.FixtureRequest) -> None:
    used = NEEDS_A_DATABASE & set(request.fixturenames)
    if used:
        pytest.fail(f"a unit test may not use {sorted(used)}: move it to tests/integration")
