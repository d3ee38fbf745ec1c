"""The scheduled jobs and the delivery of requests to connected systems (portal.officer.jobs
records each run), and where deletion requests stand."""

from __future__ import annotations

import argparse
import asyncio
import logging.config
import signal
import sys

from portal.cli.database import with_db
from portal.clock import utcnow
from portal.credentials.policy import reference_key
from portal.officer import jobs
from portal.outbox import services as outbox
from portal.outbox.keys import SecretsError
from portal.outbox.policy import UNCONFIRMED_AFTER, new_secret
from portal.rights.keys import ReceiptKeysError
from portal.settings import Settings
from portal.web.access_log import LOGGING_CONFIG


def cmd_expire_consents(settings: Settings, args: argparse.Namespace) -> int:
    async def work() -> int:
        count = await jobs.expire_consents(settings)
        print(f"{count} unanswered consent(s) ended and their retained data erased.")
        return 0

    return with_db(settings, work)


def cmd_apply_retention(settings: Settings, args: argparse.Namespace) -> int:
    async def work() -> int:
        rows = await jobs.apply_retention(settings)
        print(f"{rows} retained row(s) past their service's retention period deleted.")
        return 0

    return with_db(settings, work)


def cmd_compact_erased(settings: Settings, args: argparse.Namespace) -> int:
    async def work() -> int:
        await jobs.compact_erased()
        print("Tables of retained data rewritten: erased rows leave no bytes behind.")
        return 0

    return with_db(settings, work)


def cmd_purge_sessions(settings: Settings, args: argparse.Namespace) -> int:
    async def work() -> int:
        count = await jobs.purge_sessions(settings)
        print(
            f"{count} expired session(s), setup code(s), link code(s), hand-over(s), "
            "sign-in attempt(s), confirmed request(s) to connected systems and old job runs "
            "deleted."
        )
        return 0

    return with_db(settings, work)


def cmd_coming_of_age(settings: Settings, args: argparse.Namespace) -> int:
    async def work() -> int:
        report = await jobs.hand_over_coming_of_age(settings)
        print(
            f"{report.patrons} patron(s) came of age: {report.links_ended} guardian link(s) "
            f"ended, {report.consents_suspended} guardian consent(s) paused for confirmation."
        )
        return 0

    return with_db(settings, work)


def cmd_checkpoint(settings: Settings, args: argparse.Namespace) -> int:
    async def work() -> int:
        try:
            made = await jobs.checkpoint(settings)
        except ReceiptKeysError as error:
            print(f"No checkpoint: {error}", file=sys.stderr)
            return 2
        if made.problems:
            print("No checkpoint: the ledger no longer matches its checkpoints.", file=sys.stderr)
            for problem in made.problems:
                print(f"  {problem.message}", file=sys.stderr)
            return 1
        if made.checkpoint is None:
            print("No new ledger events since the latest checkpoint: nothing to sign.")
        else:
            print(
                f"Checkpoint signed: {made.checkpoint.tree_size} ledger event(s), "
                f"root {made.checkpoint.root_hash}."
            )
        return 0

    return with_db(settings, work)


def cmd_deliver(settings: Settings, args: argparse.Namespace) -> int:
    async def work() -> int:
        stop = None
        if not args.once:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for stopping in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(stopping, stop.set)
        try:
            sent = await jobs.deliver(
                settings,
                stop=stop,
                started=lambda: print(
                    "Delivering requests to connected systems (stop with Ctrl-C or SIGTERM)."
                ),
            )
        except SecretsError as error:
            print(f"Not delivering: {error}", file=sys.stderr)
            return 2
        if args.once:
            print(f"{sent} request(s) to connected systems sent.")
        return 0

    logging.config.dictConfig(LOGGING_CONFIG)
    return with_db(settings, work)


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

    return with_db(settings, work)


def cmd_system_secret(settings: Settings, args: argparse.Namespace) -> int:
    print(f'{args.system} = "{new_secret()}"')
    return 0


def cmd_reference_key(settings: Settings, args: argparse.Namespace) -> int:
    # The one key a connected system needs to know which patron a request names. Derived
    # from PORTAL_SECRET_KEY, it tells nothing of it: no token, session or receipt comes of it.
    print(reference_key(settings.secret_key).hex())
    print(
        "A patron's reference is HMAC-SHA256, under these 32 bytes (hex above), of the card "
        "number in upper case without spaces or dashes, written in lower-case hex. Accounts "
        "made before references had this key keep the reference they were sent under then.",
        file=sys.stderr,
    )
    return 0


def add_coming_of_age(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    commands.add_parser(
        "coming-of-age", help="scheduled daily: hand over accounts of patrons who came of age"
    ).set_defaults(run=cmd_coming_of_age)


def add_scheduled_verbs(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    commands.add_parser(
        "expire-consents", help="scheduled: end consents unanswered after a material change"
    ).set_defaults(run=cmd_expire_consents)
    commands.add_parser(
        "apply-retention", help="scheduled: delete retained data older than its retention period"
    ).set_defaults(run=cmd_apply_retention)
    commands.add_parser(
        "compact-erased",
        help="scheduled daily: rotate the wrapping keys of erased keys, online and in batches",
    ).set_defaults(run=cmd_compact_erased)
    commands.add_parser(
        "purge-sessions",
        help="scheduled: delete expired sessions, setup and link codes, sign-in attempts",
    ).set_defaults(run=cmd_purge_sessions)
    commands.add_parser(
        "checkpoint",
        help="scheduled daily: sign the consent ledger's Merkle tree head, published with its "
        "consistency proof",
    ).set_defaults(run=cmd_checkpoint)


def add_delivery_verbs(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    commands.add_parser(
        "reference-key",
        help="print the key connected systems compute patron references with (it signs nothing)",
    ).set_defaults(run=cmd_reference_key)
