"""The verbs on the integration API's OAuth clients: secrets are shown once, never again."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

from portal.api import services as api_clients
from portal.api.policy import Scope
from portal.cli.database import with_db
from portal.clock import utcnow
from portal.errors import DomainError
from portal.settings import Settings


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

    return with_db(settings, work)


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

    return with_db(settings, work)


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

    return with_db(settings, work)


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

    return with_db(settings, work)


SYSTEM_HELP = (
    "the connected system (its key in the catalog) this client speaks for: needed for the "
    "deletions scopes, and it sees and confirms only that system's deletion requests"
)


def add_verbs(
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
