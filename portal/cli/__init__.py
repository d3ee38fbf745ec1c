"""The `portal` command for operators: serve, migrate, publish the catalog, onboard patrons,
issue API clients, and the scheduled jobs. Card numbers are read from a prompt or stdin,
never from arguments, so they stay out of shell history and process lists."""

# Each verb parses its arguments and calls one use case (through portal.cli.database, the one
# way to the database); the verbs live by topic in this package's modules.

from __future__ import annotations

import argparse
import asyncio
import stat
import sys
from pathlib import Path

import uvicorn

from portal.app import create_app
from portal.cli import api, backups, catalog, jobs, patrons, receipts, staff
from portal.db import (
    apply_migrations,
    create_data_files,
    exposed_data_files,
    make_data_files_private,
)
from portal.outbox.keys import DEVELOPMENT_FILE as DEVELOPMENT_SECRETS
from portal.rights.keys import DEVELOPMENT_FILE as DEVELOPMENT_RECEIPT_KEYS
from portal.rights.keys import keys_path
from portal.settings import DEVELOPMENT_SECRET, Settings
from portal.web.access_log import LOGGING_CONFIG


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    # The operator's setup and upgrade step: it makes the data private, and says so when it
    # had to (an installation from before this check, or files copied in by hand).
    create_data_files(settings.data_dir, settings.database_url)
    asyncio.run(apply_migrations(settings.database_url))
    for path in make_data_files_private(settings.data_dir, settings.database_url):
        print(f"Made private (it was readable by other local users): {path}")
    print("Database is up to date.")
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    # Serving does not change modes behind the operator's back: it refuses, and says how to
    # fix it, so a folder shared on purpose is a decision someone has to undo.
    create_data_files(settings.data_dir, settings.database_url)
    exposed = exposed_data_files(settings.data_dir, settings.database_url)
    if exposed:
        names = ", ".join(f"{path} ({stat.S_IMODE(path.stat().st_mode):04o})" for path in exposed)
        print(
            f"Refusing to start: other local users can read {names}. The data folder must be "
            "0700 and the database files 0600: run `portal migrate`, which makes them so.",
            file=sys.stderr,
        )
        return 2
    several = args.workers > 1
    uvicorn.run(
        "portal.app:from_environment" if several else create_app(settings),
        factory=several,
        workers=args.workers,
        host=args.host,
        port=args.port,
        access_log=False,
        log_config=LOGGING_CONFIG,
        # Behind a reverse proxy the client address comes from it, for throttling only.
        proxy_headers=bool(settings.forwarded_allow_ips),
        forwarded_allow_ips=settings.forwarded_allow_ips or None,
        server_header=False,
    )
    return 0


def key_files(settings: Settings) -> list[tuple[str, Path]]:
    """Every file of keys or secrets the portal reads, with the setting that names it."""
    named = [
        ("PORTAL_RECEIPT_KEYS_FILE", keys_path(settings)),
        ("PORTAL_SYSTEM_SECRETS_FILE", settings.system_secrets_file),
    ]
    in_data = "PORTAL_DATA_DIR"  # made there in development mode
    for name in (DEVELOPMENT_SECRET, DEVELOPMENT_RECEIPT_KEYS, DEVELOPMENT_SECRETS):
        named.append((in_data, settings.data_dir / name))
    found: dict[Path, str] = {}
    for setting, path in named:
        if path is not None and path not in found:
            found[path] = setting
    return [(setting, path) for path, setting in found.items()]


def refuse_shared_key_files(settings: Settings) -> int:
    """A key that another local account can read is a key anyone on the host may hold: the
    portal will not run on it (docs/PROMISES.md). Nothing is changed behind the operator's
    back: they are told which file and how to fix it."""
    shared = []
    for setting, path in key_files(settings):
        try:
            mode = stat.S_IMODE(path.stat().st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            shared.append((setting, path, mode))
    for setting, path, mode in shared:
        print(
            f"Refusing to start: other local users can read the key file {path} ({mode:04o}, "
            f"from {setting}): run `chmod 600 {path}`, and replace the key if it may have "
            "been copied.",
            file=sys.stderr,
        )
    return 2 if shared else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="portal", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the web portal")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.set_defaults(run=cmd_serve)
    commands.add_parser("migrate", help="apply database migrations").set_defaults(run=cmd_migrate)
    # In the order `portal --help` has always listed them.
    catalog.add_verbs(commands)
    patrons.add_card_verbs(commands)
    jobs.add_coming_of_age(commands)
    patrons.add_import_and_pin_verbs(commands)
    staff.add_verbs(commands)
    api.add_verbs(commands)
    jobs.add_scheduled_verbs(commands)
    jobs.add_delivery_verbs(commands)
    receipts.add_verbs(commands)
    backups.add_verbs(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_environment()
    except ValueError as error:
        print(f"Configuration error: {error}", file=sys.stderr)
        return 2
    if args.command != "migrate" and refuse_shared_key_files(settings):
        return 2
    result: int = args.run(settings, args)
    return result
