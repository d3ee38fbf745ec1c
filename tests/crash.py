"""Crash test: concurrent clients make decisions, hand over loans and create lists while the
server is killed with SIGKILL at random moments and restarted. Afterwards every decision the
server acknowledged is in force, no consent is half-applied (its state agrees with its
ledger), and no service that is off still has retained rows.

`make crash` runs 1,000 operations and prints figures; tests/system/test_crash.py runs
a shorter version in `make test`.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

import asyncpg
import httpx2 as httpx
from tortoise import Tortoise

from portal.consent.models import ConsentState
from portal.db import apply_migrations, tortoise_config
from portal.ledger.models import ConsentEvent, EventKind
from portal.stores.reading_history.models import HistoryEntry
from portal.stores.saved_lists.models import SavedList
from tests.factories import SECRET, FactoryPatron, make_patron, publish, standard_catalog
from tests.pg import throwaway_cluster
from tests.support import LOOPBACK_URL, free_port

SERVICES = ("reading_history", "saved_lists", "newsletter")
STATE_EVENTS = {
    EventKind.GIVEN,
    EventKind.REFUSED,
    EventKind.WITHDRAWN,
    EventKind.RENEWED,
    EventKind.EXPIRED,
    EventKind.SUSPENDED,
}


@dataclass
class Report:
    operations: int = 0
    acknowledged: int = 0
    lost_in_crash: int = 0
    kills: int = 0
    seconds: float = 0.0
    # Per patron and service: the last decision the server acknowledged, unless a later
    # attempt on that service went unanswered (its fate is unknown, both are correct).
    settled: dict[tuple[int, str], str | None] = field(default_factory=dict)


@dataclass
class ApiCredentials:
    """The library system's OAuth client, and its current access token (fetched again when
    the API refuses it: tokens last five minutes, and a long run outlives them)."""

    client_id: str
    secret: str
    token: str = ""

    async def header(self, client: httpx.AsyncClient, base: str) -> dict[str, str]:
        if not self.token:
            answer = await client.post(
                f"{base}/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(self.client_id, self.secret),
            )
            answer.raise_for_status()
            self.token = answer.json()["access_token"]
        return {"authorization": f"Bearer {self.token}"}


class Server:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "portal.cli", "serve", "--port", str(self.port)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(200):
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise RuntimeError("the portal did not start")

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=15)


def _hidden(page: str, name: str) -> str | None:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    return match.group(1) if match else None


async def _client_loop(  # noqa: PLR0917 - one client's whole context
    server: Server,
    patron: FactoryPatron,
    credentials: ApiCredentials,
    budget: list[int],
    report: Report,
    rng: random.Random,
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        signed_in = False
        while budget[0] > 0:
            budget[0] -= 1
            report.operations += 1
            base = server.url
            try:
                if not signed_in:
                    answer = await client.post(
                        f"{base}/signin",
                        data={"card": patron.card, "pin": patron.pin},
                        headers={"origin": base},
                    )
                    signed_in = answer.status_code == 303
                    continue
                kind = rng.random()
                if kind < 0.6:
                    key = rng.choice(SERVICES)
                    decision = rng.choice(("yes", "no"))
                    page = (await client.get(f"{base}/services/{key}")).text
                    version, revision = _hidden(page, "notice_version"), _hidden(page, "revision")
                    if version is None or revision is None:
                        signed_in = False
                        continue
                    report.settled[(patron.id, key)] = None  # in flight: unknown
                    answer = await client.post(
                        f"{base}/services/{key}/decision",
                        data={
                            "decision": decision,
                            "notice_version": version,
                            "revision": revision,
                        },
                        headers={"origin": base},
                    )
                    if answer.status_code == 200:
                        report.settled[(patron.id, key)] = decision
                        report.acknowledged += 1
                elif kind < 0.85:
                    answer = await client.post(
                        f"{base}/api/v1/loans",
                        json={
                            "card_number": patron.card,
                            "loans": [
                                {"title": f"Book {rng.random()}", "borrowed_on": "2026-05-05"}
                            ],
                        },
                        headers=await credentials.header(client, base),
                    )
                    if answer.status_code == 401:
                        credentials.token = ""
                    report.acknowledged += answer.status_code in (201, 409)
                else:
                    answer = await client.post(
                        f"{base}/saved-lists", data={"name": "To read"}, headers={"origin": base}
                    )
                    report.acknowledged += answer.status_code in (303, 409, 200)
            except httpx.TransportError:
                # Cut off by a kill, or the server is restarting: the attempt's fate is
                # unknown (a decision in flight stays unsettled); try again shortly.
                report.lost_in_crash += 1
                budget[0] += 1
                report.operations -= 1
                await asyncio.sleep(0.2)


async def _killer(server: Server, kills: int, total: int, report: Report) -> None:
    """Kills spread over the run, each at a random moment within its stretch of operations."""
    rng = random.Random(7)  # noqa: S311 - reproducible test schedule, not a secret
    stretch = total / (kills + 1)
    for n in range(kills):
        at = stretch * (n + 0.5 + rng.random())
        while report.operations < at:  # noqa: ASYNC110 - follows a counter clients bump
            await asyncio.sleep(0.01)
        server.kill()
        report.kills += 1
        await asyncio.to_thread(server.start)


async def prepare(database_url: str, patrons: int) -> list[FactoryPatron]:
    await Tortoise.init(config=tortoise_config(database_url))
    try:
        await publish(standard_catalog())
        return [await make_patron() for _ in range(patrons)]
    finally:
        await Tortoise.close_connections()


async def check(database_url: str, report: Report) -> list[str]:
    """Every broken promise, in words; empty when the portal held."""
    problems: list[str] = []
    await Tortoise.init(config=tortoise_config(database_url))
    try:
        states = {
            (state.patron_id, state.service_id): state
            for state in await ConsentState.all().prefetch_related("service")
        }
        for (patron_id, service_id), state in states.items():
            events = [
                event
                for event in await ConsentEvent.filter(patron_id=patron_id, service_id=service_id)
                if event.kind in STATE_EVENTS
            ]
            if state.revision != len(events):
                problems.append(
                    f"patron {patron_id}: state revision {state.revision} != {len(events)} events"
                )
            last = events[-1].kind if events else None
            if state.granted != (last in (EventKind.GIVEN, EventKind.RENEWED)):
                problems.append(
                    f"patron {patron_id}: granted={state.granted} but last event {last}"
                )
            key = state.service.key  # type: ignore[attr-defined]
            settled = report.settled.get((patron_id, key))
            if settled is not None and state.granted != (settled == "yes"):
                problems.append(f"patron {patron_id}: acknowledged {settled} to {key} not in force")
            if not state.granted:
                if (
                    key == "reading_history"
                    and await HistoryEntry.filter(patron_id=patron_id).exists()
                ):
                    problems.append(f"patron {patron_id}: history kept after {key} was turned off")
                if key == "saved_lists" and await SavedList.filter(patron_id=patron_id).exists():
                    problems.append(f"patron {patron_id}: lists kept after {key} was turned off")
        for (patron_id, key), settled in report.settled.items():
            if settled == "yes" and not any(
                s.granted and s.service.key == key  # type: ignore[attr-defined]
                for (p, _), s in states.items()
                if p == patron_id
            ):
                problems.append(f"patron {patron_id}: acknowledged yes to {key} has no state")
    finally:
        await Tortoise.close_connections()
    return problems


async def crash_run(
    database_url: str, *, operations: int, kills: int, clients: int = 8
) -> tuple[Report, list[str]]:
    patrons = await prepare(database_url, clients)
    env = {
        **os.environ,
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_SECRET_KEY": SECRET,
        "PORTAL_PUBLIC_URL": LOOPBACK_URL,
        "PORTAL_LOCALES": "en",
        "PORTAL_SIGNIN_ATTEMPTS": "1000",
    }
    issued = subprocess.run(  # noqa: ASYNC221 - once, before the run starts
        [sys.executable, "-m", "portal.cli", "api-client", "add", "crash-test-ils",
         "--scope", "loans:write"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    shown = dict(re.findall(r"^Client (id|secret): (\S+)$", issued, flags=re.M))
    credentials = ApiCredentials(shown["id"], shown["secret"])
    server = Server(env)
    server.start()
    report = Report()
    started = time.monotonic()
    budget = [operations]
    try:
        rngs = [random.Random(n) for n in range(clients)]  # noqa: S311 - reproducible runs
        killer = asyncio.create_task(_killer(server, kills, operations, report))
        await asyncio.gather(
            *(
                _client_loop(server, p, credentials, budget, report, r)
                for p, r in zip(patrons, rngs, strict=True)
            )
        )
        await killer
    finally:
        server.stop()
    report.seconds = time.monotonic() - started
    return report, await check(database_url, report)


def main() -> None:
    operations = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    kills = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    with throwaway_cluster() as cluster:

        async def run() -> tuple[Report, list[str]]:
            connection = await asyncpg.connect(f"{cluster}/postgres")
            await connection.execute("CREATE DATABASE crash")
            await connection.close()
            await apply_migrations(f"{cluster}/crash")
            return await crash_run(f"{cluster}/crash", operations=operations, kills=kills)

        report, problems = asyncio.run(run())
    print(
        f"[postgres] crash test: {report.operations:,} operations from 8 clients, "
        f"{report.acknowledged:,} acknowledged, {report.lost_in_crash:,} cut off by "
        f"{report.kills} SIGKILLs, {report.seconds:.0f} s; broken promises: {len(problems)}"
    )
    for problem in problems[:20]:
        print("  -", problem)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
