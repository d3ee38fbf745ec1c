"""What sealing retained data costs (portal/retained_keys): one seal and one open of a title,
a loan handed over (the use case behind the API's loan intake: one loan, and a batch of
100), a reading-history page of 100 entries opened, and My privacy's read model (which reads
no retained data: unchanged). The same module runs on a checkout without sealing, so each
figure has its twin: `PYTHONPATH=<checkout> python -m tests.benchmarks.sealing <engine>`."""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import date

from tortoise import Tortoise

from portal.consent import reads
from portal.consent.policy import Decision
from portal.db import apply_migrations, tortoise_config
from portal.stores.reading_history import services as reading_history
from tests.factories import decides, make_patron, now, publish, standard_catalog

RUNS = 300
TITLE = "The Left Hand of Darkness, fiftieth anniversary edition"


def _figures(label: str, timings: list[float]) -> str:
    timings.sort()
    p99 = timings[min(len(timings) - 1, round(0.99 * (len(timings) - 1)))]
    return f"{label}: p50 {statistics.median(timings):.2f} ms, p99 {p99:.2f} ms"


async def _timed(work: Callable[[], Awaitable[object]], runs: int = RUNS) -> list[float]:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        await work()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def _seal_and_open() -> str:
    try:
        from portal.retained_keys.policy import context, new_key, open_sealed, seal  # noqa: PLC0415
    except ImportError:
        return "seal/open: no sealing in this checkout"
    key, where, runs = new_key(), context("history_entry", "title", 1), 20_000
    started = time.perf_counter()
    tokens = [seal(key, TITLE, context=where) for _ in range(runs)]
    sealed = (time.perf_counter() - started) / runs * 1e6
    started = time.perf_counter()
    for token in tokens:
        open_sealed(key, token, context=where)
    opened = (time.perf_counter() - started) / runs * 1e6
    return f"seal {sealed:.1f} µs, open {opened:.1f} µs per title"


async def bench_sealing(database_url: str, label: str) -> None:
    await Tortoise.init(config=tortoise_config(database_url))
    try:
        await publish(standard_catalog())
        patron, reader = await make_patron(), await make_patron()
        for someone in (patron, reader):
            await decides(someone.id, "reading_history", Decision.YES)
        one = [reading_history.Loan(TITLE, "Ursula K. Le Guin", date(2026, 2, 2))]
        loan = await _timed(lambda: reading_history.record_loans(patron.id, one, now=now()))
        batch = await _timed(
            lambda: reading_history.record_loans(patron.id, one * 100, now=now()), 50
        )
        await reading_history.record_loans(reader.id, one * 100, now=now())
        page = await _timed(lambda: reading_history.history(reader.id))
        privacy = await _timed(lambda: reads.privacy_overview(reader.id, "en", now=now()))
        print(
            f"[{label}] {_seal_and_open()} | "
            + " | ".join(
                (
                    _figures("a loan handed over", loan),
                    _figures("100 loans", batch),
                    _figures("history page of 100", page),
                    _figures("My privacy read model", privacy),
                )
            )
        )
    finally:
        await Tortoise.close_connections()


def main(engine: str) -> None:
    if engine == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite://{folder}/sealing.sqlite3"
            asyncio.run(apply_migrations(url))
            asyncio.run(bench_sealing(url, "sqlite"))
        return
    from tests.benchmarks.__main__ import create_database  # noqa: PLC0415
    from tests.pg import throwaway_cluster  # noqa: PLC0415

    with throwaway_cluster() as cluster:
        asyncio.run(bench_sealing(asyncio.run(create_database(cluster, "sealing")), "postgres"))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "sqlite")
