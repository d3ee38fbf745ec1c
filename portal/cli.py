"""The `portal` command for operators: serve, migrate, publish the catalog, onboard patrons,
issue API clients, and the scheduled jobs. Card numbers are read from a prompt or stdin,
never from arguments, so they stay out of shell history and process lists."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging.config
import signal
import sys
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from pathlib import Path

import uvicorn
from tortoise import Tortoise

from portal.api.services import issue_client
from portal.app import create_app
from portal.catalog.jurisdiction import PRESETS
from portal.catalog.policy import CatalogError, parse_catalog
from portal.clock import local_date, utcnow
from portal.consent.publishing import publish_catalog
from portal.db import apply_migrations, tortoise_config
from portal.decisions.services import expire_unanswered
from portal.desk.services import purge_handovers
from portal.errors import DomainError
from portal.minors.services import (
    coming_of_age,
    end_link_at_desk,
    link_at_desk,
    purge_expired_link_codes,
)
from portal.outbox import services as outbox
from portal.outbox.keys import SecretsError, require_secrets
from portal.outbox.policy import UNCONFIRMED_AFTER, new_secret
from portal.outbox.worker import DeliveryWorker, check_published_secrets
from portal.patrons import throttle
from portal.patrons.services import (
    PatronError,
    create_patron,
    has_pin,
    issue_setup_code,
    purge_expired_sessions,
)
from portal.settings import Settings
from portal.staff import audit
from portal.staff import services as staff_services
from portal.staff.policy import AuditAction, Role, StaffError
from portal.stores.registry import KEYS as STORE_KEYS
from portal.stores.registry import apply_retention
from portal.stores.registry import compact as compact_stores
from portal.web.access_log import LOGGING_CONFIG

DEMO_CARD = "2000 0000 0001"
DEMO_DESK_USERNAME = "demo-desk"


def _read_card(prompt: str = "Card number: ") -> str:
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.readline().strip()


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
            report = await publish_catalog(catalog, text, now=utcnow())
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
                "changed notices."
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
        print("Patron created. Every optional service is off.")
        _print_setup(new.setup_code, new.expires_at)
        return 0

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
        await throttle.unlock_card(settings.secret_key, card)  # staff checked who they are
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
        staff = await staff_services.identity_of(new.staff_id)
        await audit.append(staff, AuditAction.STAFF_ADDED, now=utcnow(), detail={"via": "cli"})
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


def cmd_api_client(settings: Settings, args: argparse.Namespace) -> int:

    async def work() -> int:
        try:
            token = await issue_client(settings.secret_key, args.name, now=utcnow())
        except DomainError as error:
            print(f"Not created: {error.code}", file=sys.stderr)
            return 2
        print(f"Bearer token for {args.name} (shown once, store it in that system):")
        print(token)
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_expire_consents(settings: Settings, args: argparse.Namespace) -> int:

    async def work() -> int:
        count = await expire_unanswered(
            now=utcnow(),
            material_grace_days=settings.reconsent_grace_days,
            majority_grace_days=settings.majority_grace_days,
        )
        print(f"{count} unanswered consent(s) ended and their retained data erased.")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_apply_retention(settings: Settings, args: argparse.Namespace) -> int:
    async def work() -> int:
        now = utcnow()
        rows = await apply_retention(now=now, today=local_date(now, settings.timezone))
        print(f"{rows} retained row(s) past their service's retention period deleted.")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_compact_erased(settings: Settings, args: argparse.Namespace) -> int:
    async def work() -> int:
        await compact_stores()
        print("Tables of retained data rewritten: erased rows leave no bytes behind.")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_purge_sessions(settings: Settings, args: argparse.Namespace) -> int:

    async def work() -> int:
        now = utcnow()
        count = await purge_expired_sessions(now) + await purge_expired_link_codes(now)
        count += await staff_services.purge_expired(now) + await purge_handovers(now)
        count += await throttle.purge_expired(
            now=now, window_seconds=settings.signin_window_seconds
        )
        count += await outbox.purge_confirmed(now=now)
        print(
            f"{count} expired session(s), setup code(s), link code(s), hand-over(s), "
            "sign-in attempt(s) and confirmed request(s) to connected systems deleted."
        )
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_link_guardian(settings: Settings, args: argparse.Namespace) -> int:
    guardian_card = _read_card("Guardian's card number: ")
    child_card = _read_card("Child's card number: ")

    async def work() -> int:
        try:
            await link_at_desk(
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
        print("Linked. The guardian can now review the child's notices under My children.")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_unlink_guardian(settings: Settings, args: argparse.Namespace) -> int:
    guardian_card = _read_card("Guardian's card number: ")
    child_card = _read_card("Child's card number: ")

    async def work() -> int:
        try:
            await end_link_at_desk(
                settings.secret_key, guardian_card, child_card, args.reason, now=utcnow()
            )
        except DomainError as error:
            print(f"Not unlinked: {error.code}", file=sys.stderr)
            return 2
        print("Link ended. The guardian and the child are told on their next visit.")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_unlock_signin(settings: Settings, args: argparse.Namespace) -> int:
    card = _read_card()

    async def work() -> int:
        cleared = await throttle.unlock_card(settings.secret_key, card)
        print(f"Sign-in unlocked for this card ({cleared} counted attempt(s) cleared).")
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_coming_of_age(settings: Settings, args: argparse.Namespace) -> int:
    async def work() -> int:
        report = await coming_of_age(now=utcnow(), timezone=settings.timezone)
        print(
            f"{report.patrons} patron(s) came of age: {report.links_ended} guardian link(s) "
            f"ended, {report.consents_suspended} guardian consent(s) paused for confirmation."
        )
        return 0

    return asyncio.run(_with_db(settings, work))


def cmd_deliver(settings: Settings, args: argparse.Namespace) -> int:
    async def work() -> int:
        try:
            await check_published_secrets(settings)
        except SecretsError as error:
            print(f"Not delivering: {error}", file=sys.stderr)
            return 2
        worker = DeliveryWorker(settings)
        try:
            if args.once:
                sent = await worker.deliver_all_due()
                print(f"{sent} request(s) to connected systems sent.")
                return 0
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for stopping in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(stopping, stop.set)
            print("Delivering requests to connected systems (stop with Ctrl-C or SIGTERM).")
            await worker.run(stop)
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
    client = commands.add_parser("api-client", help="issue a token for a library system")
    client.add_argument("name")
    client.set_defaults(run=cmd_api_client)
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
    return parser


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
