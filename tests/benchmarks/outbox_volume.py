"""The outbox at volume (issue 25, item 5): a consortium's nightly run writes 100,000 deletion
requests at once; two `portal deliver` processes send them to a connected system on loopback
(tests/receiver.py, answering at once), then the purge of confirmed requests runs with the
clock moved past their 30 days. Over several rounds it prints the delivery rate (target at
least 500 requests per second), the time to drain, whether every request arrived exactly once
by its webhook id, and the outbox table's size before, after delivery and after the purge.

BENCH_OUTBOX_REQUESTS (100,000) and BENCH_OUTBOX_ROUNDS (3) make it quick or long.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

from tortoise import Tortoise
from tortoise.connection import connections

from portal import batches
from portal.db import fetch_rows, tortoise_config
from portal.outbox import services as outbox
from portal.outbox.policy import (
    RETRY_FOR,
    DeletionReason,
    DeliveryState,
    MessageKind,
    body_of,
    deletion_payload,
    new_message_id,
)
from portal.outbox.services import to_ms
from tests.delivery import ReceiverProcess, portal_environment, prepare, running
from tests.factories import now

REQUESTS = int(os.environ.get("BENCH_OUTBOX_REQUESTS", "100000"))
ROUNDS = int(os.environ.get("BENCH_OUTBOX_ROUNDS", "3"))
WORKERS = 2
INSERT_BATCH = 1000
# Generous: at the target rate 100,000 requests take 200 s.
DRAIN_SECONDS = max(120.0, REQUESTS / 100)


async def _patrons(count: int) -> list[int]:
    """One patron per request, as an expiry or coming-of-age run at a consortium asks: a
    deletion about a patron is confirmed in their ledger record, which delivery pays for."""
    db = connections.get("default")
    moment = now()
    for start in range(0, count, INSERT_BATCH):
        rows = [
            (f"gen-{n}", moment, 0, False) for n in range(start, min(count, start + INSERT_BATCH))
        ]
        await db.execute_many(
            "INSERT INTO patron (card_lookup, created_at, consent_version, shares_with_guardians) "
            "VALUES (?, ?, ?, ?)"
            if db.capabilities.dialect == "sqlite"
            else "INSERT INTO patron (card_lookup, created_at, consent_version, "
            "shares_with_guardians) VALUES ($1, $2, $3, $4)",
            rows,
        )
    return [int(row["id"]) for row in await fetch_rows("SELECT id FROM patron ORDER BY id")][:count]


async def _write_requests(patrons: list[int], service_id: int) -> None:
    """The requests as request_deletions writes them (body, schedule, state), in bulk: the
    run that writes them is not what is measured here."""
    db = connections.get("default")
    moment = now()
    columns = (
        "message_id, system, kind, patron_id, service_id, body, created_at, give_up_at, "
        "state, attempts, due_ms, lease_until_ms"
    )
    marks = ", ".join("?" if db.capabilities.dialect == "sqlite" else f"${n}" for n in range(1, 13))
    sql = f"INSERT INTO outbox_message ({columns}) VALUES ({marks})"
    for start in range(0, len(patrons), INSERT_BATCH):
        rows = []
        for patron_id in patrons[start : start + INSERT_BATCH]:
            payload = deletion_payload(
                service="reading_history",
                patron=f"gen-{patron_id}",
                reason=DeletionReason.EXPIRED,
                requested_at=moment,
            )
            rows.append(
                (
                    new_message_id(),
                    "ils",
                    MessageKind.DELETION_REQUESTED.value,
                    patron_id,
                    service_id,
                    body_of(payload),
                    moment,
                    moment + RETRY_FOR,
                    DeliveryState.PENDING.value,
                    0,
                    to_ms(moment),
                    0,
                )
            )
        await db.execute_many(sql, rows)


async def _table_size() -> str:
    db = connections.get("default")
    if db.capabilities.dialect == "postgres":
        rows = await fetch_rows(
            "SELECT pg_total_relation_size('outbox_message') AS size, "
            "pg_relation_size('outbox_message') AS heap"
        )
        return f"{rows[0]['size'] / 2**20:.1f} MB (heap {rows[0]['heap'] / 2**20:.1f} MB)"
    pages = (await db.execute_query_dict("PRAGMA page_count"))[0]["page_count"]
    free = (await db.execute_query_dict("PRAGMA freelist_count"))[0]["freelist_count"]
    size = (await db.execute_query_dict("PRAGMA page_size"))[0]["page_size"]
    outbox_pages = await fetch_rows(
        "SELECT count(*) AS pages FROM dbstat WHERE name IN "
        "(SELECT name FROM sqlite_master WHERE tbl_name = 'outbox_message')"
    )
    return (
        f"file {pages:,} pages ({pages * size / 2**20:.1f} MB), {free:,} free; "
        f"outbox table and indexes {outbox_pages[0]['pages']:,} pages"
    )


async def _undelivered() -> int:
    rows = await fetch_rows(
        "SELECT count(*) AS n FROM outbox_message WHERE state <> ?",
        DeliveryState.CONFIRMED.value,
    )
    return int(rows[0]["n"])


async def _message_ids() -> set[str]:
    return {row["message_id"] for row in await fetch_rows("SELECT message_id FROM outbox_message")}


async def _round(
    number: int, label: str, database_url: str, folder: Path, receiver: ReceiverProcess
) -> None:
    patrons = await _patrons(REQUESTS) if number == 1 else await _existing_patrons()
    service_id = (await fetch_rows("SELECT id FROM service WHERE key = 'reading_history'"))[0]["id"]
    await _write_requests(patrons, service_id)
    written = await _message_ids()
    before = await _table_size()
    seen_before = len(receiver.entries("answered"))
    env = portal_environment(
        database_url,
        folder,
        # As in production: the default lease, a worker polling every second.
        PORTAL_DELIVERY_LEASE_SECONDS="60",
        PORTAL_DELIVERY_POLL_SECONDS="1",
    )
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        workers = [stack.enter_context(running(env, "deliver")) for _ in range(WORKERS)]
        deadline = started + DRAIN_SECONDS
        # Another process's work, seen in the database: nothing here to wait on but time.
        while (left := await _undelivered()) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        drained = time.monotonic() - started
        # CPU the workers spent (start-up included): a figure a busy machine does not move.
        worker_cpu = sum(_cpu_seconds(worker.pid) for worker in workers)
    answered = receiver.entries("answered")[seen_before:]
    applied = Counter(entry["id"] for entry in answered if entry["applied"])
    attempts = Counter(entry["id"] for entry in answered)
    once = written == set(applied) and all(count == 1 for count in applied.values())
    sent_again = sum(attempts.values()) - len(attempts)
    unverified = sum(1 for entry in answered if not entry["verified"])
    first = min((entry["started"] for entry in answered), default=0.0)
    last = max((entry["ended"] for entry in answered), default=0.0)
    after_delivery = await _table_size()
    purging = time.monotonic()
    purged = await outbox.purge_confirmed(now=now() + outbox.KEEP_CONFIRMED + timedelta(days=1))
    purge_seconds = time.monotonic() - purging
    if connections.get("default").capabilities.dialect == "postgres":
        # What autovacuum does after a delete this size (no exclusive lock): the dead
        # tuples' space is marked free for the next round's rows.
        await connections.get("default").execute_script("VACUUM outbox_message")
    after_purge = await _table_size()
    rate = len(applied) / (last - first) if last > first else 0.0
    print(
        f"[{label}] outbox round {number}: {REQUESTS:,} deletion requests, {WORKERS} portal "
        f"deliver workers: {rate:,.0f} delivered/s at the receiver (target >= 500/s), drained "
        f"in {drained:.1f} s from the workers' start ({left:,} left undelivered); every request "
        f"arrived exactly once by webhook id: {'yes' if once else 'NO'} ({len(applied):,} "
        f"applied, {sent_again} sent again, {unverified} unverified); {purged:,} purged in "
        f"{purge_seconds:.1f} s ({-(-purged // batches.BATCH)} transaction(s)); "
        f"workers' CPU {worker_cpu * 1000 / REQUESTS:.2f} ms per request, load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    print(f"[{label}]   outbox size before delivery: {before}")
    print(f"[{label}]   after delivery:              {after_delivery}")
    print(f"[{label}]   after the purge:             {after_purge}")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _existing_patrons() -> list[int]:
    rows = await fetch_rows("SELECT id FROM patron ORDER BY id")
    return [int(row["id"]) for row in rows][:REQUESTS]


async def _run(database_url: str, label: str, folder: Path) -> None:
    await Tortoise.init(config=tortoise_config(database_url))
    receiver = ReceiverProcess(folder, "")
    try:
        receiver.secret = await prepare(folder, receiver.endpoint)
        receiver.start()
        for number in range(1, ROUNDS + 1):
            await _round(number, label, database_url, folder, receiver)
    finally:
        receiver.stop()
        await Tortoise.close_connections()


def bench_outbox(database_url: str, label: str) -> None:
    with tempfile.TemporaryDirectory(prefix="portal-outbox-bench-") as folder:
        asyncio.run(_run(database_url, label, Path(folder)))
