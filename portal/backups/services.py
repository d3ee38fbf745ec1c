"""Backing up and restoring the database, encrypted with age (age-encryption.org/v1, through
pyrage): SQLite by its online backup API, PostgreSQL by pg_dump; what LEFT_OUT_OF_BACKUPS
names never leaves the live database. Plaintext copies live only in private files (0600 in a
0700 folder) and are removed; a backup file is made 0600 and appears whole or not at all."""

from __future__ import annotations

import base64
import contextlib
import glob
import io
import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Protocol

import pyrage
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.connection import connections

from portal.backups.policy import (
    HEADER_LIMIT,
    IDENTITY_PREFIX,
    LEFT_OUT_OF_BACKUPS,
    MAGIC,
    BackupError,
    Engine,
    Header,
    Kind,
    engine_of,
    identity_file_text,
    identity_lines,
    is_shared,
    key_backup_refusal,
    parse_header,
)
from portal.db import fetch_rows

KeyRow = tuple[int, str, bytes]  # (patron id, store, sealed key), as the key table exports it


@dataclass(frozen=True)
class BackupMade:
    path: Path
    size: int
    left_out: tuple[str, ...]  # the left-out tables that existed (their rows are not in it)


# ---- age: recipients, identities, the file written whole or not at all -------------------


def recipients_from(keys: Sequence[str]) -> list[pyrage.x25519.Recipient]:
    if not keys:
        raise BackupError(
            "no recipients: set PORTAL_BACKUP_RECIPIENTS to the public key `portal "
            "backup-identity` printed on the machine that keeps the backups"
        )
    parsed = []
    for key in keys:
        try:
            parsed.append(pyrage.x25519.Recipient.from_str(key))
        except pyrage.RecipientError:
            message = f"PORTAL_BACKUP_RECIPIENTS: {key!r} is not an age public key"
            raise BackupError(message) from None
    return parsed


def make_identity(path: Path, *, now: datetime) -> str:
    """A new age identity in a new 0600 file; returns its public key (the recipient)."""
    identity = pyrage.x25519.Identity.generate()
    public = str(identity.to_public())
    text = identity_file_text(str(identity), public, now)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise BackupError(f"{path} exists already: nothing was written") from None
    with os.fdopen(descriptor, "w", encoding="ascii") as out:
        os.fchmod(out.fileno(), 0o600)  # whatever the umask
        out.write(text)
    return public


def read_identity(path: Path) -> list[pyrage.x25519.Identity]:
    """The identities in an age identity file that nobody else can read."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as error:
        raise BackupError(f"cannot read the identity file {path}: {error}") from None
    if is_shared(mode):
        raise BackupError(
            f"the identity file {path} is readable by other users ({mode & 0o777:04o}): run "
            f"`chmod 600 {path}` (and ask who may have copied it)"
        )
    found = []
    for line in identity_lines(text):
        if not line.startswith(IDENTITY_PREFIX):
            raise BackupError(f"{path} is not an age identity file")
        try:
            found.append(pyrage.x25519.Identity.from_str(line))
        except pyrage.IdentityError:
            raise BackupError(f"{path} holds an identity that cannot be read") from None
    if not found:
        raise BackupError(f"{path} holds no identity")
    return found


class _Prefixed(io.BufferedIOBase):
    """The header, then the payload stream: what pyrage reads and encrypts."""

    def __init__(self, prefix: bytes, rest: IO[bytes]) -> None:
        self._prefix = prefix
        self._rest = rest

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        size = -1 if size is None else size
        if self._prefix:
            size = len(self._prefix) if size < 0 else size
            chunk, self._prefix = self._prefix[:size], self._prefix[size:]
            return chunk
        return self._rest.read(size)


@contextlib.contextmanager
def _new_private_file(path: Path) -> Iterator[io.BufferedWriter]:
    """`path` appears only once complete, 0600, and never over an existing file (os.link
    fails where it exists, as O_EXCL would); a failed or killed write leaves no partial file
    under its name, and a failed one none at all."""
    if path.exists():
        raise BackupError(f"{path} exists already: choose a new file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, partial = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.partial-")
    try:
        with os.fdopen(descriptor, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(partial, path)
        except FileExistsError:
            raise BackupError(f"{path} exists already: choose a new file name") from None
    finally:
        os.unlink(partial)


def _encrypt(header: Header, payload: IO[bytes], to: Path, recipients: list[Any]) -> int:
    with _new_private_file(to) as out:
        try:
            pyrage.encrypt_io(_Prefixed(header.encode(), payload), out, recipients)
        except pyrage.EncryptError as error:
            raise BackupError(f"encrypting failed: {error}") from None
    return to.stat().st_size


class _Splitter(io.BufferedIOBase):
    """What pyrage writes while decrypting: the header kept here, the payload to `rest`."""

    def __init__(self, rest: IO[bytes]) -> None:
        self._head = b""
        self.header: Header | None = None
        self.problem: BackupError | None = None
        self._rest = rest

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        written = bytes(data)
        if self.header is not None:
            self._rest.write(written)
            return len(written)
        self._head += written
        if len(self._head) > HEADER_LIMIT or not MAGIC.startswith(self._head[: len(MAGIC)]):
            self.problem = BackupError("not a portal backup")
            raise self.problem
        end = self._head.find(b"\n", len(MAGIC))
        if end >= 0:
            try:
                self.header = parse_header(self._head[len(MAGIC) : end])
            except BackupError as error:
                self.problem = error
                raise
            self._rest.write(self._head[end + 1 :])
            self._head = b""
        return len(written)


def _decrypt(source: Path, identities: list[Any], out: IO[bytes]) -> Header:
    """Decrypts `source` into `out`, returning its header. The payload is authenticated
    chunk by chunk (age's STREAM), so a changed or cut file fails here: the caller writes
    into a private file and uses it only when this returns."""
    splitter = _Splitter(out)
    try:
        with source.open("rb") as encrypted:
            pyrage.decrypt_io(encrypted, splitter, identities)
    except (OSError, pyrage.DecryptError) as error:
        if splitter.problem is not None:
            raise BackupError(f"{source}: {splitter.problem}") from None
        if isinstance(error, pyrage.DecryptError) and "matching" in str(error).lower():
            raise BackupError(
                f"{source} was not encrypted to this identity: nothing was restored"
            ) from None
        raise BackupError(f"{source} cannot be decrypted ({error}): nothing was restored") from None
    if splitter.header is None:
        raise BackupError(f"{source} is not a portal backup")
    return splitter.header


# ---- database backups --------------------------------------------------------------------


def sqlite_path(database_url: str) -> Path:
    return Path(database_url.removeprefix("sqlite://").split("?", 1)[0])


def _postgres_environment(database_url: str) -> tuple[dict[str, str], str]:
    """libpq's variables for the URL (the password stays out of the process list), and the
    database's name."""
    credentials = expand_db_url(database_url)["credentials"]
    env = {
        **os.environ,
        "PGHOST": str(credentials.get("host") or "localhost"),
        "PGPORT": str(credentials.get("port") or 5432),
        "PGUSER": str(credentials.get("user") or ""),
        "PGDATABASE": str(credentials["database"]),
    }
    if credentials.get("password"):
        env["PGPASSWORD"] = str(credentials["password"])
    return env, str(credentials["database"])


def postgres_program(name: str) -> str:
    """pg_dump and pg_restore from the newest server installed (pg_dump must not be older
    than the server), else from PATH."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version_order)
    if found:
        return found[-1]
    on_path = shutil.which(name)
    if on_path is None:
        raise BackupError(f"PostgreSQL's {name} was not found: install postgresql-client")
    return on_path


def _version_order(path: str) -> tuple[int, ...]:
    version = Path(path).parent.parent.name
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def backup_database(
    database_url: str,
    to: Path,
    recipient_keys: Sequence[str],
    *,
    work_dir: Path,
    now: datetime,
    left_out: tuple[str, ...] = LEFT_OUT_OF_BACKUPS,
) -> BackupMade:
    """A consistent backup of the whole database except the rows of `left_out`, encrypted to
    the recipients. `work_dir` (the 0700 data folder) holds SQLite's plaintext copy while it
    is encrypted."""
    recipients = recipients_from(recipient_keys)
    if to.exists():
        raise BackupError(f"{to} exists already: choose a new file name")
    engine = engine_of(database_url)
    if engine is Engine.SQLITE:
        header = Header(Kind.DATABASE, Engine.SQLITE, now, left_out)
        return _backup_sqlite(sqlite_path(database_url), to, recipients, work_dir, header)
    return _backup_postgres(database_url, to, recipients, now, left_out)


def _sqlite_tables(connection: sqlite3.Connection) -> list[str]:
    rows = connection.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
        "ORDER BY name"
    ).fetchall()
    return [str(row[0]) for row in rows]


def _backup_sqlite(
    source: Path, to: Path, recipients: list[Any], work_dir: Path, header: Header
) -> BackupMade:
    if not source.is_file():
        raise BackupError(f"no database at {source}")
    descriptor, name = tempfile.mkstemp(dir=work_dir, prefix=".backup-", suffix=".sqlite3")
    os.close(descriptor)  # 0600, in the private data folder
    copy = Path(name)
    try:
        live = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        target = sqlite3.connect(copy, isolation_level=None)
        try:
            live.backup(target)  # one step: a snapshot as of one moment
            # The copy's journal stays in memory: no second file holds its old pages.
            target.execute("PRAGMA journal_mode = MEMORY")
            target.execute("PRAGMA secure_delete = ON")
            # VACUUM's own copy in memory too, not a file in /var/tmp outside the data folder.
            target.execute("PRAGMA temp_store = MEMORY")
            tables = _sqlite_tables(target)
            present = tuple(table for table in header.left_out if table in tables)
            for table in present:
                target.execute(f'DELETE FROM "{table}"')  # noqa: S608 (a table name we hold)
            target.execute("VACUUM")  # rewritten: no free page keeps a deleted row
        finally:
            target.close()
            live.close()
        header = replace(header, left_out=present)
        with copy.open("rb") as payload:
            size = _encrypt(header, payload, to, recipients)
    finally:
        for leftover in (copy, copy.with_name(copy.name + "-journal")):
            leftover.unlink(missing_ok=True)
    return BackupMade(to, size, present)


def _backup_postgres(
    database_url: str, to: Path, recipients: list[Any], now: datetime, left_out: tuple[str, ...]
) -> BackupMade:
    env, _ = _postgres_environment(database_url)
    # pg_dump takes one snapshot for the whole dump (consistent); a pattern naming no table
    # matches nothing, so a left-out table that does not exist yet is simply skipped.
    command = [postgres_program("pg_dump"), "--format=custom", "--no-password"]
    command += [f"--exclude-table-data={table}" for table in left_out]
    header = Header(Kind.DATABASE, Engine.POSTGRES, now, left_out)
    with (
        tempfile.TemporaryFile() as errors,
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=errors) as dump,  # noqa: S603
    ):
        try:
            # Encrypted as pg_dump writes it: the dump is never whole in memory or on disk.
            with _new_private_file(to) as out:
                pyrage.encrypt_io(_Prefixed(header.encode(), _stdout(dump)), out, recipients)
                if dump.wait() != 0:
                    errors.seek(0)
                    said = errors.read().decode(errors="replace").strip().splitlines()
                    raise BackupError(f"pg_dump failed: {said[-1] if said else dump.returncode}")
        except pyrage.EncryptError as error:
            raise BackupError(f"encrypting failed: {error}") from None
        finally:
            if dump.poll() is None:
                dump.kill()
    return BackupMade(to, to.stat().st_size, left_out)


def _stdout(process: subprocess.Popen[bytes]) -> IO[bytes]:
    if process.stdout is None:  # never: the process was started with stdout=PIPE
        raise BackupError("pg_dump has no output")
    return process.stdout


# ---- restoring ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Loaded:
    taken_at: datetime
    engine: Engine
    left_out: tuple[str, ...]


def sqlite_tables_at(database_url: str) -> list[str]:
    """The tables of a SQLite database file (none when there is no file yet)."""
    path = sqlite_path(database_url)
    if not path.exists() or path.stat().st_size == 0:
        return []
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return _sqlite_tables(connection)
    finally:
        connection.close()


async def tables_here() -> list[str]:
    """The tables of the database Tortoise is open on (PostgreSQL: every schema but the
    system's)."""
    connection = connections.get("default")
    if connection.capabilities.dialect == "sqlite":
        listed = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    else:
        listed = (
            "SELECT tablename AS name FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        )
    return sorted(str(row["name"]) for row in await fetch_rows(listed))


def refuse_unless_empty(found: list[str]) -> None:
    if found:
        shown = ", ".join(found[:5]) + (", …" if len(found) > 5 else "")
        raise BackupError(
            f"the target database is not empty: it holds {len(found)} table(s) ({shown}). "
            "Restore into a new, empty database."
        )


def load_backup(
    source: Path, identities: list[Any], database_url: str, *, work_dir: Path
) -> Loaded:
    """Decrypts `source` and loads it into the (empty) database: SQLite by copying the file
    into place (0600), PostgreSQL by pg_restore in one transaction. The plaintext goes to a
    private file first and is loaded only once the whole backup decrypted and authenticated."""
    engine = engine_of(database_url)
    if engine is Engine.SQLITE:
        target = sqlite_path(database_url)
        if not target.parent.exists():
            target.parent.mkdir(parents=True, mode=0o700)
        place = target.parent
    else:
        place = work_dir
    descriptor, name = tempfile.mkstemp(dir=place, prefix=".restore-")
    plain = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as out:
            header = _decrypt(source, identities, out)
            out.flush()
            os.fsync(out.fileno())
        if header.kind is not Kind.DATABASE:
            raise BackupError(f"{source} is a key backup: restore it with --keys")
        if header.engine is not engine:
            raise BackupError(
                f"{source} is a {header.engine.value} backup; the target is {engine.value}"
            )
        if engine is Engine.SQLITE:
            os.replace(plain, sqlite_path(database_url))
        else:
            _pg_restore(plain, database_url)
    finally:
        plain.unlink(missing_ok=True)
    return Loaded(header.taken_at, header.engine, header.left_out)


def _pg_restore(archive: Path, database_url: str) -> None:
    env, _ = _postgres_environment(database_url)
    command = [
        postgres_program("pg_restore"),
        "--no-password",
        "--single-transaction",  # a failure leaves the target as it was: empty
        "--no-owner",
        "--no-privileges",
        f"--dbname={env['PGDATABASE']}",
        str(archive),
    ]
    done = subprocess.run(command, env=env, capture_output=True, check=False)  # noqa: S603
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines()
        raise BackupError(f"pg_restore failed: {message[-1] if message else done.returncode}")


@dataclass(frozen=True)
class Counts:
    tables: int
    rows: int
    patrons: int
    consents: int
    ledger_events: int


async def count_rows() -> Counts:
    """What a restored database holds, by counts only (for the operator's summary)."""
    counted = {}
    for table in await tables_here():
        rows = await fetch_rows(f'SELECT COUNT(*) AS n FROM "{table}"')  # noqa: S608
        counted[table] = int(rows[0]["n"])
    return Counts(
        tables=len(counted),
        rows=sum(counted.values()),
        patrons=counted.get("patron", 0),
        consents=counted.get("consent_state", 0),
        ledger_events=counted.get("consent_event", 0),
    )


# ---- key backups -------------------------------------------------------------------------


def backup_keys(
    rows: list[KeyRow], to: Path, recipient_keys: Sequence[str], *, engine: Engine, now: datetime
) -> BackupMade:
    """The key table's rows alone, encrypted like a database backup, with the time taken:
    `portal restore --keys` refuses it once it is older than the configured age."""
    recipients = recipients_from(recipient_keys)
    payload = json.dumps(
        [[patron, store, base64.b64encode(key).decode()] for patron, store, key in rows]
    ).encode()
    header = Header(Kind.KEYS, engine, now, LEFT_OUT_OF_BACKUPS)
    size = _encrypt(header, io.BytesIO(payload), to, recipients)
    return BackupMade(to, size, LEFT_OUT_OF_BACKUPS)


def read_key_backup(
    source: Path, identities: list[Any], *, now: datetime, max_age_hours: int
) -> list[KeyRow]:
    """The rows of a key backup young enough to restore; refused otherwise."""
    out = io.BytesIO()
    header = _decrypt(source, identities, out)
    if header.kind is not Kind.KEYS:
        raise BackupError(f"{source} is a database backup, not a key backup")
    refusal = key_backup_refusal(header.taken_at, now, max_age_hours)
    if refusal:
        raise BackupError(f"{source}: {refusal}. Nothing was restored.")
    try:
        return [
            (int(patron), str(store), base64.b64decode(key, validate=True))
            for patron, store, key in json.loads(out.getvalue())
        ]
    except (ValueError, TypeError):
        raise BackupError(f"{source}: the key rows cannot be read") from None


# ---- keys, then settle -------------------------------------------------------------------


class Unreadable(Protocol):
    """What settling a restore reports (portal.retained_keys.services.Unreadable)."""

    @property
    def rows(self) -> int: ...

    @property
    def consents_ended(self) -> int: ...


@dataclass(frozen=True)
class KeyTable:
    """The retained-data keys, as a restore needs them: the table's name, its rows read from a
    live database, written into the restored one, and then the settling of what no key opens.
    Built from portal.retained_keys.services in portal/cli/backups.py (RETAINED_KEYS)."""

    name: str
    export: Callable[[], Awaitable[list[KeyRow]]]
    import_rows: Callable[[list[KeyRow]], Awaitable[int]]
    settle: Callable[..., Awaitable[Unreadable]]


@dataclass(frozen=True)
class Settled:
    keys_imported: int
    unreadable_rows: int
    consents_ended: int


async def keys_then_settle(keys: KeyTable, rows: list[KeyRow], *, now: datetime) -> Settled:
    """The restore's last step, in the restored database: today's keys written in, then what
    they cannot open settled (rows erased, the consents they belonged to ended), so that a
    withdrawal made after the backup stays a withdrawal."""
    imported = await keys.import_rows(rows)
    unreadable = await keys.settle(now=now)
    return Settled(imported, unreadable.rows, unreadable.consents_ended)
