"""Where a slow consent check spends its time, measured inside the worker (`make bench`, the
PostgreSQL tail): the portal's app with probes around each suspect, read back over HTTP.

- the wait for a pooled database connection (asyncpg's Pool._acquire);
- garbage collection pauses (gc.callbacks, per generation);
- the event loop blocked: a task asking to wake every millisecond, and how late it wakes;
- the few-second caches read again under load (the published catalog, clients' standings);
- statement preparation: queries the driver had not prepared on that connection.

GET /bench-probe answers what was seen since the last DELETE /bench-probe. Benchmark only."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx2 as httpx
from asyncpg.connection import Connection
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from portal import app as portal_app
from portal.api import services as api_services
from portal.app import from_environment
from portal.catalog import services as catalog_services
from tests.benchmarks.consent_check import _small_library, api_token, serve, wrk
from tests.factories import SECRET
from tests.support import LOOPBACK_URL

_seen: dict[str, list[float]] = {}


def _note(kind: str, milliseconds: float) -> None:
    _seen.setdefault(kind, []).append(milliseconds)


def _timed(kind: str, function: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await function(*args, **kwargs)
        finally:
            _note(kind, (time.perf_counter() - started) * 1000)

    return timed


_gc_started = [0.0]


def _gc(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _gc_started[0] = time.perf_counter()
    else:
        _note(
            f"gc pause, generation {info['generation']}",
            (time.perf_counter() - _gc_started[0]) * 1000,
        )


async def _loop_lag() -> None:
    while True:
        asked = time.perf_counter()
        await asyncio.sleep(0.001)
        _note("event loop late (1 ms sleep)", (time.perf_counter() - asked) * 1000 - 1)


_prepare = Connection._get_statement


async def _get_statement(self: Connection, query: str, *args: Any, **kwargs: Any) -> Any:
    key = (query, self._protocol.get_record_class(), False)
    cached = self._stmt_cache.get(key) is not None
    started = time.perf_counter()
    statement = await _prepare(self, query, *args, **kwargs)
    if not cached:
        _note("statement prepared", (time.perf_counter() - started) * 1000)
    return statement


async def _published_catalog() -> Any:
    """Timed only when it read the database: the snapshot's check time moved."""
    before = catalog_services._snapshot[0][0] if catalog_services._snapshot else None
    started = time.perf_counter()
    snapshot = await _read_catalog()
    if not catalog_services._snapshot or catalog_services._snapshot[0][0] != before:
        _note("catalog freshness check", (time.perf_counter() - started) * 1000)
    return snapshot


_read_catalog = catalog_services.published_catalog


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "p50_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))], 3),
        "max_ms": round(ordered[-1], 3),
        "total_ms": round(sum(ordered), 1),
    }


async def probe(request: Request) -> Response:
    if request.method == "DELETE":
        _seen.clear()
        return Response(status_code=204)
    return JSONResponse({kind: _summary(values) for kind, values in sorted(_seen.items())})


class _NeverChecking(list[bool]):
    """The catalog as it was: every request that finds the snapshot stale asks itself."""

    def __getitem__(self, index: Any) -> Any:
        return False

    def __setitem__(self, index: Any, value: Any) -> None:
        pass


def probed_portal() -> Starlette:
    asyncpg.pool.Pool._acquire = _timed("pool wait", asyncpg.pool.Pool._acquire)  # type: ignore[method-assign]
    Connection._get_statement = _get_statement  # type: ignore[method-assign]
    api_services.published_catalog = _published_catalog  # type: ignore[assignment]
    gc.callbacks.append(_gc)
    variant = os.environ.get("BENCH_TAIL_VARIANT", "as served")
    if variant.startswith("pool "):
        os.environ["PORTAL_DATABASE_URL"] += f"?maxsize={variant.split()[1]}"
    if variant == "before":  # Tortoise's default pool, as the portal had it
        os.environ["PORTAL_DATABASE_URL"] += "?maxsize=5"
    if variant == "caches hourly":
        catalog_services._SNAPSHOT_TTL_SECONDS = 3600.0
    # The changes this probe led to, undone one at a time ("pool 5" for the third), or all
    # at once ("before"), to see what each is worth.
    if variant in ("before", "catalog stampede"):
        catalog_services._checking = _NeverChecking()
    if variant in ("before", "gc not frozen"):
        portal_app._frozen.append(True)  # as if frozen already: it never is
    app = from_environment()
    if variant == "caches hourly":
        app.state.client_standings.refresh_seconds = 3600.0
    # ClientStandings took its loader when the app was made: time it there.
    standings = app.state.client_standings
    standings.load = _timed("client standings re-read", standings.load)
    app.router.routes.insert(0, Route("/bench-probe", probe, methods=["GET", "DELETE"]))
    lifespan = app.router.lifespan_context

    def with_lag_probe(app: Starlette) -> Any:
        class Context:
            async def __aenter__(self) -> None:
                self.inner = lifespan(app)
                await self.inner.__aenter__()
                self.task = asyncio.get_running_loop().create_task(_loop_lag())

            async def __aexit__(self, *exc: Any) -> None:
                self.task.cancel()
                await self.inner.__aexit__(*exc)

        return Context()

    app.router.lifespan_context = with_lag_probe
    return app


def bench_tail(database_url: str, catalog: str, locales: tuple[str, ...]) -> None:
    """The single check at 32 connections on PostgreSQL, served with the probes: where the
    slowest checks spent their time."""
    cards = asyncio.run(_small_library(database_url, catalog, locales))
    variants = os.environ.get(
        "BENCH_TAIL_VARIANTS", "before,as served,pool 5,catalog stampede,gc not frozen"
    ).split(",")
    for variant in variants:
        url = database_url
        env = {
            "PORTAL_DATABASE_URL": url,
            "PORTAL_SECRET_KEY": SECRET,
            "PORTAL_PUBLIC_URL": LOOPBACK_URL,
            "PORTAL_DELIVERY_IN_PROCESS": "false",
            "BENCH_TAIL_VARIANT": variant,
        }
        for pinned in (True, False):
            with serve(
                "tests.benchmarks.tail_probe:probed_portal",
                env,
                factory=True,
                run_under=("taskset", "-c", "0") if pinned else (),
            ) as server:
                token = asyncio.run(api_token(database_url, server.url))
                headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
                checks = [
                    ("POST", "/api/v1/consent-check", headers,
                     json.dumps({"card_number": card, "service": "reading_history"}))
                    for card in cards
                ]  # fmt: skip
                run = wrk(
                    server.url,
                    checks,
                    server=server,
                    pinned=pinned,
                    after_warm_up=lambda: httpx.delete(
                        f"{server.url}/bench-probe", headers={"origin": server.url}
                    ).raise_for_status(),
                )
                seen = httpx.get(f"{server.url}/bench-probe").json()
            where = "worker pinned to core 0, wrk to core 1" if pinned else "nothing pinned"
            print(
                f"[postgres, {variant}, {where}] check at 32 connections: "
                f"{run.per_second:,.0f}/s, p50 {run.p50_ms:.1f} ms, p99 {run.p99_ms:.1f} ms "
                f"(p99/p50 {run.p99_ms / run.p50_ms:.1f})"
            )
            for kind, figures in seen.items():
                print(f"    {kind}: {figures}")
