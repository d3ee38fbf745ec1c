"""`portal backup` and `portal restore`: encrypted to age recipients, the left-out tables never
in a backup, private files, and refusals that write nothing. Both engines."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pyrage
import pytest
from cryptography.exceptions import InvalidTag
from tortoise import Tortoise

from portal.backups import services
from portal.backups.policy import LEFT_OUT_OF_BACKUPS, MAGIC, BackupError, Engine
from portal.catalog.services import forget_published_catalog
from portal.consent.models import ConsentState
from portal.consent.policy import Decision
from portal.db import fetch_rows, tortoise_config
from portal.ledger.models import ConsentEvent
from portal.patrons.models import Patron
from portal.retained_keys.services import KEY_TABLE, WRAP_TABLE, export_keys, key_of
from portal.stores.reading_history import services as reading_history
from portal.stores.reading_history.models import HistoryEntry
from tests import age_reader
from tests.factories import decides, make_patron, now, publish, standard_catalog
from tests.forensics import files_hold

TITLE = "Zyxwvut Quorble and the Marmalade Lighthouse"  # nowhere else in the database
AUTHOR = "Ottoline Brackenfeather"


@pytest.fixture
def usual_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.fixture
def identity(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "backup-identity.txt"
    public = services.make_identity(path, now=now())
    return path, public


@pytest.fixture
def portal(database_url: str, tmp_path: Path, identity: tuple[Path, str]):
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    base = {
        **os.environ,
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_DATA_DIR": str(data),
        "PORTAL_SECRET_KEY": "backup-test-secret-0123456789",
        "PORTAL_DEV_MODE": "false",
        "PORTAL_BACKUP_RECIPIENTS": identity[1],
    }

    def run(*args: str, expect: int = 0, env: dict[str, str | None] | None = None) -> str:
        merged = {**base, **(env or {})}
        done = subprocess.run(
            [sys.executable, "-m", "portal.cli", *args],
            env={name: value for name, value in merged.items() if value is not None},
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == expect, done.stdout + done.stderr
        return done.stdout + done.stderr

    return run


async def _populate() -> None:
    await publish(standard_catalog())
    for _ in range(3):
        patron = await make_patron()
        await decides(patron.id, "reading_history", Decision.YES)
        await reading_history.record_loans(
            patron.id,
            [reading_history.Loan(title=TITLE, author=AUTHOR, borrowed_on=date(2026, 3, 1))],
            now=now(),
        )
    await decides(patron.id, "reading_history", Decision.NO)  # one withdrawal, erased


async def _counts() -> tuple[int, int, int]:
    return (await Patron.all().count(), await ConsentState.all().count(),
            await ConsentEvent.all().count())  # fmt: skip


def _identities(path: Path) -> list[pyrage.x25519.Identity]:
    return services.read_identity(path)


def _readable(payload: bytes, engine: str, tmp_path: Path) -> bytes:
    """What a forensic search reads in a decrypted payload: SQLite's file as it is; a pg_dump
    archive (compressed) rendered to SQL by pg_restore."""
    if engine == "sqlite":
        return payload
    archive = tmp_path / "payload.dump"
    archive.write_bytes(payload)
    done = subprocess.run(
        [services.postgres_program("pg_restore"), "--file=-", str(archive)],
        capture_output=True, check=True,
    )  # fmt: skip
    return done.stdout


def _payload(backup: Path, identity: Path) -> bytes:
    plain = pyrage.decrypt(backup.read_bytes(), _identities(identity))
    assert plain.startswith(MAGIC)
    return plain.split(b"\n", 2)[2]


async def test_a_backup_restored_into_a_fresh_database_has_everything(
    db: str, portal, empty_database_url: str, tmp_path: Path, identity
) -> None:
    await _populate()
    before = await _counts()
    keys = {"PORTAL_RECEIPT_KEYS_FILE": str(tmp_path / "receipt-keys.json")}
    portal("receipt-key", "rotate", env=keys)
    portal("checkpoint", env=keys)
    backup = tmp_path / "portal.age"
    assert "Backup written" in portal("backup", "--to", str(backup))
    restored = portal(
        "restore", str(backup), "--identity", str(identity[0]),
        "--into", empty_database_url, "--keys-from", db,
    )  # fmt: skip
    assert "3 patrons" in restored
    assert TITLE not in restored
    assert AUTHOR not in restored
    await Tortoise.close_connections()
    await Tortoise.init(config=tortoise_config(empty_database_url))
    assert await _counts() == before
    on_restored = {"PORTAL_DATABASE_URL": empty_database_url, **keys}
    assert "OK: " in portal("verify-ledger", env=on_restored)


WITHDRAWN = "Quillon Vesper and the Borrowed Hour"  # borrowed before the backup, withdrawn after
LATER = "Thimbleweather Crossing"  # borrowed after the backup, withdrawn with it
KEPT = "Marrowfield Almanac of Quiet Things"


async def test_a_restore_brings_back_nothing_a_patron_withdrew_after_the_backup(
    db: str, portal, empty_database_url: str, tmp_path: Path, identity
) -> None:
    """Take a backup, borrow, withdraw, restore the backup into a fresh database: the
    withdrawn patron's rows are gone, their consent is not in force, and no title nor the key
    that sealed it is anywhere in the restored database's files or in the backup."""
    await publish(standard_catalog())
    leaving, staying = await make_patron(), await make_patron()
    for patron, title in ((leaving, WITHDRAWN), (staying, KEPT)):
        await decides(patron.id, "reading_history", Decision.YES)
        loan = reading_history.Loan(title=title, author=AUTHOR, borrowed_on=date(2026, 3, 1))
        await reading_history.record_loans(patron.id, [loan], now=now())
    await decides(staying.id, "newsletter", Decision.YES)
    backup = tmp_path / "before.age"
    portal("backup", "--to", str(backup))
    # After the backup: a service that keeps nothing sealed is withdrawn (no key to miss).
    await decides(staying.id, "newsletter", Decision.NO)
    later = reading_history.Loan(title=LATER, author=AUTHOR, borrowed_on=date(2026, 3, 2))
    await reading_history.record_loans(leaving.id, [later], now=now())
    key = await key_of(leaving.id, reading_history.KEY)
    assert key is not None
    await decides(leaving.id, "reading_history", Decision.NO)

    restored = portal(
        "restore", str(backup), "--identity", str(identity[0]),
        "--into", empty_database_url, "--keys-from", db,
    )  # fmt: skip
    assert "Could not be decrypted (withdrawn or erased since the backup): 1 rows" in restored
    assert "1 consents ended" in restored
    assert "Consents the live database ended since the backup, ended here too: 1." in restored
    assert WITHDRAWN not in restored  # counts only
    engine = "sqlite" if db.startswith("sqlite") else "postgres"
    readable = _readable(_payload(backup, identity[0]), engine, tmp_path)
    for title in (WITHDRAWN, KEPT):  # sealed in the backup too
        assert title.encode() not in readable

    await Tortoise.close_connections()
    forget_published_catalog()
    await Tortoise.init(config=tortoise_config(empty_database_url))
    assert await HistoryEntry.filter(patron_id=leaving.id).count() == 0
    assert not await ConsentState.exists(patron_id=leaving.id, granted=True)
    # The patron who stayed keeps what they chose to keep, opened with today's key.
    assert [entry.title for entry in await reading_history.history(staying.id)] == [KEPT]
    kept_in_force = ConsentState.filter(patron_id=staying.id, granted=True)
    assert await kept_in_force.count() == 1  # reading history; the newsletter ended again
    assert await files_hold(KEPT.encode()) is False  # sealed on disk, as everywhere
    for title in (WITHDRAWN, LATER):
        assert not await files_hold(title.encode())
    assert not await files_hold(key.key, tables=[KEY_TABLE, "history_entry"])


def test_the_key_table_is_left_out_of_every_backup() -> None:
    assert KEY_TABLE in LEFT_OUT_OF_BACKUPS


def test_the_wrapping_keys_are_left_out_of_every_backup_after_the_keys() -> None:
    """A backup holds the keys neither wrapped nor their wrapping keys; the key table's rows
    refer to the wrapping keys', so its rows are taken out first."""
    assert LEFT_OUT_OF_BACKUPS.index(KEY_TABLE) < LEFT_OUT_OF_BACKUPS.index(WRAP_TABLE)


async def test_a_left_out_tables_rows_are_not_in_the_backup(
    db: str, engine: str, tmp_path: Path, identity
) -> None:
    await _populate()
    work = tmp_path / "work"
    work.mkdir(mode=0o700)
    kept, left = tmp_path / "kept.age", tmp_path / "left.age"
    services.backup_database(db, kept, [identity[1]], work_dir=work, now=now(), left_out=())
    made = services.backup_database(
        db, left, [identity[1]], work_dir=work, now=now(), left_out=LEFT_OUT_OF_BACKUPS
    )
    assert made.left_out == (KEY_TABLE, WRAP_TABLE)
    # As written: each key wrapped, and the wrapping keys (export_keys unwraps them).
    keys = [bytes(row["key"]) for row in await fetch_rows("SELECT key FROM retained_data_key")]
    keys += [bytes(row["key"]) for row in await fetch_rows("SELECT key FROM retained_key_wrap")]
    assert keys
    assert not {key for _, _, key in await export_keys()} & set(keys)
    # pg_restore renders a bytea as hex; SQLite's file holds the bytes themselves.
    needles = [key if engine == "sqlite" else key.hex().encode() for key in keys]
    # The search finds each key where the table is kept: it would find it if it were there.
    kept_readable = _readable(_payload(kept, identity[0]), engine, tmp_path)
    assert all(needle in kept_readable for needle in needles)
    readable = _readable(_payload(left, identity[0]), engine, tmp_path)
    assert not any(needle in readable for needle in needles)
    assert TITLE.encode() not in readable  # sealed
    assert list(work.iterdir()) == []  # the plaintext copy is gone


async def test_a_left_out_table_that_does_not_exist_yet_is_skipped(
    db: str, tmp_path: Path, identity
) -> None:
    made = services.backup_database(
        db, tmp_path / "b.age", [identity[1]], work_dir=tmp_path, now=now(),
        left_out=("no_such_table",),
    )  # fmt: skip
    assert made.size > 0


async def test_the_backup_file_holds_no_plaintext(
    db: str, portal, engine: str, tmp_path: Path, identity
) -> None:
    await _populate()
    backup = tmp_path / "portal.age"
    portal("backup", "--to", str(backup))
    encrypted = backup.read_bytes()
    assert encrypted.startswith(b"age-encryption.org/v1\n")
    for plain in (TITLE.encode(), AUTHOR.encode(), b"SQLite format 3", b"PGDMP", MAGIC):
        assert plain not in encrypted
    # and it is a whole age file: pyrage decrypts it (the format check)
    assert _payload(backup, identity[0]).startswith(
        b"SQLite format 3" if engine == "sqlite" else b"PGDMP"
    )


def test_a_reader_written_from_the_age_specification_decrypts_a_backup(
    portal, tmp_path: Path, identity
) -> None:
    """Not only pyrage, which wrote it: an independent reader (tests/age_reader.py) agrees."""
    backup = tmp_path / "portal.age"
    portal("backup", "--to", str(backup))
    plain = age_reader.decrypt(
        backup.read_bytes(), age_reader.read_identity(identity[0].read_text())
    )
    assert plain.startswith(MAGIC)
    assert plain == pyrage.decrypt(backup.read_bytes(), _identities(identity[0]))
    tampered = bytearray(backup.read_bytes())
    tampered[-40] ^= 1
    with pytest.raises(InvalidTag):  # each chunk is authenticated
        age_reader.decrypt(bytes(tampered), age_reader.read_identity(identity[0].read_text()))
    other = tmp_path / "other.txt"
    services.make_identity(other, now=now())
    with pytest.raises(ValueError, match="not encrypted to this identity"):
        age_reader.decrypt(backup.read_bytes(), age_reader.read_identity(other.read_text()))


@pytest.mark.parametrize("tool", ["age", "rage"])
def test_the_age_tools_decrypt_a_backup(portal, tmp_path: Path, identity, tool: str) -> None:
    program = shutil.which(tool)
    if program is None:
        pytest.skip(f"{tool} is not installed")
    backup = tmp_path / "portal.age"
    portal("backup", "--to", str(backup))
    done = subprocess.run(
        [program, "--decrypt", "-i", str(identity[0]), str(backup)], capture_output=True, check=True
    )
    assert done.stdout.startswith(MAGIC)


async def test_a_wrong_identity_is_refused_and_nothing_is_written(
    db: str, portal, engine: str, empty_database_url: str, tmp_path: Path
) -> None:
    backup = tmp_path / "portal.age"
    portal("backup", "--to", str(backup))
    other = tmp_path / "other-identity.txt"
    services.make_identity(other, now=now())
    refused = portal(
        "restore", str(backup), "--identity", str(other), "--into", empty_database_url,
        "--without-keys", expect=2,
    )  # fmt: skip
    assert "was not encrypted to this identity" in refused
    if engine == "sqlite":
        target = services.sqlite_path(empty_database_url)
        assert not target.exists()
        assert [p.name for p in target.parent.iterdir() if p.name.startswith(".restore")] == []
    else:
        await Tortoise.close_connections()
        await Tortoise.init(config=tortoise_config(empty_database_url))
        assert await services.tables_here() == []


def test_a_target_that_is_not_empty_is_refused(
    portal, database_url: str, tmp_path: Path, identity
) -> None:
    backup = tmp_path / "portal.age"
    portal("backup", "--to", str(backup))
    refused = portal(
        "restore", str(backup), "--identity", str(identity[0]), "--into", database_url,
        "--without-keys", expect=2,
    )  # fmt: skip
    assert "the target database is not empty" in refused
    assert "31 table(s)" in refused or "table(s) (api_client" in refused


@pytest.mark.usefixtures("usual_umask")
def test_backups_and_identities_are_private_files(portal, tmp_path: Path) -> None:
    identity = tmp_path / "new-identity.txt"
    shown = portal("backup-identity", "--to", str(identity))
    assert "never on the server" in shown
    assert "AGE-SECRET-KEY" not in shown
    backup = tmp_path / "portal.age"
    portal("backup", "--to", str(backup))
    assert stat.S_IMODE(identity.stat().st_mode) == 0o600
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600


def test_an_identity_others_can_read_is_refused(portal, tmp_path: Path, identity) -> None:
    backup = tmp_path / "portal.age"
    portal("backup", "--to", str(backup))
    identity[0].chmod(0o640)
    refused = portal(
        "restore", str(backup), "--identity", str(identity[0]),
        "--into", f"sqlite://{tmp_path / 'new' / 'r.sqlite3'}", "--without-keys", expect=2,
    )  # fmt: skip
    assert f"chmod 600 {identity[0]}" in refused
    assert not (tmp_path / "new" / "r.sqlite3").exists()


def test_a_refused_backup_leaves_no_file(portal, tmp_path: Path) -> None:
    backup = tmp_path / "portal.age"
    refused = portal("backup", "--to", str(backup), env={"PORTAL_BACKUP_RECIPIENTS": ""}, expect=2)
    assert "PORTAL_BACKUP_RECIPIENTS" in refused
    assert list(tmp_path.glob("*.age*")) == []
    assert list(tmp_path.glob(".portal.age*")) == []


def test_a_failed_backup_leaves_no_partial_file(
    portal, engine: str, database_url: str, tmp_path: Path
) -> None:
    broken = (
        f"sqlite://{tmp_path / 'missing.sqlite3'}" if engine == "sqlite"
        else database_url.rsplit("/", 1)[0] + "/no_such_database"
    )  # fmt: skip
    backup = tmp_path / "portal.age"
    portal("backup", "--to", str(backup), env={"PORTAL_DATABASE_URL": broken}, expect=2)
    assert [p.name for p in tmp_path.iterdir() if "portal.age" in p.name] == []


def test_a_backup_never_replaces_an_existing_file(portal, tmp_path: Path) -> None:
    backup = tmp_path / "portal.age"
    backup.write_bytes(b"an older backup")
    assert "exists already" in portal("backup", "--to", str(backup), expect=2)
    assert backup.read_bytes() == b"an older backup"


def test_a_key_backup_older_than_allowed_is_refused(portal, tmp_path: Path, identity) -> None:
    rows = [(1, "reading_history", b"k" * 32)]
    old, young = tmp_path / "old-keys.age", tmp_path / "young-keys.age"
    services.backup_keys(
        rows, old, [identity[1]], engine=Engine.SQLITE, now=now() - timedelta(hours=25)
    )
    services.backup_keys(
        rows, young, [identity[1]], engine=Engine.SQLITE, now=now() - timedelta(hours=23)
    )
    identities = _identities(identity[0])
    assert services.read_key_backup(young, identities, now=now(), max_age_hours=24) == rows
    with pytest.raises(BackupError, match="older than PORTAL_KEY_BACKUP_MAX_AGE_HOURS"):
        services.read_key_backup(old, identities, now=now(), max_age_hours=24)
    backup = tmp_path / "portal.age"
    portal("backup", "--to", str(backup))
    target = tmp_path / "new" / "r.sqlite3"
    refused = portal(
        "restore", str(backup), "--identity", str(identity[0]),
        "--into", f"sqlite://{target}", "--keys", str(old), expect=2,
    )  # fmt: skip
    assert "25 hour(s) old" in refused
    assert not target.exists()


def test_a_database_backup_is_not_taken_for_a_key_backup(portal, tmp_path: Path, identity) -> None:
    backup = tmp_path / "portal.age"
    portal("backup", "--to", str(backup))
    with pytest.raises(BackupError, match="not a key backup"):
        services.read_key_backup(backup, _identities(identity[0]), now=now(), max_age_hours=24)


def test_sqlite_restore_copies_a_private_file(
    portal, engine: str, tmp_path: Path, identity
) -> None:
    if engine != "sqlite":
        pytest.skip("the SQLite file copy")
    backup = tmp_path / "portal.age"
    portal("backup", "--to", str(backup))
    target = tmp_path / "restored" / "portal.sqlite3"
    portal(
        "restore", str(backup), "--identity", str(identity[0]), "--into", f"sqlite://{target}",
        "--without-keys",
    )  # fmt: skip
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    with sqlite3.connect(target) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def _serve_refuses(portal, env: dict[str, str | None], path: Path, setting: str) -> None:
    refused = portal("serve", "--port", "1", env=env, expect=2)
    assert f"the key file {path} (0644, from {setting})" in refused
    assert f"chmod 600 {path}" in refused


def test_serve_refuses_a_receipt_keys_file_others_can_read(portal, tmp_path: Path) -> None:
    keys = tmp_path / "receipt-keys.json"
    env = {"PORTAL_RECEIPT_KEYS_FILE": str(keys)}
    portal("receipt-key", "rotate", env=env)
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    keys.chmod(0o644)
    _serve_refuses(portal, env, keys, "PORTAL_RECEIPT_KEYS_FILE")
    # every other verb that runs with the keys refuses too
    assert "chmod 600" in portal("verify-ledger", env=env, expect=2)


def test_serve_refuses_a_system_secrets_file_others_can_read(portal, tmp_path: Path) -> None:
    secrets = tmp_path / "system-secrets.toml"
    secrets.write_text('ils = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"\n')
    secrets.chmod(0o644)
    env = {"PORTAL_SYSTEM_SECRETS_FILE": str(secrets)}
    _serve_refuses(portal, env, secrets, "PORTAL_SYSTEM_SECRETS_FILE")


def test_serve_refuses_a_development_secret_others_can_read(portal, tmp_path: Path) -> None:
    data = tmp_path / "dev-data"
    env = {"PORTAL_DATA_DIR": str(data), "PORTAL_DEV_MODE": "true", "PORTAL_SECRET_KEY": None}
    portal("migrate", env=env)
    secret = data / "dev-secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    secret.chmod(0o644)
    _serve_refuses(portal, env, secret, "PORTAL_DATA_DIR")


async def test_a_sqlite_backup_writes_no_copy_outside_the_data_folder(
    db: str, engine: str, tmp_path: Path, identity
) -> None:
    """SQLite's VACUUM builds its rewritten copy as a temporary file (in /var/tmp or /tmp)
    unless told to keep it in memory: every file the backup opens is in its private folder."""
    if engine != "sqlite" or shutil.which("strace") is None:
        pytest.skip("SQLite's temporary files, watched with strace")
    await _populate()
    # Larger than SQLite's page cache, or its temporary database never reaches a file.
    with contextlib.closing(sqlite3.connect(services.sqlite_path(db))) as padding:
        padding.execute("CREATE TABLE padding (x TEXT)")
        padding.executemany("INSERT INTO padding VALUES (?)", [("p" * 1000,)] * 8000)
        padding.commit()
    work = tmp_path / "work"
    work.mkdir(mode=0o700)
    trace = tmp_path / "trace.txt"
    script = (
        "import sys; from pathlib import Path; from datetime import datetime, UTC;"
        "from portal.backups import services;"
        "services.backup_database(sys.argv[1], Path(sys.argv[2]), [sys.argv[3]],"
        " work_dir=Path(sys.argv[4]), now=datetime.now(UTC))"
    )
    await asyncio.to_thread(
        subprocess.run,
        ["strace", "-f", "-e", "trace=openat", "-o", str(trace), sys.executable, "-c", script,
         db, str(tmp_path / "b.age"), identity[1], str(work)],
        check=True, capture_output=True,
    )  # fmt: skip
    written = [
        line for line in trace.read_text().splitlines() if "O_CREAT" in line or "O_RDWR" in line
    ]
    assert written, "the trace must see the files the backup writes"
    assert not [line for line in written if "etilqs" in line]  # SQLite's temporary files
