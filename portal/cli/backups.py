"""The verbs of backups: `portal backup` (the database, or `--keys` the key table alone),
`portal backup-identity` (on the machine that keeps the backups) and `portal restore`."""

from __future__ import annotations

import argparse
import asyncio
import functools
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from portal.backups import services
from portal.backups.policy import BackupError, Engine, engine_of
from portal.backups.services import KeyRow, KeyTable, Settled
from portal.cli.database import with_db
from portal.clock import local_date, utcnow
from portal.db import apply_migrations
from portal.erasure.services import apply_retention
from portal.outbox import services as outbox
from portal.retained_keys import services as retained_keys
from portal.settings import Settings

# The retained-data keys: a backup leaves them out, a restore brings today's.
RETAINED_KEYS = KeyTable(
    retained_keys.KEY_TABLE,
    retained_keys.export_keys,
    retained_keys.replace_keys,
    functools.partial(
        retained_keys.settle_after_restore, forget_contacts=outbox.forget_contacts_on
    ),
)

T = TypeVar("T")


def _refuse(message: str) -> int:
    print(f"Refused: {message}", file=sys.stderr)
    return 2


def cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    to = Path(args.to)
    started = time.monotonic()
    try:
        if args.keys:
            made = _backup_keys(settings, to)
        else:
            made = services.backup_database(
                settings.database_url,
                to,
                settings.backup_recipients,
                work_dir=settings.data_dir,
                now=utcnow(),
            )
    except BackupError as error:
        return _refuse(str(error))
    what = "Key backup" if args.keys else "Backup"
    print(
        f"{what} written: {made.path} ({made.size:,} bytes, {time.monotonic() - started:.1f} s), "
        f"encrypted to {len(settings.backup_recipients)} recipient(s)."
    )
    if made.left_out and not args.keys:
        print(f"Left out (kept only in the live database): {', '.join(made.left_out)}.")
    return 0


def _backup_keys(settings: Settings, to: Path) -> services.BackupMade:
    services.recipients_from(settings.backup_recipients)  # refuse before reading any key
    rows = _in_database(settings, settings.database_url, RETAINED_KEYS.export)
    return services.backup_keys(
        rows,
        to,
        settings.backup_recipients,
        engine=engine_of(settings.database_url),
        now=utcnow(),
    )


def _in_database(settings: Settings, url: str, work: Callable[[], Awaitable[T]]) -> T:
    result: list[T] = []

    async def run() -> int:
        result.append(await work())
        return 0

    with_db(replace(settings, database_url=url), run)
    return result[0]


def cmd_backup_identity(settings: Settings, args: argparse.Namespace) -> int:
    try:
        public = services.make_identity(Path(args.to), now=utcnow())
    except BackupError as error:
        return _refuse(str(error))
    print(f"Identity written to {args.to} (0600). Its public key (the recipient):")
    print(public)
    print(
        "Run this on the machine that keeps the backups, never on the server: the server needs "
        "only the public key, in PORTAL_BACKUP_RECIPIENTS. Keep the identity file offline and "
        "backed up itself: without it no backup can be restored."
    )
    return 0


def cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    target = args.into
    now = utcnow()
    started = time.monotonic()
    try:
        identities = services.read_identity(Path(args.identity))
        services.refuse_unless_empty(_tables_in(settings, target))
        rows = _keys_for_restore(settings, args, identities)
        loaded = services.load_backup(
            Path(args.file), identities, target, work_dir=settings.data_dir
        )
    except BackupError as error:
        return _refuse(str(error))
    asyncio.run(apply_migrations(target))
    ended_live: list[tuple[int, int]] = []
    if args.keys_from:

        async def ended_since() -> list[tuple[int, int]]:
            return await retained_keys.consents_ended_since(loaded.taken_at)

        ended_live = _in_database(settings, args.keys_from, ended_since)

    async def settle() -> int:
        settled = await _keys_then_settle(rows, now=now)
        also_ended = await retained_keys.end_consents_ended_live(ended_live, now=now)
        counts = await services.count_rows()
        print(
            f"Restored the backup taken {loaded.taken_at:%Y-%m-%d %H:%M} UTC into the target: "
            f"{counts.tables} tables, {counts.rows:,} rows ({counts.patrons:,} patrons, "
            f"{counts.consents:,} consents, {counts.ledger_events:,} ledger events); "
            f"migrations up to date; {time.monotonic() - started:.1f} s."
        )
        print(
            f"Keys: {settled.keys_imported:,} brought in. Could not be decrypted (withdrawn "
            f"or erased since the backup): {settled.unreadable_rows:,} rows, erased; "
            f"{settled.consents_ended:,} consents ended. Consents the live database ended "
            f"since the backup, ended here too: {also_ended:,}."
        )
        # What passed its retention period since the backup was taken goes now, not when the
        # operator remembers to run the nightly job against the restored database.
        expired = await apply_retention(now=now, today=local_date(now, settings.timezone))
        print(f"Retention applied: {expired:,} rows past their service's period erased.")
        return 0

    return with_db(replace(settings, database_url=target), settle)


def _tables_in(settings: Settings, target: str) -> list[str]:
    if engine_of(target) is Engine.SQLITE:
        return services.sqlite_tables_at(target)  # opening it would make the file
    found: list[str] = []

    async def listed() -> int:
        found.extend(await services.tables_here())
        return 0

    with_db(replace(settings, database_url=target), listed)
    return found


def _keys_for_restore(
    settings: Settings, args: argparse.Namespace, identities: list[Any]
) -> list[KeyRow]:
    """Today's keys: from the live database (the usual case), a key backup young enough, or
    none at all (every sealed row of the backup stays unreadable and is settled as such)."""
    if args.keys:
        return services.read_key_backup(
            Path(args.keys),
            identities,
            now=utcnow(),
            max_age_hours=settings.key_backup_max_age_hours,
        )
    if args.keys_from:
        return _in_database(settings, args.keys_from, RETAINED_KEYS.export)
    return []


async def _keys_then_settle(rows: list[KeyRow], *, now: datetime) -> Settled:
    # Today's keys into the restored database (replacing any it came with), then whatever
    # they cannot open erased and its consents ended.
    return await services.keys_then_settle(RETAINED_KEYS, rows, now=now)


def add_verbs(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The verbs of backups."""
    backup = commands.add_parser(
        "backup", help="an encrypted backup of the database (age, to PORTAL_BACKUP_RECIPIENTS)"
    )
    backup.add_argument("--to", required=True, help="the new backup file (made 0600)")
    backup.add_argument(
        "--keys",
        action="store_true",
        help="back up only the retained-data key table (short-lived: see "
        "PORTAL_KEY_BACKUP_MAX_AGE_HOURS)",
    )
    backup.set_defaults(run=cmd_backup)
    identity = commands.add_parser(
        "backup-identity",
        help="make an age identity for decrypting backups (on the backup machine, not the server)",
    )
    identity.add_argument("--to", required=True, help="the new identity file (made 0600)")
    identity.set_defaults(run=cmd_backup_identity)
    restore = commands.add_parser(
        "restore", help="restore a backup into a new, empty database, then settle with today's keys"
    )
    restore.add_argument("file", help="the backup file")
    restore.add_argument("--identity", required=True, help="the age identity file (0600)")
    restore.add_argument("--into", required=True, help="the empty target's database URL")
    keys = restore.add_mutually_exclusive_group(required=True)
    keys.add_argument("--keys-from", help="the live database's URL, which holds today's keys")
    keys.add_argument("--keys", help="a key backup (`portal backup --keys`), if young enough")
    keys.add_argument(
        "--without-keys",
        action="store_true",
        help="no keys survive: every sealed row in the backup is unreadable and is settled so",
    )
    restore.set_defaults(run=cmd_restore)
