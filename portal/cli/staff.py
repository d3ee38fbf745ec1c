"""The verbs on local staff accounts (for libraries without an identity provider)."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

from portal.cli.database import operator, with_db
from portal.clock import utcnow
from portal.settings import Settings
from portal.staff import accounts
from portal.staff import services as staff_services
from portal.staff.policy import Role, StaffError

DEMO_DESK_USERNAME = "demo-desk"


def _print_staff_setup(username: str, code: str, expires_at: datetime) -> None:
    print(f"Staff username: {username}")
    print(f"One-time password setup code: {code}")
    print(f"Valid until {expires_at:%Y-%m-%d %H:%M} UTC. Give it to the staff member only;")
    print("they choose their own password at /staff/setup, then sign in at /staff/signin.")


def cmd_staff_add(settings: Settings, args: argparse.Namespace) -> int:
    roles = frozenset(Role(role) for role in args.role)

    async def work() -> int:
        try:
            new = await accounts.add_staff(
                settings.secret_key,
                await operator(settings),
                args.username,
                args.name or args.username,
                roles,
                now=utcnow(),
                setup_code_hours=settings.setup_code_hours,
            )
        except StaffError as error:
            print(f"Not created: {error.code}", file=sys.stderr)
            return 2
        _print_staff_setup(args.username, new.setup_code, new.expires_at)
        return 0

    return with_db(settings, work)


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

    return with_db(settings, work)


def cmd_demo_desk(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.dev_mode:
        print("The demo desk account exists only in development mode.", file=sys.stderr)
        return 2

    async def work() -> int:
        new = await accounts.demo_desk(
            settings.secret_key,
            DEMO_DESK_USERNAME,
            now=utcnow(),
            setup_code_hours=settings.setup_code_hours,
        )
        if new is None:
            print(f"Demo desk username: {DEMO_DESK_USERNAME} (sign in at /staff/signin)")
            return 0
        _print_staff_setup(DEMO_DESK_USERNAME, new.setup_code, new.expires_at)
        return 0

    return with_db(settings, work)


def add_verbs(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
