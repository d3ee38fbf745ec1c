"""What two nightly jobs cost as the data grows (issue 25), printed as figures, not a timed
test:

- `portal expire-consents`: N consents to reading history (kept by the library system too),
  paused for a material change long ago and never answered, each patron with two sealed
  loans and a key; consents ended per second (default N = 100,000).
- `portal checkpoint`: a ledger of M events signed for the first time and again after a few
  more (a consistency proof); events hashed per second and the process's peak memory
  (default M = 1,000,000).

The same module runs on a checkout before a change, for the figures beside it:

    PYTHONPATH=<checkout> python -m tests.benchmarks.nightly_jobs ENGINE [expire|checkpoint]

BENCH_EXPIRE_CONSENTS and BENCH_CHECKPOINT_EVENTS change the scales. The rows are written by
raw multi-row INSERTs, not the ORM, so that making them does not dwarf the job measured."""

from __future__ import annotations

import asyncio
import os
import resource
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from joserfc.jwk import ECKey, KeySet
from tortoise import Tortoise

from portal.catalog.services import all_services
from portal.clock import utcnow
from portal.db import apply_migrations, fetch_rows, tortoise_config
from portal.ledger.checkpoints import Sign, Verify, make_checkpoint
from portal.rights.keys import ReceiptKeys, new_key
from portal.rights.proofs import checker, signer
from portal.settings import Settings
from tests.delivery import delivery_catalog
from tests.factories import publish

CONSENTS = int(os.environ.get("BENCH_EXPIRE_CONSENTS", "100000"))
EVENTS = int(os.environ.get("BENCH_CHECKPOINT_EVENTS", "1000000"))
CHUNK = 500  # rows per INSERT statement (SQLite allows 32,766 values a statement)


def _chunks(count: int) -> Iterator[range]:
    for start in range(0, count, CHUNK):
        yield range(start, min(count, start + CHUNK))


async def _insert(table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    marks = "(" + ", ".join("?" * len(columns)) + ")"
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES " + ", ".join([marks] * len(rows))
    await fetch_rows(sql, *(value for row in rows for value in row))


async def _patrons(count: int) -> list[int]:
    moment = utcnow()
    for chunk in _chunks(count):
        await _insert(
            "patron",
            ("card_lookup", "born_on", "created_at", "consent_version", "shares_with_guardians"),
            [
                (secrets.token_hex(16), moment.date().replace(year=1990), moment, 0, False)
                for _ in chunk
            ],
        )
    return [row["id"] for row in await fetch_rows("SELECT id FROM patron ORDER BY id")]


async def _paused_consents(count: int) -> None:
    await publish(delivery_catalog("https://ils.library.example/hooks"))
    service = next(item for item in await all_services() if item.key == "reading_history")
    patrons = await _patrons(count)
    long_ago = utcnow() - timedelta(days=400)
    moment = utcnow()
    for start in range(0, len(patrons), CHUNK):
        some = patrons[start : start + CHUNK]
        await _insert(
            "consent_state",
            ("patron_id", "service_id", "granted", "granted_by", "last_kind", "terms_revision",
             "revision", "suspended_at", "suspension_reason", "updated_at"),
            [(patron, service.id, True, "patron", "given", service.terms_revision, 1, long_ago,
              "material_change", long_ago) for patron in some],
        )  # fmt: skip
        await _insert(
            "retained_data_key",
            ("patron_id", "store", "key", "created_at"),
            [(patron, "reading_history", secrets.token_bytes(32), moment) for patron in some],
        )
        await _insert(
            "history_entry",
            ("patron_id", "title", "author", "borrowed_on", "recorded_at"),
            [(patron, "sealed-title-" + "x" * 60, "sealed-author-" + "x" * 40, moment.date(),
              moment) for patron in some for _ in range(2)],
        )  # fmt: skip


async def bench_expire(database_url: str, label: str) -> None:
    from portal.officer import jobs  # noqa: PLC0415 - after Tortoise's models are known

    await Tortoise.init(config=tortoise_config(database_url))
    try:
        await _paused_consents(CONSENTS)
        settings = Settings(database_url=database_url)
        started = time.perf_counter()
        ended = await jobs.expire_consents(settings)
        seconds = time.perf_counter() - started
        left = await fetch_rows("SELECT count(*) AS n FROM history_entry")
        print(
            f"[{label}] expire-consents: {ended:,} of {CONSENTS:,} consents ended in "
            f"{seconds:.1f} s: {ended / seconds:,.0f} a second ({left[0]['n']} loans left)"
        )
    finally:
        await Tortoise.close_connections()


async def _events(count: int) -> None:
    patrons = await _patrons(max(1, count // 100))
    moment = utcnow()
    for chunk in _chunks(count):
        await _insert(
            "consent_event",
            ("patron_id", "kind", "purposes", "occurred_at", "method", "actor", "channel",
             "detail"),
            [(patrons[n % len(patrons)], "given", '["reading_history"]', moment, "online",
              "patron", "web", "{}") for n in chunk],
        )  # fmt: skip


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _signing() -> tuple[Sign, Verify]:
    jwk = new_key()
    public = KeySet([ECKey.import_key({k: v for k, v in jwk.items() if k != "d"})])
    keys = ReceiptKeys(ECKey.import_key(jwk), public)
    return signer(keys), checker(public)


async def bench_checkpoint(database_url: str, label: str) -> None:
    await Tortoise.init(config=tortoise_config(database_url))
    try:
        await _events(EVENTS)
        sign, check = _signing()
        before = _peak_mb()
        started = time.perf_counter()
        made = await make_checkpoint(sign, check, now=utcnow())
        first = time.perf_counter() - started
        first_peak = _peak_mb()
        await _events(1000)
        started = time.perf_counter()
        again = await make_checkpoint(sign, check, now=utcnow())
        second = time.perf_counter() - started
        assert made.checkpoint is not None
        assert again.checkpoint is not None
        print(
            f"[{label}] checkpoint of {made.checkpoint.tree_size:,} events: {first:.1f} s, "
            f"{made.checkpoint.tree_size / first:,.0f} events hashed a second, peak memory "
            f"{first_peak:.0f} MB ({first_peak - before:+.0f} MB over the {before:.0f} MB "
            f"before); the next, with a consistency proof, of {again.checkpoint.tree_size:,}: "
            f"{second:.1f} s, peak {_peak_mb():.0f} MB"
        )
    finally:
        await Tortoise.close_connections()


def main(engine: str, only: str = "") -> None:
    # Imported here: the suite's PostgreSQL helpers are not needed on SQLite.
    from tests.benchmarks.__main__ import create_database  # noqa: PLC0415
    from tests.pg import throwaway_cluster  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as folder:
        if engine == "sqlite":
            for part in ("expire", "checkpoint"):
                if only in ("", part):
                    url = f"sqlite://{folder}/{part}.sqlite3"
                    asyncio.run(apply_migrations(url))
                    _run(part, url, engine)
            return
        with throwaway_cluster() as cluster:
            for part in ("expire", "checkpoint"):
                if only in ("", part):
                    _run(part, asyncio.run(create_database(cluster, part)), engine)


def _run(part: str, url: str, label: str) -> None:
    if part == "expire":
        asyncio.run(bench_expire(url, label))
    else:
        asyncio.run(bench_checkpoint(url, label))


if __name__ == "__main__":
    main(*(sys.argv[1:3] or ["sqlite"]))
