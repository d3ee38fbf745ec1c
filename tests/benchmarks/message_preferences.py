"""The message-preferences API for library systems, measured (`make bench`): a batch of 100
patrons, each with some kinds of message on out of 3 channels x 10 kinds, asked by reference
with contact details (the text-message gateway's request, the fuller of the two), through
one uvicorn worker pinned to the first core, wrk on the second with one connection, then with
4 as the consent check's batch figure: p99 latency (target < 20 ms). Also the database
statements one request costs, for 1 patron and for 100 (they must be the same: one query
per table, never one per patron)."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import date

import httpx2 as httpx
from tortoise import Tortoise

from portal.api.access import Scope
from portal.api.reads import PatronAsked, message_preferences
from portal.catalog.services import published_catalog
from portal.consent.policy import Decision
from portal.db import tortoise_config
from portal.patrons.policy import normalise_card
from portal.patrons.services import patron_reference
from tests.benchmarks.consent_check import api_token, serve, wrk
from tests.factories import (
    SECRET,
    catalog_text,
    decides,
    make_patron,
    messages_table,
    now,
    publish,
    service_table,
)
from tests.support import LOOPBACK_URL

PATH = "/api/v1/message-preferences"
KINDS = tuple(f"kind_{n}" for n in range(10))
CHANNELS = ("email", "sms", "phone")
PATRONS = 100


def catalog(locales: tuple[str, ...]) -> str:
    return catalog_text(
        messages_table(kinds=KINDS, channels=CHANNELS, locales=locales),
        service_table("newsletter", locales=locales),
    )


async def _library(database_url: str, locales: tuple[str, ...]) -> list[str]:
    """100 patrons; each has two to four kinds of message on, on one or two channels, and
    every third titles in messages too. Their references, as connected systems know them."""
    await Tortoise.init(config=tortoise_config(database_url))
    try:
        await publish(catalog(locales), locales)
        references = []
        for n in range(PATRONS):
            patron = await make_patron(born_on=date(1980 + n % 30, 1, 1))
            for turn in range(2 + n % 3):
                kind, channel = KINDS[(n + turn) % 10], CHANNELS[(n + turn) % 2]
                await decides(patron.id, f"messages__{kind}__{channel}", Decision.YES)
            if n % 3 == 0:
                await decides(patron.id, "messages__titles", Decision.YES)
            references.append(patron_reference(SECRET, normalise_card(patron.card) or ""))
        return references
    finally:
        await Tortoise.close_connections()


class _Counter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


async def _statements(database_url: str, references: list[str]) -> dict[int, int]:
    """Statements one read costs, by batch size, with the catalog in memory as in a server."""
    await Tortoise.init(config=tortoise_config(database_url))
    logger = logging.getLogger("tortoise.db_client")
    counter, level = _Counter(), logger.level
    try:
        await published_catalog()
        logger.addHandler(counter)
        logger.setLevel(logging.DEBUG)
        counts = {}
        for size in (1, 10, PATRONS):
            counter.count = 0
            asked = [PatronAsked(reference=reference) for reference in references[:size]]
            await message_preferences(asked, today=now().date(), with_contacts=True)
            counts[size] = counter.count
        return counts
    finally:
        logger.removeHandler(counter)
        logger.setLevel(level)
        await Tortoise.close_connections()


def bench_preferences(database_url: str, label: str, locales: tuple[str, ...]) -> None:
    references = asyncio.run(_library(database_url, locales))
    statements = asyncio.run(_statements(database_url, references))
    env = {
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_SECRET_KEY": SECRET,
        "PORTAL_PUBLIC_URL": LOOPBACK_URL,
        # The answers are measured, not the delivery of the choices' requests.
        "PORTAL_DELIVERY_IN_PROCESS": "false",
    }
    body = json.dumps({"patrons": [{"patron": reference} for reference in references]})
    with serve("portal.app:from_environment", env, factory=True) as portal:
        scopes = frozenset({Scope.PREFERENCES_READ, Scope.CONTACTS_READ})
        token = asyncio.run(api_token(database_url, portal.url, scopes))
        headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
        answer = httpx.post(portal.url + PATH, content=body, headers=headers)
        answer.raise_for_status()
        results = answer.json()["results"]
        pairs = sum(len(result["messages"]) for result in results)
        assert len(results) == PATRONS
        assert all(result["contacts"] for result in results)
        requests = [("POST", PATH, headers, body)]
        # One system asking batch after batch, then four at once (as the consent check's
        # batch figure is taken): the second waits its turn for the one worker too.
        alone = wrk(portal.url, requests, connections=1, server=portal)
        batch = wrk(portal.url, requests, connections=4, server=portal)
    print(
        f"[{label}] message preferences, batch of {PATRONS} patrons ({pairs} pairs on, with "
        f"contact details; 3 channels x {len(KINDS)} kinds published): p99 "
        f"{alone.p99_ms:.1f} ms one connection, {batch.p99_ms:.1f} ms four (target < 20 ms), "
        f"{batch.per_second:,.0f} batches/s, {batch.per_second * PATRONS:,.0f} patrons/s, "
        f"{batch.cpu_us / 1000:.1f} ms server CPU per batch | database statements per request "
        "by batch size: "
        + ", ".join(f"{size}: {count}" for size, count in statements.items())
        + " (constant)"
    )
