"""Database wiring: the Tortoise configuration, and applying the migrations in migrations/."""

from __future__ import annotations

import asyncio
import functools
import os
import re
import stat
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from tortoise import Tortoise
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.connection import connections
from tortoise.migrations.api import migrate
from tortoise.models import Model
from tortoise.transactions import in_transaction

# Named, not imported: the database layer depends on no domain. The stores of retained data
# are one entry: portal.stores.models gathers the models of every store the registry lists.
MODEL_MODULES = [
    "portal.credentials.models",
    "portal.catalog.models",
    "portal.patrons.models",
    "portal.guardians.models",
    "portal.ledger.models",
    "portal.consent.models",
    "portal.retained_keys.models",
    "portal.stores.models",
    "portal.contacts.models",
    "portal.api.models",
    "portal.minors.models",
    "portal.staff.models",
    "portal.desk.models",
    "portal.outbox.models",
    "portal.officer.models",
]


async def _keep_session(connection: Any) -> None:
    """Releasing a pooled PostgreSQL connection skips asyncpg's default reset query (advisory
    unlocks, CLOSE ALL, UNLISTEN, RESET ALL): a round trip on every query, and the portal
    never sets session state (no SET, LISTEN, cursors or advisory locks; transactions always
    end in COMMIT or ROLLBACK, and asyncpg still rolls back one left open)."""


# Pooled PostgreSQL connections per process, unless the database URL says otherwise
# (`?maxsize=N`). Tortoise's default of 5 made the consent check's slowest answers: at 32
# concurrent checks most requests waited for a connection, and asyncpg's pool serves its
# waiters in no fixed order, so some waited ten times as long as the median (README,
# "Performance"). 16 waits rarely at 32 concurrent checks; four workers stay within
# PostgreSQL's default 100 connections, with room for `portal deliver` and the jobs.
POOL_SIZE = 16


def _connection(database_url: str) -> dict[str, Any]:
    connection: dict[str, Any] = expand_db_url(database_url)
    if connection["engine"].endswith("asyncpg"):
        connection["credentials"]["reset"] = _keep_session
        connection["credentials"].setdefault("maxsize", POOL_SIZE)
    else:
        # Transactions that take the write lock first (portal/sqlite.py).
        connection["engine"] = "portal.sqlite"
        # Deleted rows are overwritten with zeros in the database file, not just unlinked
        # (docs/PROMISES.md promise 4: erased means unrecoverable from what the portal controls).
        connection["credentials"]["secure_delete"] = "ON"
    return connection


def tortoise_config(database_url: str) -> dict[str, Any]:
    return {
        "connections": {"default": _connection(database_url)},
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
    files = _sqlite_files(database_url)
    if files and not files[0].exists():
        _create_private_file(files[0])
    try:
        await migrate(config=tortoise_config(database_url))
    finally:
        await Tortoise.close_connections()


# The data folder and the SQLite database hold card lookups, consents and keys: nobody but the
# portal's own account may read them (docs/PROMISES.md). The database's -wal and -shm files
# are made by SQLite with the mode of the database file.
PRIVATE_FOLDER = 0o700
PRIVATE_FILE = 0o600
_SQLITE_COMPANIONS = ("", "-wal", "-shm", "-journal")


def _sqlite_files(database_url: str) -> list[Path]:
    if not database_url.startswith("sqlite://") or ":memory:" in database_url:
        return []
    database = Path(database_url.removeprefix("sqlite://"))
    return [database.with_name(database.name + suffix) for suffix in _SQLITE_COMPANIONS]


def _shared(path: Path) -> bool:
    return bool(path.stat().st_mode & 0o077)


def _make_folder(folder: Path) -> None:
    if not folder.exists():
        folder.mkdir(parents=True, mode=PRIVATE_FOLDER)
        folder.chmod(PRIVATE_FOLDER)  # whatever the umask took away or left


def create_data_files(data_dir: Path, database_url: str) -> None:
    """The data folder, and the SQLite database's folder and (empty) file, made where missing,
    private whatever the umask: SQLite would otherwise create the file 0644 under the usual
    umask, and its -wal and -shm after it."""
    _make_folder(data_dir)
    files = _sqlite_files(database_url)
    if files:
        _make_folder(files[0].parent)
        if not files[0].exists():
            _create_private_file(files[0])


def _create_private_file(path: Path) -> None:
    # An empty file is an empty SQLite database; created here so that its mode is ours.
    descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE)
    try:
        os.fchmod(descriptor, PRIVATE_FILE)
    finally:
        os.close(descriptor)


def exposed_data_files(data_dir: Path, database_url: str) -> list[Path]:
    """What other local accounts could read: the data folder (which shelters the files in it)
    and the SQLite database files, wherever they are, when they allow group or others."""
    exposed = [data_dir] if data_dir.exists() and _shared(data_dir) else []
    return exposed + [f for f in _sqlite_files(database_url) if f.exists() and _shared(f)]


def make_data_files_private(data_dir: Path, database_url: str) -> list[Path]:
    """The data folder 0700 with every folder in it, every file in it 0600, and the SQLite
    database files 0600; returns what was wider (a folder or file shared with others)."""
    tightened = []
    candidates = [data_dir, *(p for p in sorted(data_dir.rglob("*")) if not p.is_symlink())]
    for path in [*candidates, *(f for f in _sqlite_files(database_url) if f.exists())]:
        mode = stat.S_IMODE(path.stat().st_mode)
        private = PRIVATE_FOLDER if path.is_dir() else PRIVATE_FILE
        if mode & 0o077 and path not in tightened:
            path.chmod(mode & private)
            tightened.append(path)
    return tightened


class Erasure:
    """What one erasing transaction deleted (see `erasing`). Erasing steps take it as an
    argument, so they can only run inside such a transaction, and count their rows here."""

    def __init__(self) -> None:
        self.rows = 0

    def deleted(self, rows: int) -> int:
        self.rows += rows
        return rows


@asynccontextmanager
async def erasing() -> AsyncIterator[Erasure]:
    """The one way to erase: a transaction whose erased rows are scrubbed once it committed
    (docs/PROMISES.md promise 4: erased means unrecoverable from what the portal controls). Nothing
    is scrubbed when the block raises (it rolled back) or erased nothing."""
    erasure = Erasure()
    async with in_transaction():
        yield erasure
    if erasure.rows:
        await _scrub_write_ahead_log()


async def _scrub_write_ahead_log() -> None:
    """After an erasure has committed: on SQLite, copy the write-ahead log into the (securely
    deleting) database file and truncate it, so no copy of an erased row lingers in the
    -wal file. On PostgreSQL an erased key's dead tuple is left unreadable by compaction (a
    scheduled job, portal.erasure.services.compact), which rotates its wrapping key; the erased
    rows' dead tuples stay sealed under that key."""
    connection = connections.get("default")
    if connection.capabilities.dialect == "sqlite":
        await connection.execute_script("PRAGMA wal_checkpoint(TRUNCATE)")


class LockBusy(Exception):
    """A lock was not granted within a `briefly_locking` transaction's timeout."""


@asynccontextmanager
async def briefly_locking(timeout_ms: int) -> AsyncIterator[None]:
    """A transaction that gives up (LockBusy, rolled back) rather than wait more than
    `timeout_ms` for a lock: a scheduled job's step that pages and the API would otherwise
    queue behind while it waits (PostgreSQL queues later lockers behind a waiting one). On
    SQLite the transaction takes the write lock when it begins, as every writer does."""
    try:
        async with in_transaction() as connection:
            if connection.capabilities.dialect == "postgres":
                await connection.execute_script(f"SET LOCAL lock_timeout = {int(timeout_ms)}")
            yield
    except Exception as error:
        if not _lock_not_granted(error):
            raise
        raise LockBusy(str(error)) from error


def _lock_not_granted(error: BaseException) -> bool:
    """PostgreSQL's lock_not_available (55P03), as asyncpg raises it: Tortoise passes it on."""
    return getattr(error, "sqlstate", None) == "55P03"


async def rewrite_small_table(table: str, *, timeout_ms: int, tries: int, pause: float) -> None:
    """Rewrite a small table that held erased rows (the wrapping keys: a few MB), so no
    deleted row's bytes are left in its pages: PostgreSQL keeps them until the page is
    reused, and VACUUM FULL writes the live rows to new files and drops the old ones. It
    locks the table while it waits and while it copies: each try waits `timeout_ms` at most
    (a backup's long transaction, say), then `pause` seconds before the next; LockBusy when
    no try got it. On SQLite deleted rows are zeroed as they go (secure_delete): only the
    write-ahead log is scrubbed."""
    connection = connections.get("default")
    if connection.capabilities.dialect != "postgres":
        await _scrub_write_ahead_log()
        return
    not_owned = await fetch_rows(
        "SELECT tablename FROM pg_tables WHERE tablename = ? AND tableowner <> current_user",
        table,
    )
    if not_owned:
        # PostgreSQL would only warn and skip it: the job must not report success.
        raise PermissionError(f"the portal's database role must own {table} to rewrite it")
    async with connection.acquire_connection() as raw:
        await raw.execute(f"SET lock_timeout = {int(timeout_ms)}")
        try:
            for attempt in range(tries):
                try:
                    await raw.execute(f'VACUUM FULL "{table}"')
                    return
                except Exception as error:
                    if not _lock_not_granted(error):
                        raise
                    if attempt + 1 < tries:
                        await asyncio.sleep(pause)
        finally:
            await raw.execute("RESET lock_timeout")
    raise LockBusy(f"{table} stayed locked by others: not rewritten, the next run tries again")


async def fetch_rows(sql: str, *values: Any) -> list[dict[str, Any]]:
    """Raw SQL for the few hot paths (a page view, a bulk import's batch), where building the
    query through the ORM costs more than running it, or the ORM cannot say it (INSERT … ON
    CONFLICT DO NOTHING RETURNING). `sql` uses ? placeholders; PostgreSQL gets $1, $2, …"""
    connection = connections.get("default")
    if connection.capabilities.dialect == "postgres":
        sql = _numbered_placeholders(sql)
    rows: list[dict[str, Any]] = await connection.execute_query_dict(sql, list(values))
    return rows


async def insert_rows(model: type[Model], rows: Sequence[Mapping[str, Any]]) -> None:
    """Rows written as the ORM writes them (each value converted by its field, a field left
    out taking its default), in one batched statement, without a model object per row: a
    job's batch of a thousand events cost more in building objects than in writing them.
    Every row names the same fields."""
    if not rows:
        return
    meta = model._meta
    given = list(rows[0])
    defaults = {
        name: field.default
        for name, field in meta.fields_map.items()
        if name in meta.fields_db_projection
        and name not in given
        and not (field.pk and field.generated)
    }
    names = [*given, *defaults]
    fields = [meta.fields_map[name] for name in names]
    columns = ", ".join(f'"{meta.fields_db_projection[name]}"' for name in names)
    marks = ", ".join("?" * len(names))
    sql = f'INSERT INTO "{meta.db_table}" ({columns}) VALUES ({marks})'  # noqa: S608 - names from the model
    connection = connections.get("default")
    if connection.capabilities.dialect == "postgres":
        sql = _numbered_placeholders(sql)
    await connection.execute_many(
        sql,
        [
            [
                field.to_db_value(
                    row[name] if name in row else _default(defaults[name]),
                    model,
                )
                for name, field in zip(names, fields, strict=True)
            ]
            for row in rows
        ],
    )


def _default(default: Any) -> Any:
    return default() if callable(default) else default


@functools.cache
def _numbered_placeholders(sql: str) -> str:
    numbers = iter(range(1, sql.count("?") + 1))
    return re.sub(r"\?", lambda _: f"${next(numbers)}", sql)


def as_datetime(value: datetime | str) -> datetime:
    """SQLite hands raw timestamps back as ISO text; PostgreSQL as datetimes."""
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def as_optional_datetime(value: datetime | str | None) -> datetime | None:
    return None if value is None else as_datetime(value)


# For Tortoise's own CLI (`tortoise makemigrations`), which compares models with migrations
# and needs no real database.
TORTOISE_ORM = tortoise_config("sqlite://:memory:")
