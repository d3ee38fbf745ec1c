"""Delivery to connected systems with real processes: receivers (tests/receiver.py) and the
portal (`portal serve` with its worker, or `portal deliver`) started on loopback, killed
with SIGKILL, restarted. Shared by tests/system/test_delivery.py and the long run:

    python -m tests.delivery [PATRONS] [KILLS]     (`make crash` runs it on PostgreSQL)

which withdraws many consents, kills `portal deliver` in the middle of batches again and
again, and fails unless every request is delivered, each applied once by the receiver.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import asyncpg
import httpx2 as httpx
from tortoise import Tortoise

from portal.consent.policy import Decision
from portal.db import apply_migrations, tortoise_config
from portal.ledger.models import ConsentEvent, EventKind
from portal.outbox.models import OutboxMessage
from portal.outbox.policy import DeliveryState
from portal.settings import Settings
from tests.factories import (
    SECRET,
    catalog_text,
    decides,
    make_patron,
    publish,
    service_table,
    system_secrets,
    system_table,
)
from tests.pg import throwaway_cluster
from tests.support import LOOPBACK_URL, free_port

ROOT = Path(__file__).resolve().parents[1]


def portal_environment(database_url: str, folder: Path, **settings: str) -> dict[str, str]:
    """For portal processes delivering fast: short polls, retries and leases."""
    return {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_SECRET_KEY": SECRET,
        "PORTAL_PUBLIC_URL": LOOPBACK_URL,
        "PORTAL_LOCALES": "en",
        "PORTAL_DATA_DIR": str(folder),
        "PORTAL_SYSTEM_SECRETS_FILE": str(folder / "system-secrets.toml"),
        "PORTAL_DELIVERY_POLL_SECONDS": "0.1",
        "PORTAL_DELIVERY_RETRY_SECONDS": "0.2",
        "PORTAL_DELIVERY_LEASE_SECONDS": "2",
        # The receivers listen on this machine, over plain HTTP, as an operator may allow.
        "PORTAL_SYSTEM_ALLOWED_ADDRESSES": "127.0.0.1",
        **settings,
    }


@dataclass
class ReceiverProcess:
    """A connected system on loopback; not running until `start`."""

    folder: Path
    secret: str
    options: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    @property
    def journal(self) -> Path:
        return self.folder / f"receiver-{self.port}.jsonl"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.receiver", "--port", str(self.port),
             "--secret", self.secret, "--journal", str(self.journal), *self.options],
            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
        )  # fmt: skip
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                httpx.get(f"http://127.0.0.1:{self.port}/", timeout=1)
                return  # it answers (501 to a GET): listening
            time.sleep(0.05)
        raise RuntimeError("the receiver did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def entries(self, event: str) -> list[dict[str, Any]]:
        if not self.journal.exists():
            return []
        lines = self.journal.read_text(encoding="utf-8").splitlines()
        return [entry for line in lines if (entry := json.loads(line))["event"] == event]


@contextlib.contextmanager
def running(env: dict[str, str], *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """`portal ARGS` as a process, ended at the end (with SIGTERM, if still running)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "portal.cli", *args],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=15)


@contextlib.contextmanager
def serving(env: dict[str, str], *, port: int | None = None) -> Iterator[str]:
    """`portal serve` (its delivery worker in the process), once ready; yields its URL."""
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    with running(env, "serve", "--port", str(port)) as server:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and server.poll() is None:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    yield url
                    return
            time.sleep(0.1)
        raise RuntimeError("the portal never became ready")


async def wait_until_settled(count: int, *, seconds: float) -> list[OutboxMessage]:
    """Every request confirmed (`count` of them), or the state after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        messages = await OutboxMessage.all().order_by("id")
        done = [m for m in messages if m.state is DeliveryState.CONFIRMED]
        if len(done) == count or time.monotonic() > deadline:
            return messages
        await asyncio.sleep(0.1)


def delivery_catalog(endpoint: str) -> str:
    return catalog_text(
        system_table("ils", endpoint, name="Library system"),
        service_table("reading_history", store="reading_history", systems=("ils",)),
    )


async def prepare(folder: Path, endpoint: str) -> str:
    """The catalog with one connected system at `endpoint`; returns its signing secret."""
    secret = system_secrets(folder / "system-secrets.toml", "ils")["ils"]
    await publish(delivery_catalog(endpoint))
    return secret


async def turn_on_and_off(patrons: int) -> list[int]:
    """Each patron turns reading history on, then off: two requests each to the system."""
    made = []
    for _ in range(patrons):
        patron = await make_patron()
        await decides(patron.id, "reading_history", Decision.YES)
        await decides(patron.id, "reading_history", Decision.NO)
        made.append(patron.id)
    return made


def delivery_problems(receiver: ReceiverProcess, messages: list[OutboxMessage]) -> list[str]:
    """What the receiver saw that breaks a promise: a request lost, applied twice, sent
    with different bodies under one id, sent by two workers at once, or unsigned."""
    problems: list[str] = []
    answered = receiver.entries("answered")
    by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in answered:
        by_id[entry["id"]].append(entry)
    for message in messages:
        attempts = by_id.get(message.message_id, [])
        if message.state is not DeliveryState.CONFIRMED:
            problems.append(f"{message.message_id} is {message.state.value}, not confirmed")
        if sum(1 for attempt in attempts if attempt["applied"]) != 1:
            problems.append(f"{message.message_id} applied {len(attempts)} times, not once")
        if {attempt["body"] for attempt in attempts} != {message.body}:
            problems.append(f"{message.message_id} was sent with another body")
        spans = sorted((attempt["started"], attempt["ended"]) for attempt in attempts)
        if any(later[0] < earlier[1] for earlier, later in itertools.pairwise(spans)):
            problems.append(f"{message.message_id} was being sent twice at the same time")
    if not all(entry["verified"] for entry in answered):
        problems.append("a request did not verify with the system's secret")
    return problems


async def confirmations_per_request() -> dict[str, int]:
    events = await ConsentEvent.filter(kind=EventKind.DELETION_CONFIRMED)
    counted: dict[str, int] = defaultdict(int)
    for event in events:
        counted[event.detail["request"]] += 1
    return counted


@dataclass
class KillReport:
    requests: int = 0
    kills: int = 0
    duplicates: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


async def kill_run(database_url: str, folder: Path, *, patrons: int, kills: int) -> KillReport:
    """`portal deliver` killed with SIGKILL `kills` times while requests are in flight at a
    slow receiver (its batch sent, not yet answered), restarted at once; two workers run
    after the last kill. Every request must end confirmed, applied once. Call with Tortoise
    initialised on `database_url`."""
    report = KillReport()
    started = time.monotonic()
    receiver = ReceiverProcess(folder, "", ("--delay", "0.3"))
    receiver.secret = await prepare(folder, receiver.endpoint)
    await turn_on_and_off(patrons)
    report.requests = await OutboxMessage.all().count()
    env = portal_environment(database_url, folder)
    receiver.start()
    try:
        for _ in range(kills):
            with running(env, "deliver") as worker:
                # Killed once it has sent five more: they are in flight (the receiver
                # answers after 0.3 s), their answers never recorded.
                before = len(receiver.entries("received"))
                deadline = time.monotonic() + 20
                while len(receiver.entries("received")) < before + 5:
                    if worker.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("portal deliver stopped sending")
                    await asyncio.sleep(0.01)
                os.kill(worker.pid, signal.SIGKILL)
                worker.wait()
                report.kills += 1
        with running(env, "deliver"), running(env, "deliver"):
            messages = await wait_until_settled(report.requests, seconds=60)
    finally:
        receiver.stop()
    report.problems = delivery_problems(receiver, messages)
    attempts = [entry["id"] for entry in receiver.entries("answered")]
    report.duplicates = len(attempts) - len(set(attempts))
    confirmed = await confirmations_per_request()
    for message in messages:
        if message.kind == "deletion.requested" and confirmed.get(message.message_id) != 1:
            report.problems.append(f"{message.message_id}: not one ledger confirmation")
    report.seconds = time.monotonic() - started
    return report


def main() -> None:
    patrons = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    kills = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    with throwaway_cluster() as cluster:

        async def run() -> KillReport:
            connection = await asyncpg.connect(f"{cluster}/postgres")
            await connection.execute("CREATE DATABASE delivery")
            await connection.close()
            await apply_migrations(f"{cluster}/delivery")
            url = f"{cluster}/delivery"
            await Tortoise.init(config=tortoise_config(url))
            try:
                with tempfile.TemporaryDirectory(prefix="portal-delivery-") as folder:
                    return await kill_run(url, Path(folder), patrons=patrons, kills=kills)
            finally:
                await Tortoise.close_connections()

        report = asyncio.run(run())
    print(
        f"[postgres] delivery crash test: {report.requests:,} requests, {report.kills} "
        f"SIGKILLs of portal deliver mid-batch, {report.duplicates} sent again (same "
        f"webhook-id), {report.seconds:.0f} s; broken promises: {len(report.problems)}"
    )
    for problem in report.problems[:20]:
        print("  -", problem)
    sys.exit(1 if report.problems else 0)


if __name__ == "__main__":
    main()


def fast_delivery(settings: Settings, folder: Path) -> Settings:
    """The delivery worker in process, fast: a poll every 0.1 s, the first retry after 0.2 s;
    the connected system "ils" has its signing secret in `folder`."""
    system_secrets(folder / "system-secrets.toml", "ils")
    return replace(
        settings,
        delivery_in_process=True,
        delivery_poll_seconds=0.1,
        delivery_retry_seconds=0.2,
        delivery_lease_seconds=2,
        system_secrets_file=folder / "system-secrets.toml",
        # The receivers listen on this machine, over plain HTTP, as an operator may allow.
        system_allowed_addresses=("127.0.0.1",),
    )
