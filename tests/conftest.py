"""Fixtures: every database test runs on a fresh database created from a template that the
real migrations built. `--db sqlite` (default) or `--db postgres` picks the engine; `make test`
runs the whole suite once on each (Tortoise keeps per-dialect query caches per process, so
the two engines get separate processes)."""

from __future__ import annotations

import asyncio
import itertools
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import asyncpg
import httpx2 as httpx
import pytest
from starlette.applications import Starlette
from tortoise import Tortoise

from portal.app import create_app
from portal.catalog.services import forget_published_catalog
from portal.consent.reads import forget_read_states
from portal.db import apply_migrations, tortoise_config
from portal.settings import Settings
from tests.factories import SECRET
from tests.pg import throwaway_cluster
from tests.support import BASE_URL, portal_client

_database_numbers = itertools.count()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db", choices=("sqlite", "postgres"), default="sqlite", help="database engine"
    )


def pytest_report_header(config: pytest.Config) -> str:
    return f"database engine: {config.getoption('--db')}"


async def _admin(server: str, sql: str) -> None:
    connection = await asyncpg.connect(f"{server}/postgres")
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    with throwaway_cluster() as url:

        async def make_template() -> None:
            connection = await asyncpg.connect(f"{url}/postgres")
            await connection.execute("CREATE DATABASE portal_template")
            await connection.close()
            await apply_migrations(f"{url}/portal_template")

        asyncio.run(make_template())
        yield url


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite") / "template.sqlite3"
    asyncio.run(apply_migrations(f"sqlite://{path}"))
    return path


@pytest.fixture
def engine(request: pytest.FixtureRequest) -> str:
    engine: str = request.config.getoption("--db")
    return engine


@pytest.fixture
def database_url(request: pytest.FixtureRequest, engine: str, tmp_path: Path) -> Iterator[str]:
    if engine == "sqlite":
        path = tmp_path / "portal.sqlite3"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite://{path}"
        return
    server: str = request.getfixturevalue("postgres_server")
    name = f"portal_test_{next(_database_numbers)}"

    asyncio.run(_admin(server, f"CREATE DATABASE {name} TEMPLATE portal_template"))
    yield f"{server}/{name}"
    asyncio.run(_admin(server, f"DROP DATABASE {name} WITH (FORCE)"))


@pytest.fixture
def empty_database_url(
    request: pytest.FixtureRequest, engine: str, tmp_path: Path
) -> Iterator[str]:
    """A database with no schema at all, for testing the migrations themselves."""
    if engine == "sqlite":
        yield f"sqlite://{tmp_path / 'empty.sqlite3'}"
        return
    server: str = request.getfixturevalue("postgres_server")
    name = f"portal_empty_{next(_database_numbers)}"

    asyncio.run(_admin(server, f"CREATE DATABASE {name}"))
    yield f"{server}/{name}"
    asyncio.run(_admin(server, f"DROP DATABASE {name} WITH (FORCE)"))


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[str]:
    """Tortoise initialised on a fresh, migrated database (service-tier tests)."""
    forget_published_catalog()
    forget_read_states()
    await Tortoise.init(config=tortoise_config(database_url))
    try:
        yield database_url
    finally:
        await Tortoise.close_connections()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path,
        secret_key=SECRET,
        public_url=BASE_URL,
        locales=("en",),
        default_locale="en",
        # The delivery worker runs only in the tests about delivery, which turn it on.
        delivery_in_process=False,
    )


class Portal:
    """The app with its lifespan running, and a browser-like client (same-origin headers)."""

    def __init__(self, app: Starlette, client: httpx.AsyncClient) -> None:
        self.app = app
        self.client = client


@pytest.fixture
def portal_settings(settings: Settings) -> Settings:
    return settings


@pytest.fixture
async def portal(portal_settings: Settings) -> AsyncIterator[Portal]:
    forget_published_catalog()
    forget_read_states()
    app = create_app(portal_settings)
    async with app.router.lifespan_context(app), portal_client(app) as client:
        yield Portal(app, client)


def with_locales(settings: Settings, locales: tuple[str, ...]) -> Settings:
    return replace(settings, locales=locales)
