"""Benchmarks, printed as figures (not pass/fail tests): `make bench`.

1. "My privacy" pages per second, next to a bare Starlette endpoint rendering the same
   template with the same data (tests/benchmarks/bare_app.py), in the same run (target: at
   least 50 %), on SQLite and on PostgreSQL. Each server is one uvicorn worker pinned to
   the first core; wrk, on the second core, keeps 32 connections busy.
2. Withdrawal-with-erasure latency for a patron with 10,000 sealed history entries on
   PostgreSQL, the rows deleted and their key destroyed (target: p99 under 50 ms).
3. The consent check for library systems (tests/benchmarks/consent_check.py): single
   checks as `portal serve` runs them (access log on) against a bare raw lookup, timed
   (rate, p50, p99) and counted in instructions (valgrind), a batch of 100, worker memory,
   `portal serve --workers 2` against one worker, and at scale on PostgreSQL (1,000,000
   patrons, 20,000,000 ledger events).
4. Sign-ins per second through the library system over SIP2 (tests/benchmarks/sip2_signin.py,
   against the pysip2 stand-in on loopback) next to sign-ins with a portal PIN, on SQLite.
5. `portal import-patrons` of 1,000,000 cards, with and without setup codes, on SQLite and
   on PostgreSQL (targets: under 10 minutes, peak memory of the process under 200 MB).
6. The message-preferences API (tests/benchmarks/message_preferences.py): a batch of 100
   patrons with contact details, p99 (target < 20 ms), and the statements a request costs by
   batch size (constant), on SQLite and on PostgreSQL.

7. What sealing retained data costs (tests/benchmarks/sealing.py): a seal and an open, a
   loan handed over, a history page, My privacy's read model; the module runs unchanged on a
   checkout without sealing for the figures beside them.

8. A state consortium's night (tests/benchmarks/consortium.py, PostgreSQL): the database
   generated at a scale (50,000 patrons by default; BENCH_CONSORTIUM_PATRONS gives the
   curve, `make bench-consortium` runs 1, 3 and 10 million), the disk it needs stated first,
   each nightly job timed while consent checks and My privacy pages are asked for at a steady
   pace, their latency and the longest lock wait printed per job.
9. The outbox at volume (tests/benchmarks/outbox_volume.py): 100,000 deletion requests sent
   to a receiver on loopback by two `portal deliver` workers, the rate, each arrived once,
   and the table's size after delivery and after the purge, round after round.

10. The ledger's checkpoint and verify-ledger (tests/benchmarks/checkpoints.py, PostgreSQL,
    run on its own: `python -m tests.benchmarks.checkpoints`): a first checkpoint over
    1,000,000 events, a nightly one after 10,000 more, verify-ledger over all; events hashed
    per second, time and peak memory of each. `python -m tests.benchmarks.nightly_jobs`
    measures expire-consents and the checkpoint alone, at 100,000 and 1,000,000.

`python -m tests.benchmarks sqlite|postgres PART` (render, import, check, signin, scale,
preferences, sealing or outbox; and `postgres consortium`) runs only that part;
`python -m tests.benchmarks postgres tail` probes where slow checks wait on PostgreSQL
(tests/benchmarks/tail_probe.py; not part of a whole run); BENCH_IMPORT_ROWS=10000,
BENCH_SCALE_PATRONS=10000 and BENCH_OUTBOX_REQUESTS=2000 make them quick.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import asyncpg
import httpx2 as httpx
from tortoise import Tortoise

from portal.consent import reads
from portal.consent.policy import Decision
from portal.db import apply_migrations, tortoise_config
from portal.decisions import services as decisions
from portal.stores.reading_history import services as reading_history
from tests.benchmarks.consent_check import bench_check, bench_scale
from tests.benchmarks.consortium import bench_consortium
from tests.benchmarks.import_patrons import bench_import
from tests.benchmarks.message_preferences import bench_preferences
from tests.benchmarks.outbox_volume import bench_outbox
from tests.benchmarks.sealing import bench_sealing
from tests.benchmarks.sip2_signin import bench_signin
from tests.benchmarks.tail_probe import bench_tail
from tests.factories import SECRET, FactoryPatron, make_patron, now, publish
from tests.pg import throwaway_cluster
from tests.support import LOOPBACK_URL, free_port

CATALOG = (Path(__file__).resolve().parents[2] / "deploy" / "catalog.toml").read_text("utf-8")
LOCALES = ("en", "es", "fr", "zh_Hans", "zh_Hant", "vi", "fil", "ko", "ru", "ar")
WRK_SECONDS = 10
WITHDRAWALS = 50
HISTORY = 10_000


@contextlib.contextmanager
def server(command: list[str], env: dict[str, str]) -> Iterator[str]:
    """A uvicorn process pinned to the first core (wrk gets the second)."""
    port = free_port()
    process = subprocess.Popen(
        ["taskset", "-c", "0", *command, "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(f"{url}/privacy", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def requests_per_second(url: str, cookie: str = "") -> float:
    command = ["taskset", "-c", "1", "wrk", "-t1", "-c32", f"-d{WRK_SECONDS}s", url]
    if cookie:
        command[4:4] = ["-H", f"Cookie: {cookie}"]
    subprocess.run([*command[:-2], "-d2s", url], check=True, capture_output=True)  # warm up
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    if "Non-2xx" in output:
        raise RuntimeError(f"wrk saw errors:\n{output}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if match is None:
        raise RuntimeError(output)
    return float(match.group(1))


async def prepare(database_url: str) -> FactoryPatron:
    await Tortoise.init(config=tortoise_config(database_url))
    try:
        await publish(CATALOG, LOCALES)
        return await make_patron()
    finally:
        await Tortoise.close_connections()


def bench_render(database_url: str, label: str) -> None:
    patron = asyncio.run(prepare(database_url))
    env = {
        "PORTAL_DATABASE_URL": database_url,
        # The server's own data folder (its files private, as `portal serve` requires).
        "PORTAL_DATA_DIR": tempfile.mkdtemp(prefix="portal-bench-"),
        "PORTAL_SECRET_KEY": SECRET,
        "PORTAL_PUBLIC_URL": LOOPBACK_URL,
        "PORTAL_DEV_MODE": "false",
        # The page is measured, not the delivery of the demo systems' requests.
        "PORTAL_DELIVERY_IN_PROCESS": "false",
    }
    with server([sys.executable, "-m", "portal.cli", "serve"], env) as url:
        with httpx.Client(base_url=url, headers={"origin": url}) as client:
            client.post("/signin", data={"card": patron.card, "pin": patron.pin})
            cookie = f"portal_session={client.cookies['portal_session']}"
            page = client.get("/privacy", headers={"cookie": cookie}).text
        portal_rate = requests_per_second(f"{url}/privacy", cookie)
    bare = [sys.executable, "-m", "uvicorn", "tests.benchmarks.bare_app:app", "--no-access-log"]
    with server(bare, {**env, "BENCH_PATRON_ID": str(patron.id)}) as url:
        bare_page = httpx.get(f"{url}/privacy").text
        bare_rate = requests_per_second(f"{url}/privacy")
    if bare_page != page:
        raise RuntimeError("the baseline must render the very same page")
    print(
        f"[{label}] My privacy: {portal_rate:,.0f} req/s | bare Starlette template endpoint: "
        f"{bare_rate:,.0f} req/s | ratio {portal_rate / bare_rate:.0%} (target >= 50%) "
        f"| page {len(page.encode()):,} bytes, one uvicorn worker on one core, wrk -c32"
    )


async def bench_withdrawal(database_url: str) -> None:
    await Tortoise.init(config=tortoise_config(database_url))
    try:
        await publish(CATALOG, LOCALES)
        patron = await make_patron()
        latencies = []
        for _ in range(WITHDRAWALS):
            view = await reads.service_view(patron.id, "reading_history", "en")
            await decisions.decide(
                patron.id,
                "reading_history",
                Decision.YES,
                notice_version_id=view.notice.id,
                expected_revision=view.revision,
                locale="en",
                now=now(),
                timezone="UTC",
            )
            # Sealed as the API hands loans over: the withdrawal destroys their key too.
            await reading_history.record_loans(
                patron.id,
                [
                    reading_history.Loan(f"Title {n}", "Author", date(2026, 1, 1))
                    for n in range(HISTORY)
                ],
                now=now(),
            )
            view = await reads.service_view(patron.id, "reading_history", "en")
            started = time.perf_counter()
            outcome = await decisions.decide(
                patron.id,
                "reading_history",
                Decision.NO,
                notice_version_id=view.notice.id,
                expected_revision=view.revision,
                locale="en",
                now=now(),
                timezone="UTC",
            )
            latencies.append((time.perf_counter() - started) * 1000)
            assert outcome.erased == HISTORY
        latencies.sort()
        p50 = statistics.median(latencies)
        p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
        print(
            f"[postgres] withdrawal erasing {HISTORY:,} history entries: p50 {p50:.1f} ms, "
            f"p99 {p99:.1f} ms over {WITHDRAWALS} runs, rows and key (target p99 < 50 ms)"
        )
    finally:
        await Tortoise.close_connections()


async def create_database(server: str, name: str) -> str:
    connection = await asyncpg.connect(f"{server}/postgres")
    await connection.execute(f"CREATE DATABASE {name}")
    await connection.close()
    await apply_migrations(f"{server}/{name}")
    return f"{server}/{name}"


def main(engine: str, only: str = "") -> None:
    # One engine per process: Tortoise caches dialect-specific queries per process.
    if engine == "sqlite":
        bench_sqlite(only)
    else:
        bench_postgres(only)


def bench_sqlite(only: str) -> None:
    def wanted(part: str) -> bool:
        return only in ("", part)

    with tempfile.TemporaryDirectory() as folder:
        urls = [
            f"sqlite://{folder}/{name}.sqlite3"
            for name in ("bench", "check", "import", "codes", "signin", "preferences")
        ]
        for url in urls:
            asyncio.run(apply_migrations(url))
        if wanted("render"):
            bench_render(urls[0], "sqlite")
        if wanted("check"):
            bench_check(urls[1], "sqlite", CATALOG, LOCALES)
        if wanted("signin"):
            bench_signin(urls[4], "sqlite", CATALOG, LOCALES)
        if wanted("preferences"):
            bench_preferences(urls[5], "sqlite", LOCALES)
        if wanted("sealing"):
            asyncio.run(apply_migrations(f"sqlite://{folder}/sealing.sqlite3"))
            asyncio.run(bench_sealing(f"sqlite://{folder}/sealing.sqlite3", "sqlite"))
        if wanted("outbox"):
            asyncio.run(apply_migrations(f"sqlite://{folder}/outbox.sqlite3"))
            bench_outbox(f"sqlite://{folder}/outbox.sqlite3", "sqlite")
        if wanted("import"):
            bench_import(urls[2:4], "sqlite", Path(folder))


def bench_postgres(only: str) -> None:
    def wanted(part: str) -> bool:
        return only in ("", part)

    with throwaway_cluster() as cluster, tempfile.TemporaryDirectory() as folder:
        if wanted("render"):
            bench_render(asyncio.run(create_database(cluster, "bench_render")), "postgres")
            asyncio.run(bench_withdrawal(asyncio.run(create_database(cluster, "bench_erasure"))))
        if wanted("check"):
            bench_check(
                asyncio.run(create_database(cluster, "bench_check")), "postgres", CATALOG, LOCALES
            )
        if wanted("preferences"):
            bench_preferences(
                asyncio.run(create_database(cluster, "bench_preferences")), "postgres", LOCALES
            )
        if only == "tail":  # not part of a whole run: its figures are in the closing note
            bench_tail(asyncio.run(create_database(cluster, "bench_tail")), CATALOG, LOCALES)
        if wanted("sealing"):
            asyncio.run(bench_sealing(asyncio.run(create_database(cluster, "sealing")), "postgres"))
        if wanted("scale"):
            bench_scale(asyncio.run(create_database(cluster, "scale")), CATALOG, LOCALES)
        if wanted("outbox"):
            bench_outbox(asyncio.run(create_database(cluster, "outbox")), "postgres")
        if wanted("import"):
            imports = [asyncio.run(create_database(cluster, name)) for name in ("import", "codes")]
            bench_import(imports, "postgres", Path(folder))
    if wanted("consortium"):  # a cluster of its own, on the disk BENCH_CONSORTIUM_DIR names
        bench_consortium(CATALOG, LOCALES)


if __name__ == "__main__":
    main(*(sys.argv[1:3] or ["sqlite"]))
