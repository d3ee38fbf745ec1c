"""The verbs on patrons' cards: create and import, PIN resets, guardian links, unlocking
sign-in, the demo patron. Card numbers are read from a prompt or stdin, never from
arguments, so they stay out of shell history and process lists."""

from __future__ import annotations

import argparse
import contextlib
import csv
import getpass
import os
import sys
from datetime import date, datetime

from portal.catalog.jurisdiction import PRESETS
from portal.cli.database import operator, with_db
from portal.clock import local_date, utcnow
from portal.desk import services as desk
from portal.errors import DomainError
from portal.patrons.importing import BadRow, IssuedCode
from portal.patrons.services import PatronError, demo_patron
from portal.settings import Settings

DEMO_CARD = "2000 0000 0001"


def _read_card(prompt: str = "Card number: ") -> str:
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.readline().strip()


def _print_setup(code: str, expires_at: datetime) -> None:
    print(f"One-time PIN setup code: {code}")
    print(f"Valid until {expires_at:%Y-%m-%d %H:%M} UTC. Give it to the patron only;")
    print("they set their own PIN at /setup-pin.")


def _pins_at_library(settings: Settings) -> bool:
    """With the library system as the identity source there are no portal PINs to set up:
    say so instead of printing a code nobody can use."""
    if settings.uses_sip2:
        print(
            "Patrons sign in with the PIN the library system holds (PORTAL_IDENTITY_SOURCE="
            "sip2): no setup codes. The first sign-in makes the account; `portal "
            "import-patrons` (without --codes-file) makes accounts beforehand.",
            file=sys.stderr,
        )
    return settings.uses_sip2


def cmd_create_patron(settings: Settings, args: argparse.Namespace) -> int:
    if _pins_at_library(settings):
        return 2
    card = _read_card()

    async def work() -> int:
        try:
            new = await desk.create_card(
                settings.secret_key,
                await operator(settings),
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

    return with_db(settings, work)


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
        if args.codes_file and _pins_at_library(settings):
            return 2
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
            summary = await desk.import_cards(
                source,
                settings.secret_key,
                await operator(settings),
                now=now,
                today=local_date(now, settings.timezone),
                locales=settings.locales,
                setup_code_hours=args.codes_valid_days * 24,
                on_bad_row=_report_bad_row,
                on_codes=codes.write if codes else None,
            )
            bad = f"{summary.bad_rows} bad row(s)" + (" (see above)" if summary.bad_rows else "")
            print(f"{summary.created} created, {summary.skipped_existing} already known, {bad}.")
            if codes and codes.written:
                print(f"Their one-time PIN setup codes are in {codes.path}.")
            return 1 if summary.bad_rows else 0

        return with_db(settings, work)


def cmd_reset_pin(settings: Settings, args: argparse.Namespace) -> int:
    if _pins_at_library(settings):
        return 2
    card = _read_card()

    async def work() -> int:
        try:
            new = await desk.reset_pin_by_card(
                settings.secret_key,
                await operator(settings),
                card,
                now=utcnow(),
                setup_code_hours=settings.setup_code_hours,
            )
        except PatronError as error:
            print(f"No code issued: {error.code}", file=sys.stderr)
            return 2
        _print_setup(new.setup_code, new.expires_at)
        return 0

    return with_db(settings, work)


def cmd_demo_patron(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.dev_mode:
        print("The demo patron exists only in development mode.", file=sys.stderr)
        return 2
    if _pins_at_library(settings):
        return 2

    async def work() -> int:
        new = await demo_patron(
            settings.secret_key, DEMO_CARD, now=utcnow(), setup_code_hours=settings.setup_code_hours
        )
        print(f"Demo library card: {DEMO_CARD}")
        if new is None:
            print("Sign in with the PIN you chose (run `portal reset-pin` to choose another).")
            return 0
        _print_setup(new.setup_code, new.expires_at)
        return 0

    return with_db(settings, work)


def cmd_link_guardian(settings: Settings, args: argparse.Namespace) -> int:
    guardian_card = _read_card("Guardian's card number: ")
    child_card = _read_card("Child's card number: ")

    async def work() -> int:
        try:
            await desk.link_guardian(
                settings.secret_key,
                await operator(settings),
                guardian_card,
                child_card,
                args.label,
                identity_checked=True,  # the verb's help: checked in person
                now=utcnow(),
                timezone=settings.timezone,
                witnessed=False,
            )
        except DomainError as error:
            print(f"Not linked: {error.code}", file=sys.stderr)
            return 2
        print("Linked. The guardian can now review the child's privacy notices under My children.")
        return 0

    return with_db(settings, work)


def cmd_unlink_guardian(settings: Settings, args: argparse.Namespace) -> int:
    guardian_card = _read_card("Guardian's card number: ")
    child_card = _read_card("Child's card number: ")

    async def work() -> int:
        try:
            await desk.unlink_guardian(
                settings.secret_key,
                await operator(settings),
                guardian_card,
                child_card,
                args.reason,
                identity_checked=True,
                now=utcnow(),
                witnessed=False,
            )
        except DomainError as error:
            print(f"Not unlinked: {error.code}", file=sys.stderr)
            return 2
        print("Link ended. The guardian and the child are told on their next visit.")
        return 0

    return with_db(settings, work)


def cmd_unlock_signin(settings: Settings, args: argparse.Namespace) -> int:
    card = _read_card()

    async def work() -> int:
        cleared = await desk.unlock_card(
            settings.secret_key, await operator(settings), card, now=utcnow()
        )
        print(f"Sign-in unlocked for this card ({cleared} counted attempt(s) cleared).")
        return 0

    return with_db(settings, work)


def add_card_verbs(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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


def add_import_and_pin_verbs(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
