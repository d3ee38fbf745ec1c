"""The `portal` command for operators: serve, migrate, publish the catalog, onboard patrons,
issue API clients, and the scheduled jobs. Card numbers are read from a prompt or stdin,
never from arguments, so they stay out of shell history and process lists."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import getpass
import json
import logging.config
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from pathlib import Path

import uvicorn
from tortoise import Tortoise

from portal.api import services as api_clients
from portal.api.policy import Scope
from portal.app import create_app
from portal.catalog.jurisdiction import PRESETS
from portal.catalog.policy import CatalogError, parse_catalog
from portal.clock import local_date, utcnow
from portal.credentials import throttle
from portal.credentials.throttle import Guessing
from portal.db import apply_migrations, tortoise_config
from portal.decisions.services import expire_unanswered
from portal.desk.services import purge_handovers
from portal.erasure.services import apply_retention
from portal.erasure.services import compact as compact_stores
from portal.errors import DomainError
from portal.minors.services import (
    coming_of_age,
    end_link_at_desk,
    link_at_desk,
    purge_expired_link_codes,
)
from portal.officer import services as officer_services
from portal.officer.policy import JobName
from portal.officer.services import Run, purge_old_runs, recorded
from portal.outbox import services as outbox
from portal.outbox.keys import SecretsError, require_secrets
from portal.outbox.policy import UNCONFIRMED_AFTER, new_secret
from portal.outbox.worker import DeliveryWorker, check_published_secrets
from portal.patrons.importing import BadRow, IssuedCode, import_patrons
from portal.patrons.policy import guess_subject
from portal.patrons.services import (
    PatronError,
    create_patron,
    has_pin,
    issue_setup_code,
    patron_for_card,
    purge_expired_sessions,
)
from portal.rights.keys import ReceiptKeysError, keys_path, load_keys
from portal.rights.keys import rotate as rotate_receipt_key
from portal.rights.services import verify_receipt
from portal.settings import Settings
from portal.staff import audit
from portal.staff import services as staff_services
from portal.staff.policy import AuditAction, Role, StaffError
from portal.stores.registry import KEYS as STORE_KEYS
from portal.web.access_log import LOGGING_CONFIG

DEMO_CARD = "2000 0000 0001"
DEMO_DESK_USERNAME = "demo-desk"
KEEP_ALIVE_SECONDS = 300


def _read_card(prompt: str = "Card number: ") -> str:
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.readline().strip()


async def _audit(
    settings: Settings,
    action: AuditAction,
    *,
    patron_id: int | None = None,
    reason: str | None = None,
    detail: dict[str, object] | None = None,
) -> None:
    """The staff audit trail records command-line actions, by the server login running them."""
    now = utcnow()
    operator = await staff_services.command_line_operator(
        settings.secret_key, getpass.getuser(), now=now
    )
    key = audit.patron_key(settings.secret_key, patron_id) if patron_id is not None else None
    await audit.append(operator, action, now=now, patron_key=key, reason=reason, detail=detail)


async def _with_db(settings: Settings, work: Callable[[], Awaitable[int]]) -> int:
    await Tortoise.init(config=tortoise_config(settings.database_url))
    try:
        return await work()
    finally:
        await Tortoise.close_connections()


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    if settings.database_url.startswith("sqlite://"):
        Path(settings.database_url.removeprefix("sqlite://")).parent.mkdir(
            parents=True, exist_ok=True
        )
    asyncio.run(apply_migrations(settings.database_url))
    print("Database is up to date.")
    return 0


def cmd_publish(settings: Settings, args: argparse.Namespace) -> int:

    text = Path(args.catalog).read_text(encoding="utf-8")

    async def work() -> int:
        try:
            catalog = parse_catalog(text, settings.locales, STORE_KEYS)
            # A system nobody can send signed requests to would hold deletions forever.
            require_secrets(settings, [system.key for system in catalog.systems])
            report = await officer_services.publish(catalog, text, now=utcnow())
        except CatalogError as error:
            print("Nothing was published. Please fix:", file=sys.stderr)
            for problem in error.problems:
                print(f"  - {problem}", file=sys.stderr)
            return 2
        except SecretsError as error:
            print(f"Nothing was published: {error}", file=sys.stderr)
            return 2
        for key, change in report.changes.items():
            print(f"  {key}: {change.value}")
        if report.consents_suspended:
            print(
                f"{report.consents_suspended} consent(s) paused until patrons accept the "
                "changed privacy notices."
            )
        return 0

    return asyncio.run(_with_db(settings, work))


def _print_setup(code: str, expires_at: datetime) -> None:
    print(f"One-time PIN setup code: {code}")
    print(f"Valid until {expires_at:%Y-%m-%d %H:%M} UTC. Give it to the patron only;")
    print("they set their own PIN at /setup-pin.")


def cmd_create_patron(settings: Settings, args: argparse.Namespace) -> int:
    card = _read_card()

    async def work() -> int:
        try:
            new = await create_patron(
                settings.secret_key,
                card,
                now=utcnow(),
                setup_code_hours=settings.setup_code_hours,
                born_on=args.born,
                jurisdiction=args.jurisdiction,
            )
        except PatronError as error:
            print(f"Not created: {error.code}", file=sys.stderr)
            return 2
        await _audit(settings, AuditAction.CARD_CREATED, patron_id=new.patron_id)
        print("Patron created. Every optional service is off.")
        _print_setup(new.setup_code, new.expires_at)
        return 0

    return asyncio.run(_with_db(settings, work))


IMPORT_HELP = """\
Create a patron, every optional service off, for each card in FILE.csv: one row per card,
card number first, then optionally the date of birth (YYYY-MM-DD) and the language (an
enabled locale, e.g. es). A header row is allowed. UTF-8, with or without a byte-order mark.

Cards already known (an earlier run, the desk, or an earlier row of the file) are skipped,
so an import that stopped can simply be run again. A bad row is skipped whole and reported
on stderr by line number and reason, never its content; the other rows are imported.

With --codes-file, each new patron gets a one-time PIN setup code, written to PATH as
"card number,setup code,valid until" (card numbers without spaces or dashes) for the
library's own mailing. PATH must not exist yet; it is created readable by you alone.
Patrons whose code went missing get a new one from `portal reset-pin`.

Exit status: 0 when every row was imported or already known, 1 when some rows were bad
(the others were imported), 2 when nothing could be read or the codes file exists."""


class _CodesFile:
    """The new patrons' setup codes, for the library's mailing: a file created for this run,
    readable by its owner alone. An existing file is never reused (another run's codes may
    not have been mailed yet)."""

    def __init__(self, path: str) -> None:
        self.path = path
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        self.out = os.fdopen(descriptor, "w", encoding="utf-8", newline="")
        self.rows = csv.writer(self.out)
        self.rows.writerow(["card number", "setup code", "valid until"])
        self.written = 0

    def write(self, issued: list[IssuedCode]) -> None:
        for code in issued:
            valid_until = f"{code.expires_at:%Y-%m-%d %H:%M} UTC"
            self.rows.writerow([code.card_number, code.setup_code, valid_until])
        self.written += len(issued)
        # Their batch has committed: the codes must outlive the process.
        self.out.flush()
        os.fsync(self.out.fileno())

    def close(self) -> None:
        self.out.close()
        if not self.written:
            os.unlink(self.path)  # nothing to mail: the next run may use the same name


def _report_bad_row(bad: BadRow) -> None:
    print(f"line {bad.line}: {bad.problem}", file=sys.stderr)


def cmd_import_patrons(settings: Settings, args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as files:
        try:
            source = files.enter_context(
                open(args.file, encoding="utf-8-sig", errors="surrogateescape", newline="")
            )
        except OSError as error:
            print(f"Cannot read {args.file}: {error.strerror}", file=sys.stderr)
            return 2
        codes = None
        if args.codes_file:
            try:
                codes = _CodesFile(args.codes_file)
            except FileExistsError:
                print(f"{args.codes_file} already exists: name a new file.", file=sys.stderr)
                return 2
            except OSError as error:
                print(f"Cannot create {args.codes_file}: {error.strerror}", file=sys.stderr)
                return 2
            files.callback(codes.close)

        async def work() -> int:
            now = utcnow()
            summary = await import_patrons(
                source,
                settings.secret_key,
                now=now,
                today=local_date(now, settings.timezone),
                locales=settings.locales,
                setup_code_hours=args.codes_valid_days * 24,
                on_bad_row=_report_bad_row,
                on_codes=codes.write if codes else None,
            )
            await _audit(
                settings,
                AuditAction.PATRONS_IMPORTED,
                detail={
                    "rows": summary.created,
                    "known": summary.skipped_existing,
                    "bad": summary.bad_rows,
                    "codes": bool(codes),
                },
            )
            bad = f"{summary.bad_rows} bad row(s)" + (" (see above)" if summary.bad_rows else "")
            print(f"{summary.created} created, {summary.skipped_existing} already known, {bad}.")
            if codes and codes.written:
                print(f"Their one-time PIN setup codes are in {codes.path}.")
            return 1 if summary.bad_rows else 0

        return asyncio.run(_with_db(settings, work))


def cmd_reset_pin(settings: Settings, args: argparse.Namespace) -> int:

    card = _read_card()

    async def work() -> int:
        try:
            new = await issue_setup_code(
                settings.secret_key, card, now=utcnow(), setup_code_hours=settings.setup_code_hours
            )
        except PatronError as error:
            print(f"No code issued: {error.code}", file=sys.stderr)
            return 2
        await throttle.unlock(
            settings.secret_key, Guessing.SIGNIN, guess_subject(card)
        )  # staff checked who they are
        await _audit(settings, AuditAction.SETUP_SLIP_PRINTED, patron_id=new.patron_id)
        _print_setup(new.setup_code, new.expires_at)
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_demo_patron(settings: Settings, args: argparse.Namespace) -> int:

    if not settings.dev_mode:
        print("The demo patron exists only in development mode.", file=sys.stderr)
        return 2

    async def work() -> int:
        existing = await has_pin(settings.secret_key, DEMO_CARD)
        print(f"Demo library card: {DEMO_CARD}")
        if existing:
            print("Sign in with the PIN you chose (run `portal reset-pin` to choose another).")
            return 0
        make = issue_setup_code if existing is False else create_patron
        new = await make(
            settings.secret_key, DEMO_CARD, now=utcnow(), setup_code_hours=settings.setup_code_hours
        )
        _print_setup(new.setup_code, new.expires_at)
        return 0

    return asyncio.run(_with_db(settings, work))


def _print_staff_setup(username: str, code: str, expires_at: datetime) -> None:
    print(f"Staff username: {username}")
    print(f"One-time password setup code: {code}")
    print(f"Valid until {expires_at:%Y-%m-%d %H:%M} UTC. Give it to the staff member only;")
    print("they choose their own password at /staff/setup, then sign in at /staff/signin.")


def cmd_staff_add(settings: Settings, args: argparse.Namespace) -> int:
    roles = frozenset(Role(role) for role in args.role)

    async def work() -> int:
        try:
            new = await staff_services.add_local_staff(
                settings.secret_key,
                args.username,
                args.name or args.username,
                roles,
                now=utcnow(),
                setup_code_hours=settings.setup_code_hours,
            )
        except StaffError as error:
            print(f"Not created: {error.code}", file=sys.stderr)
            return 2
        member = await staff_services.identity_of(new.staff_id)
        await _audit(settings, AuditAction.STAFF_ADDED, detail={"staff": member.pseudonym})
        _print_staff_setup(args.username, new.setup_code, new.expires_at)
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_staff_reset(settings: Settings, args: argparse.Namespace) -> int:
    async def work() -> int:
        try:
            new = await staff_services.reissue_setup_code(
                settings.secret_key,
                args.username,
                now=utcnow(),
                setup_code_hours=settings.setup_code_hours,
            )
        except StaffError:
            print("No local staff account with that username.", file=sys.stderr)
            return 2
        _print_staff_setup(args.username, new.setup_code, new.expires_at)
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_demo_desk(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.dev_mode:
        print("The demo desk account exists only in development mode.", file=sys.stderr)
        return 2

    async def work() -> int:
        now = utcnow()
        try:
            new = await staff_services.add_local_staff(
                settings.secret_key,
                DEMO_DESK_USERNAME,
                "Demo desk",
                frozenset({Role.DESK, Role.PRIVACY_OFFICER}),
                now=now,
                setup_code_hours=settings.setup_code_hours,
            )
        except StaffError:
            if await staff_services.has_password(DEMO_DESK_USERNAME):
                print(f"Demo desk username: {DEMO_DESK_USERNAME} (sign in at /staff/signin)")
                return 0
            new = await staff_services.reissue_setup_code(
                settings.secret_key,
                DEMO_DESK_USERNAME,
                now=now,
                setup_code_hours=settings.setup_code_hours,
            )
        _print_staff_setup(DEMO_DESK_USERNAME, new.setup_code, new.expires_at)
        return 0

    return asyncio.run(_with_db(settings, work))


def _print_secret(issued: api_clients.IssuedSecret) -> None:
    print(f"Client: {issued.name}")
    print(f"Scopes: {' '.join(sorted(issued.scopes))}")
    print(f"Client id: {issued.client_id}")
    print(f"Client secret: {issued.secret}")
    print("The secret is shown this once and stored only as a keyed hash: put it in that")
    print("system's configuration now. It gets access tokens at POST /oauth/token.")


def _scopes(args: argparse.Namespace) -> frozenset[Scope] | None:
    return frozenset(Scope(scope) for scope in args.scope) if args.scope else None


def cmd_api_client_add(settings: Settings, args: argparse.Namespace) -> int:
    async def work() -> int:
        try:
            issued = await api_clients.add_client(
                settings.secret_key,
                args.name,
                _scopes(args) or frozenset(),
                now=utcnow(),
                system=args.system,
            )
        except DomainError as error:
            print(f"Not created: {error.code}", file=sys.stderr)
            return 2
        _print_secret(issued)
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_api_client_rotate(settings: Settings, args: argparse.Namespace) -> int:
    async def work() -> int:
        try:
            issued = await api_clients.rotate_client(
                settings.secret_key, args.name, _scopes(args), now=utcnow(), system=args.system
            )
        except DomainError as error:
            print(f"Not rotated: {error.code}", file=sys.stderr)
            return 2
        print("The old secret no longer works; access tokens issued under it stop working")
        print("within seconds.")
        _print_secret(issued)
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_api_client_revoke(settings: Settings, args: argparse.Namespace) -> int:
    async def work() -> int:
        try:
            await api_clients.revoke_client(args.name, now=utcnow())
        except DomainError as error:
            print(f"Not revoked: {error.code}", file=sys.stderr)
            return 2
        print(f"Revoked {args.name}: its secret no longer works, and its access tokens stop")
        print("working within seconds. `portal api-client rotate` would give it a new secret.")
        return 0

    return asyncio.run(_with_db(settings, work))


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M}" if moment else "-"


def cmd_api_client_list(settings: Settings, args: argparse.Namespace) -> int:
    async def work() -> int:
        clients = await api_clients.list_clients()
        if not clients:
            print("No API clients yet (`portal api-client add NAME --scope ...`).")
            return 0
        print("name | client id | scopes | system | created | rotated | revoked | last token (UTC)")
        for client in clients:
            scopes = " ".join(sorted(client.scopes)) or "-"
            if client.secret_lookup is None:
                scopes = "no secret yet: run `portal api-client rotate NAME --scope ...`"
            print(
                f"{client.name} | {client.client_id or '-'} | {scopes} | {client.system or '-'} | "
                f"{_when(client.created_at)} | {_when(client.rotated_at)} | "
                f"{_when(client.revoked_at)} | {_when(client.last_token_at)}"
            )
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_expire_consents(settings: Settings, args: argparse.Namespace) -> int:

    async def work() -> int:
        async with recorded(JobName.EXPIRE_CONSENTS, utcnow) as run:
            count = await expire_unanswered(
                now=utcnow(),
                material_grace_days=settings.reconsent_grace_days,
                majority_grace_days=settings.majority_grace_days,
            )
            run.counts["consents_ended"] = count
        print(f"{count} unanswered consent(s) ended and their retained data erased.")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_apply_retention(settings: Settings, args: argparse.Namespace) -> int:
    async def work() -> int:
        async with recorded(JobName.APPLY_RETENTION, utcnow) as run:
            now = utcnow()
            rows = await apply_retention(now=now, today=local_date(now, settings.timezone))
            run.counts["rows_deleted"] = rows
        print(f"{rows} retained row(s) past their service's retention period deleted.")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_compact_erased(settings: Settings, args: argparse.Namespace) -> int:
    async def work() -> int:
        async with recorded(JobName.COMPACT_ERASED, utcnow):
            await compact_stores()
        print("Tables of retained data rewritten: erased rows leave no bytes behind.")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_purge_sessions(settings: Settings, args: argparse.Namespace) -> int:

    async def work() -> int:
        async with recorded(JobName.PURGE_SESSIONS, utcnow) as run:
            now = utcnow()
            count = await purge_expired_sessions(now) + await purge_expired_link_codes(now)
            count += await staff_services.purge_expired(now) + await purge_handovers(now)
            count += await throttle.purge_expired(
                now=now, window_seconds=settings.signin_window_seconds
            )
            count += await outbox.purge_confirmed(now=now)
            count += await purge_old_runs(now)
            run.counts["rows_deleted"] = count
        print(
            f"{count} expired session(s), setup code(s), link code(s), hand-over(s), "
            "sign-in attempt(s), confirmed request(s) to connected systems and old job runs "
            "deleted."
        )
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_link_guardian(settings: Settings, args: argparse.Namespace) -> int:
    guardian_card = _read_card("Guardian's card number: ")
    child_card = _read_card("Child's card number: ")

    async def work() -> int:
        try:
            made = await link_at_desk(
                settings.secret_key,
                guardian_card,
                child_card,
                args.label,
                now=utcnow(),
                timezone=settings.timezone,
            )
        except DomainError as error:
            print(f"Not linked: {error.code}", file=sys.stderr)
            return 2
        for patron_id in (made.child_id, made.guardian_id):
            await _audit(settings, AuditAction.GUARDIAN_LINKED, patron_id=patron_id)
        print("Linked. The guardian can now review the child's privacy notices under My children.")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_unlink_guardian(settings: Settings, args: argparse.Namespace) -> int:
    guardian_card = _read_card("Guardian's card number: ")
    child_card = _read_card("Child's card number: ")

    async def work() -> int:
        try:
            made = await end_link_at_desk(
                settings.secret_key, guardian_card, child_card, now=utcnow()
            )
        except DomainError as error:
            print(f"Not unlinked: {error.code}", file=sys.stderr)
            return 2
        for patron_id in (made.child_id, made.guardian_id):
            await _audit(
                settings, AuditAction.GUARDIAN_UNLINKED, patron_id=patron_id, reason=args.reason
            )
        print("Link ended. The guardian and the child are told on their next visit.")
        return 0

    return asyncio.run(_with_db(settings, work))


async def patron_for_card_or_none(secret: str, card: str) -> int | None:
    try:
        return await patron_for_card(secret, card)
    except PatronError:
        return None


def cmd_unlock_signin(settings: Settings, args: argparse.Namespace) -> int:
    card = _read_card()

    async def work() -> int:
        cleared = await throttle.unlock(settings.secret_key, Guessing.SIGNIN, guess_subject(card))
        patron_id = await patron_for_card_or_none(settings.secret_key, card)
        if patron_id is not None:
            await _audit(settings, AuditAction.SIGNIN_UNLOCKED, patron_id=patron_id)
        print(f"Sign-in unlocked for this card ({cleared} counted attempt(s) cleared).")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_coming_of_age(settings: Settings, args: argparse.Namespace) -> int:
    async def work() -> int:
        async with recorded(JobName.COMING_OF_AGE, utcnow) as run:
            report = await coming_of_age(now=utcnow(), timezone=settings.timezone)
            run.counts.update(
                patrons=report.patrons,
                links_ended=report.links_ended,
                consents_paused=report.consents_suspended,
            )
        print(
            f"{report.patrons} patron(s) came of age: {report.links_ended} guardian link(s) "
            f"ended, {report.consents_suspended} guardian consent(s) paused for confirmation."
        )
        return 0

    return asyncio.run(_with_db(settings, work))


async def _keep_alive(run: Run, stop: asyncio.Event) -> None:
    """The delivery worker as a service: its run is marked alive every few minutes, so the
    privacy officer sees it running (and, once it stops marking, that it stopped)."""
    while not stop.is_set():
        await run.alive(utcnow())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=KEEP_ALIVE_SECONDS)


def cmd_deliver(settings: Settings, args: argparse.Namespace) -> int:
    async def work() -> int:
        async with recorded(JobName.DELIVER, utcnow) as run:
            try:
                await check_published_secrets(settings)
            except SecretsError as error:
                print(f"Not delivering: {error}", file=sys.stderr)
                run.fail(str(error))
                return 2
            worker = DeliveryWorker(settings)
            try:
                if args.once:
                    sent = await worker.deliver_all_due()
                    run.counts["sent"] = sent
                    print(f"{sent} request(s) to connected systems sent.")
                    return 0
                stop = asyncio.Event()
                loop = asyncio.get_running_loop()
                for stopping in (signal.SIGTERM, signal.SIGINT):
                    loop.add_signal_handler(stopping, stop.set)
                print("Delivering requests to connected systems (stop with Ctrl-C or SIGTERM).")
                alive = asyncio.create_task(_keep_alive(run, stop))
                await worker.run(stop)
                await alive
                return 0
            finally:
                await worker.close()

    logging.config.dictConfig(LOGGING_CONFIG)
    return asyncio.run(_with_db(settings, work))


def cmd_deletions(settings: Settings, args: argparse.Namespace) -> int:
    async def work() -> int:
        now = utcnow()
        if args.retry:
            retried = await outbox.retry_given_up(now=now)
            print(f"{retried} request(s) given up on will be sent again, for three more days.")
        if args.unconfirmed:
            late = await outbox.unconfirmed(now=now)
            hours = int(UNCONFIRMED_AFTER.total_seconds() // 3600)
            print(f"{len(late)} deletion request(s) unconfirmed after {hours} hours.")
            for request in late:
                print(
                    f"  {request.id}  {request.system}  {request.service}  {request.reason}  "
                    f"requested {request.requested_at:%Y-%m-%d %H:%M} UTC  {request.state.value}"
                    f", {request.attempts} attempt(s)"
                    + (f", last: {request.last_error}" if request.last_error else "")
                )
            return 0
        counts = await outbox.summary()
        if not counts:
            print("No requests to connected systems.")
        for (system, kind, state), count in sorted(counts.items()):
            print(f"  {system}  {kind}  {state}: {count}")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_system_secret(settings: Settings, args: argparse.Namespace) -> int:
    print(f'{args.system} = "{new_secret()}"')
    return 0


def cmd_receipt_key_rotate(settings: Settings, args: argparse.Namespace) -> int:
    path = keys_path(settings)
    if path is None:
        print("Set PORTAL_RECEIPT_KEYS_FILE to the receipt keys file.", file=sys.stderr)
        return 2
    try:
        kid = rotate_receipt_key(path)
    except ReceiptKeysError as error:
        print(f"Nothing changed: {error}", file=sys.stderr)
        return 1
    print(f"Receipts are now signed with key {kid}; older receipts still verify.")
    print(f"Copy {path} to every host that runs the portal.")
    return 0


def cmd_verify_receipt(settings: Settings, args: argparse.Namespace) -> int:
    try:
        keys = load_keys(settings)
        token = Path(args.file).read_text(encoding="utf-8", errors="replace")
    except (ReceiptKeysError, OSError) as error:
        print(f"Cannot check: {error}", file=sys.stderr)
        return 2
    result = verify_receipt(token, keys.public)
    if not result.valid:
        print("NOT VALID: changed after signing, or not signed by this library's keys.")
        return 1
    print(f"VALID: signed with key {result.key_id}.")
    print(json.dumps(result.claims, ensure_ascii=False, indent=2, sort_keys=True))
    return 0


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
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


SYSTEM_HELP = (
    "the connected system (its key in the catalog) this client speaks for: needed for the "
    "deletions scopes, and it sees and confirms only that system's deletion requests"
)


def _add_api_client_verbs(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    client = commands.add_parser(
        "api-client", help="OAuth clients for library systems (secrets are shown once)"
    )
    client_verbs = client.add_subparsers(dest="client_command", required=True)
    scope_choices = [scope.value for scope in Scope]
    client_add = client_verbs.add_parser(
        "add", help="a new client with its scopes; prints its client id and secret once"
    )
    client_add.add_argument("name")
    client_add.add_argument("--scope", action="append", required=True, choices=scope_choices)
    client_add.add_argument("--system", metavar="KEY", help=SYSTEM_HELP)
    client_add.set_defaults(run=cmd_api_client_add)
    client_rotate = client_verbs.add_parser(
        "rotate", help="a new secret (the old one stops working); new scopes when given"
    )
    client_rotate.add_argument("name")
    client_rotate.add_argument("--scope", action="append", choices=scope_choices)
    client_rotate.add_argument("--system", metavar="KEY", help=SYSTEM_HELP)
    client_rotate.set_defaults(run=cmd_api_client_rotate)
    client_revoke = client_verbs.add_parser(
        "revoke", help="the client's secret and access tokens stop working"
    )
    client_revoke.add_argument("name")
    client_revoke.set_defaults(run=cmd_api_client_revoke)
    client_verbs.add_parser(
        "list", help="every client: scopes, created, rotated, revoked (never secrets)"
    ).set_defaults(run=cmd_api_client_list)


def _add_delivery_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The verbs of the outbox to connected systems."""
    deliver = commands.add_parser(
        "deliver",
        help="send requests to connected systems (when PORTAL_DELIVERY_IN_PROCESS is false)",
    )
    deliver.add_argument("--once", action="store_true", help="send what is due, then stop")
    deliver.set_defaults(run=cmd_deliver)
    deletions = commands.add_parser(
        "deletions", help="privacy officer: where deletion requests to connected systems stand"
    )
    deletions.add_argument(
        "--unconfirmed", action="store_true", help="list those unconfirmed after 24 hours"
    )
    deletions.add_argument(
        "--retry", action="store_true", help="send again those given up on after three days"
    )
    deletions.set_defaults(run=cmd_deletions)
    secret = commands.add_parser(
        "system-secret", help="print a new signing secret for a connected system"
    )
    secret.add_argument("system", help="the system's key in the catalog")
    secret.set_defaults(run=cmd_system_secret)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="portal", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the web portal")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.set_defaults(run=cmd_serve)
    commands.add_parser("migrate", help="apply database migrations").set_defaults(run=cmd_migrate)
    publish = commands.add_parser("publish", help="validate and publish the service catalog")
    publish.add_argument("catalog", help="path to the catalog TOML file")
    publish.set_defaults(run=cmd_publish)
    create = commands.add_parser(
        "create-patron", help="create a card (number on stdin); prints a one-time PIN setup code"
    )
    create.add_argument("--born", type=date.fromisoformat, help="date of birth, YYYY-MM-DD")
    create.add_argument(
        "--jurisdiction", choices=sorted(PRESETS), help="when it differs from the library's"
    )
    create.set_defaults(run=cmd_create_patron)
    link = commands.add_parser(
        "link-guardian",
        help="desk: link a guardian to a child, checked in person (two card numbers on stdin)",
    )
    link.add_argument("--label", required=True, help="a name the guardian will recognise")
    link.set_defaults(run=cmd_link_guardian)
    unlink = commands.add_parser(
        "unlink-guardian",
        help="desk: end a guardian's link to a child (two card numbers on stdin)",
    )
    unlink.add_argument("--reason", required=True, help="why, as the patron told staff")
    unlink.set_defaults(run=cmd_unlink_guardian)
    commands.add_parser(
        "unlock-signin", help="desk: clear a card's failed sign-ins (card number on stdin)"
    ).set_defaults(run=cmd_unlock_signin)
    commands.add_parser(
        "coming-of-age", help="scheduled daily: hand over accounts of patrons who came of age"
    ).set_defaults(run=cmd_coming_of_age)
    imports = commands.add_parser(
        "import-patrons",
        help="create patrons from a CSV of cards (every service off); see its --help",
        description=IMPORT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    imports.add_argument("file", metavar="FILE.csv", help="the cards to import")
    imports.add_argument(
        "--codes-file",
        metavar="PATH",
        help="write each new patron's one-time PIN setup code here (a new file, mode 600)",
    )
    imports.add_argument(
        "--codes-valid-days",
        type=int,
        default=30,
        metavar="DAYS",
        help="how long those codes work (default 30: long enough for a postal mailing)",
    )
    imports.set_defaults(run=cmd_import_patrons)
    commands.add_parser(
        "reset-pin", help="issue a new one-time PIN setup code (card number on stdin)"
    ).set_defaults(run=cmd_reset_pin)
    commands.add_parser(
        "demo-patron", help="development mode: create the demo patron"
    ).set_defaults(run=cmd_demo_patron)
    staff = commands.add_parser("staff", help="local staff accounts (without an identity provider)")
    staff_verbs = staff.add_subparsers(dest="staff_command", required=True)
    staff_add = staff_verbs.add_parser(
        "add", help="add a staff member; prints a one-time code to choose their password"
    )
    staff_add.add_argument("username")
    staff_add.add_argument("--name", help="shown in the staff audit trail")
    staff_add.add_argument(
        "--role", action="append", required=True, choices=[role.value for role in Role]
    )
    staff_add.set_defaults(run=cmd_staff_add)
    staff_reset = staff_verbs.add_parser(
        "reset-password", help="a new one-time setup code; the staff member's sessions end"
    )
    staff_reset.add_argument("username")
    staff_reset.set_defaults(run=cmd_staff_reset)
    commands.add_parser(
        "demo-desk", help="development mode: create the demo desk account"
    ).set_defaults(run=cmd_demo_desk)
    _add_api_client_verbs(commands)
    commands.add_parser(
        "expire-consents", help="scheduled: end consents unanswered after a material change"
    ).set_defaults(run=cmd_expire_consents)
    commands.add_parser(
        "apply-retention", help="scheduled: delete retained data older than its retention period"
    ).set_defaults(run=cmd_apply_retention)
    commands.add_parser(
        "compact-erased",
        help="scheduled daily, at a quiet hour: rewrite retained-data tables after erasures",
    ).set_defaults(run=cmd_compact_erased)
    commands.add_parser(
        "purge-sessions",
        help="scheduled: delete expired sessions, setup and link codes, sign-in attempts",
    ).set_defaults(run=cmd_purge_sessions)
    _add_delivery_commands(commands)
    _add_receipt_commands(commands)
    return parser


def _add_receipt_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The verbs of signed consent receipts."""
    receipt_key = commands.add_parser("receipt-key", help="the keys that sign consent receipts")
    receipt_verbs = receipt_key.add_subparsers(dest="receipt_command", required=True)
    receipt_verbs.add_parser(
        "rotate", help="a new signing key (creates the file); retired keys still verify"
    ).set_defaults(run=cmd_receipt_key_rotate)
    verify = commands.add_parser(
        "verify-receipt", help="check a consent receipt file: valid or not, and what it says"
    )
    verify.add_argument("file")
    verify.set_defaults(run=cmd_verify_receipt)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_environment()
    except ValueError as error:
        print(f"Configuration error: {error}", file=sys.stderr)
        return 2
    result: int = args.run(settings, args)
    return result


if __name__ == "__main__":
    sys.exit(main())
