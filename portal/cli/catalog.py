"""Publishing the service catalog from its TOML file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from portal.catalog.parsing import parse_catalog
from portal.catalog.policy import CatalogError
from portal.catalog.services import check_endpoints, endpoint_rules
from portal.cli.database import with_db
from portal.clock import utcnow
from portal.officer import publishing
from portal.outbox.keys import SecretsError, require_secrets
from portal.settings import Settings
from portal.stores.registry import KEYS as STORE_KEYS


def cmd_publish(settings: Settings, args: argparse.Namespace) -> int:
    text = Path(args.catalog).read_text(encoding="utf-8")

    async def work() -> int:
        try:
            catalog = parse_catalog(text, settings.locales, STORE_KEYS)
            # A system nobody can send signed requests to would hold deletions forever.
            require_secrets(settings, [system.key for system in catalog.systems])
            await check_endpoints(catalog.systems, endpoint_rules(settings))
            report = await publishing.publish(catalog, text, now=utcnow())
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

    return with_db(settings, work)


def add_verbs(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    publish = commands.add_parser("publish", help="validate and publish the service catalog")
    publish.add_argument("catalog", help="path to the catalog TOML file")
    publish.set_defaults(run=cmd_publish)
