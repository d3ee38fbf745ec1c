"""The consent check for library systems, measured (`make bench`):

- single checks per second as `portal serve` runs them (the real command: its middleware,
  its access log on and written to a file) next to a bare Starlette endpoint doing one raw
  indexed lookup of the card on the same database (tests/benchmarks/bare_check_app.py):
  one worker each, pinned to the first core, wrk on the second, 32 connections, rounds
  taken in turn (target: >= 90 %); the checks' p50 and p99 (on PostgreSQL: p99 <= 3 x p50);
- the same comparison counted in instructions by valgrind, which this machine's noise does
  not move;
- a batch of 100 pairs: p99 latency (target < 20 ms);
- the worker's peak memory (target < 120 MB RSS);
- `portal serve --workers 2` against one worker, nothing pinned: how the check scales;
- at scale, on PostgreSQL: 1,000,000 patrons and 20,000,000 ledger events generated here;
  check p99 (target < 10 ms) and My privacy p99 (target < 50 ms).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx2 as httpx
from starlette.applications import Starlette
from tortoise import Tortoise
from tortoise.connection import connections

from portal.api.access import Scope
from portal.api.services import add_client
from portal.app import from_environment
from portal.catalog import services as catalog_services
from portal.consent.policy import Decision
from portal.credentials.policy import KeyPurpose, keyed_hash
from portal.db import tortoise_config
from portal.patrons.policy import normalise_card
from portal.patrons.services import start_session
from portal.web.access_log import LOGGING_CONFIG
from tests.factories import SECRET, decides, make_patron, now, publish
from tests.support import LOOPBACK_URL, free_port

WRK_SECONDS = int(os.environ.get("BENCH_WRK_SECONDS", "10"))
ROUNDS = 5
SERVICES = ("reading_history", "saved_lists", "newsletter")


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]

    def peak_rss_mb(self) -> float:
        """The worker's high-water resident memory, from the kernel."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        match = re.search(r"VmHWM:\s+(\d+) kB", status)
        return int(match.group(1)) / 1024 if match else float("nan")

    def cpu_seconds(self) -> float:
        """CPU time the worker has used (user and system), from the kernel."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# The worker is pinned to the first core; wrk gets the second.
PINNED = ("taskset", "-c", "0")


@contextlib.contextmanager
def serve(
    app: str,
    env: dict[str, str],
    *,
    factory: bool = False,
    log_config: str | None = None,
    run_under: tuple[str, ...] = PINNED,
    starting_seconds: float = 10,
    stderr: int | IO[bytes] = subprocess.DEVNULL,
) -> Iterator[Server]:
    """One uvicorn worker without uvicorn's access log, run under `run_under`."""
    command = [sys.executable, "-m", "uvicorn", app, "--no-access-log"]
    if factory:
        command.append("--factory")
    if log_config:
        command.extend(["--log-config", log_config])
    with _started(command, env, run_under, starting_seconds, stderr) as server:
        yield server


@contextlib.contextmanager
def portal_serve(
    env: dict[str, str], log: IO[bytes], *, workers: int = 1, run_under: tuple[str, ...] = PINNED
) -> Iterator[Server]:
    """`portal serve` itself, as a library runs it: its access log on, written to `log`.
    With one worker, the process is the worker (uvicorn runs in it)."""
    command = [sys.executable, "-m", "portal.cli", "serve", "--workers", str(workers)]
    with _started(command, env, run_under, 30, log) as server:
        yield server


@contextlib.contextmanager
def _started(
    command: list[str],
    env: dict[str, str],
    run_under: tuple[str, ...],
    starting_seconds: float,
    stderr: int | IO[bytes],
) -> Iterator[Server]:
    port = free_port()
    process = subprocess.Popen(
        [*run_under, *command, "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + starting_seconds
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{url}/healthz", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield Server(url, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _lua(requests: list[tuple[str, str, dict[str, str], str]], host: str) -> str:
    """A wrk script cycling through the given (method, path, headers, body) requests. The
    requests are built before wrk knows its target, so each names the host itself: without
    it the portal's host guard answers 400 to every one."""
    items = ",\n".join(
        "wrk.format({}, {}, {{{}}}, {})".format(
            json.dumps(method),
            json.dumps(path),
            ", ".join(
                f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in {"host": host, **headers}.items()
            ),
            json.dumps(body) if body else "nil",
        )
        for method, path, headers, body in requests
    )
    return (
        f"local requests = {{\n{items}\n}}\nlocal i = 0\n"
        "request = function()\n  i = i % #requests + 1\n  return requests[i]\nend\n"
    )


@dataclass(frozen=True)
class WrkRun:
    per_second: float
    p99_ms: float
    p50_ms: float
    # The server's CPU time per request: what it costs, whatever else the machine is doing.
    cpu_us: float = float("nan")


def wrk(
    url: str,
    requests: list[tuple[str, str, dict[str, str], str]],
    *,
    connections: int = 32,
    server: Server | None = None,
    pinned: bool = True,
    after_warm_up: Callable[[], object] | None = None,
) -> WrkRun:
    """`pinned`: wrk on the second core (the server on the first); otherwise anywhere."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_lua(requests, url.removeprefix("http://")))
    base = ["wrk", "-t1", f"-c{connections}", "--latency", "-s", script.name]
    if pinned:
        base[:0] = ["taskset", "-c", "1"]
    try:
        subprocess.run([*base, "-d2s", url], check=True, capture_output=True)  # warm up
        if after_warm_up:
            after_warm_up()
        cpu_before = server.cpu_seconds() if server else 0.0
        output = subprocess.run(
            [*base, f"-d{WRK_SECONDS}s", url], check=True, capture_output=True, text=True
        ).stdout
        cpu = server.cpu_seconds() - cpu_before if server else float("nan")
    finally:
        os.unlink(script.name)
    if "Non-2xx" in output:
        raise RuntimeError(f"wrk saw errors:\n{output}")
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    p99 = _milliseconds("99%", output)
    if rate is None or total is None:
        raise RuntimeError(output)
    return WrkRun(
        float(rate.group(1)),
        p99,
        _milliseconds("50%", output),
        cpu * 1e6 / int(total.group(1)),
    )


def _milliseconds(percentile: str, output: str) -> float:
    """A percentile of wrk's latency distribution (--latency), in milliseconds."""
    found = re.search(rf"{percentile}\s+([\d.]+)(us|ms|s)\b", output)
    if found is None:
        raise RuntimeError(output)
    return float(found.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[found.group(2)]


async def api_token(
    database_url: str, url: str, scopes: frozenset[Scope] = frozenset({Scope.CONSENT_READ})
) -> str:
    """A token with the consent:read scope (or `scopes`), the way a library system gets one:
    a client made by the operator, then the client credentials grant at the token endpoint."""
    await Tortoise.init(config=tortoise_config(database_url))
    try:
        client = await add_client(SECRET, f"bench-{time.monotonic_ns()}", scopes, now=now())
    finally:
        await Tortoise.close_connections()
    answer = httpx.post(
        f"{url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client.client_id, client.secret),
    )
    answer.raise_for_status()
    token: str = answer.json()["access_token"]
    return token


async def _small_library(database_url: str, catalog: str, locales: tuple[str, ...]) -> list[str]:
    await Tortoise.init(config=tortoise_config(database_url))
    try:
        await publish(catalog, locales)
        cards = []
        for n in range(50):
            patron = await make_patron()
            if n % 2:
                await decides(patron.id, "reading_history", Decision.YES)
            cards.append(patron.card)
        return cards
    finally:
        await Tortoise.close_connections()


def bench_check(database_url: str, label: str, catalog: str, locales: tuple[str, ...]) -> None:
    cards = asyncio.run(_small_library(database_url, catalog, locales))
    env = {
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_SECRET_KEY": SECRET,
        "PORTAL_PUBLIC_URL": LOOPBACK_URL,
        # `portal serve` refuses a data folder others can read: one of its own, private.
        "PORTAL_DATA_DIR": tempfile.mkdtemp(prefix="portal-bench-"),
        # The checks are measured, not the delivery of the demo systems' requests.
        "PORTAL_DELIVERY_IN_PROCESS": "false",
    }
    singles = [
        json.dumps({"card_number": card, "service": SERVICES[n % 3]})
        for n, card in enumerate(cards)
    ]
    path = "/api/v1/consent-check"
    bare_checks = [("POST", path, {"content-type": "application/json"}, b) for b in singles]

    def checks(server: Server) -> list[tuple[str, str, dict[str, str], str]]:
        token = asyncio.run(api_token(database_url, server.url))
        headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
        return [("POST", path, headers, body) for body in singles]

    with tempfile.TemporaryFile() as log, contextlib.ExitStack() as servers:
        portal = servers.enter_context(portal_serve(env, log))
        bare = servers.enter_context(serve("tests.benchmarks.bare_check_app:app", env))
        portal_checks = checks(portal)
        # Rounds taken in turn, each starting with the next server, so that whatever else the
        # machine does, and whatever going first or last does, weighs on both alike.
        contestants = [(portal, portal_checks), (bare, bare_checks)]
        rounds = []
        for number in range(ROUNDS):
            runs: dict[str, WrkRun] = {}
            for turn in range(len(contestants)):
                server, requests = contestants[(number + turn) % len(contestants)]
                runs[server.url] = wrk(server.url, requests, server=server)
            rounds.append(Round(runs[portal.url], runs[bare.url]))
        batch_body = json.dumps(
            {
                "checks": [
                    {"card_number": cards[n % 50], "service": SERVICES[n % 3]} for n in range(100)
                ]
            }
        )
        headers = portal_checks[0][2]
        assert httpx.post(portal.url + path, content=batch_body, headers=headers).status_code == 200
        batch = wrk(portal.url, [("POST", path, headers, batch_body)], connections=4)
        rss = portal.peak_rss_mb()
        servers.close()  # the portal stops: its last lines are written
        log.seek(0)
        logged = log.read().decode()
    middle = sorted(rounds, key=lambda taken: taken.ratio)[len(rounds) // 2]
    single, baseline = middle.single, middle.baseline
    p50 = statistics.median(taken.single.p50_ms for taken in rounds)
    p99 = statistics.median(taken.single.p99_ms for taken in rounds)
    dropped = re.findall(r"(\d+) access log lines were dropped", logged)
    print(
        f"[{label}] consent check as `portal serve` runs it (access log on): "
        f"{single.per_second:,.0f} checks/s | bare Starlette with one raw indexed lookup: "
        f"{baseline.per_second:,.0f} req/s | ratio {middle.ratio:.0%} (median of {ROUNDS} "
        f"rounds taken in turn: {', '.join(f'{taken.ratio:.0%}' for taken in rounds)}; "
        "target >= 90%); one worker on the first core, wrk -c32 on the second\n"
        f"[{label}] check latency at 32 connections: p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
        f"p99/p50 {p99 / p50:.1f} (medians of the rounds; target on PostgreSQL <= 3)\n"
        f"[{label}] server CPU per request: {single.cpu_us:.0f} us per check, "
        f"{baseline.cpu_us:.0f} us per bare lookup: ratio {baseline.cpu_us / single.cpu_us:.0%} "
        "(the same comparison, less sensitive to what else the machine is doing)\n"
        f"[{label}] access log: {logged.count(f'POST {path} 200'):,} check lines written, "
        f"{sum(map(int, dropped)):,} dropped\n"
        f"[{label}] batch of 100 pairs: p99 {batch.p99_ms:.1f} ms (target < 20 ms), "
        f"{batch.per_second * 100:,.0f} pairs/s | worker peak RSS {rss:.0f} MB (target < 120 MB)"
    )
    bench_workers(env, label, checks)
    bench_instructions(database_url, label, env, singles)


@dataclass(frozen=True)
class Round:
    single: WrkRun  # the portal as served
    baseline: WrkRun

    @property
    def ratio(self) -> float:
        return self.single.per_second / self.baseline.per_second


WORKER_ROUNDS = 3


def bench_workers(
    env: dict[str, str],
    label: str,
    checks: Callable[[Server], list[tuple[str, str, dict[str, str], str]]],
) -> None:
    """`portal serve --workers 2` against one worker, nothing pinned (two workers pinned to
    one core would measure nothing): the servers, wrk and, on PostgreSQL, the database share
    the machine's two cores."""
    rates: dict[int, list[WrkRun]] = {1: [], 2: []}
    with tempfile.TemporaryFile() as log, contextlib.ExitStack() as servers:
        started = {
            workers: servers.enter_context(portal_serve(env, log, workers=workers, run_under=()))
            for workers in rates
        }
        requests = {workers: checks(server) for workers, server in started.items()}
        for number in range(WORKER_ROUNDS):
            for workers in sorted(rates, reverse=bool(number % 2)):
                server = started[workers]
                rates[workers].append(wrk(server.url, requests[workers], pinned=False))
    one, two = (statistics.median(run.per_second for run in rates[n]) for n in (1, 2))
    p50, p99 = (
        statistics.median(run.p50_ms for run in rates[2]),
        statistics.median(run.p99_ms for run in rates[2]),
    )
    print(
        f"[{label}] `portal serve --workers 2`: {two:,.0f} checks/s against {one:,.0f} with one "
        f"worker: x{two / one:.2f} (median of {WORKER_ROUNDS} rounds each; nothing pinned, "
        f"wrk -c32 on the same two cores); two workers p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    )


# Instructions -------------------------------------------------------------------------------

# Two runs of different lengths per server: what one request costs is their difference, with
# the server's start and stop taken out.
COUNTED_RUNS = (300, 1300)


def _counted(
    app: str, env: dict[str, str], summary: Path, *, factory: bool, log_config: str | None
) -> contextlib.AbstractContextManager[Server]:
    """One uvicorn worker under valgrind's cachegrind (no cache simulation), which counts
    every instruction the worker executes, its access log's thread included. Whatever else
    the machine is doing, runs differ by about one per cent (what the event loop does while
    it waits depends on time). Its summary is in `summary` once the server has stopped."""
    valgrind = ("valgrind", "--tool=cachegrind", "--cache-sim=no")
    return serve(
        app,
        env,
        factory=factory,
        log_config=log_config,
        run_under=(*valgrind, "--cachegrind-out-file=/dev/null", f"--log-file={summary}"),
        starting_seconds=120,  # starting under valgrind takes tens of seconds
    )


def instructions_per_request(
    app: str,
    env: dict[str, str],
    *,
    factory: bool,
    bodies: list[str],
    token: Callable[[str], str],
    log_config: str | None = None,
) -> float:
    """`token` gives the bearer token for a server's address ("" for none)."""
    counts = []
    with tempfile.TemporaryDirectory() as folder:
        for requests in COUNTED_RUNS:
            summary = Path(folder) / f"{requests}.log"
            with _counted(app, env, summary, factory=factory, log_config=log_config) as server:
                headers = {"content-type": "application/json"}
                if bearer := token(server.url):
                    headers["authorization"] = f"Bearer {bearer}"
                with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
                    for n in range(requests):
                        body = bodies[n % len(bodies)]
                        client.post("/api/v1/consent-check", content=body).raise_for_status()
            match = re.search(r"I\s+refs:\s+([\d,]+)", summary.read_text())
            if match is None:
                raise RuntimeError(summary.read_text())
            counts.append(int(match.group(1).replace(",", "")))
    return (counts[1] - counts[0]) / (COUNTED_RUNS[1] - COUNTED_RUNS[0])


def counted_portal() -> Starlette:
    """The portal's app as `portal serve` builds it (its access log on: LOGGING_CONFIG), for
    the instruction count, with one difference. Two caches in each process, the API
    clients' standings and the published catalog, are read again once an hour rather than
    every few seconds: in service a few seconds hold thousands of checks, but under
    valgrind, which runs the worker about fifty times slower, they hold a few hundred, and
    the reads would be charged to them."""
    catalog_services._SNAPSHOT_TTL_SECONDS = 3600.0
    app = from_environment()
    app.state.client_standings.refresh_seconds = 3600.0
    return app


def bench_instructions(
    database_url: str, label: str, env: dict[str, str], bodies: list[str]
) -> None:
    """The single-check comparison again (the same environment and requests), counted in
    instructions rather than timed: this machine's timings move by several points between
    rounds, a count does not. Instructions are not time (a system call or a cache miss costs
    more than an instruction), so this is the comparison's check, not its replacement."""
    if shutil.which("valgrind") is None:
        print(f"[{label}] instructions per check: skipped (valgrind is not installed)")
        return
    with tempfile.NamedTemporaryFile("w", suffix=".json") as log_config:
        json.dump(LOGGING_CONFIG, log_config)
        log_config.flush()
        portal = instructions_per_request(
            "tests.benchmarks.consent_check:counted_portal",
            env,
            factory=True,
            bodies=bodies,
            token=lambda url: asyncio.run(api_token(database_url, url)),
            log_config=log_config.name,
        )
    bare = instructions_per_request(
        "tests.benchmarks.bare_check_app:app", env, factory=False, bodies=bodies, token=lambda _: ""
    )
    print(
        f"[{label}] instructions per request in the worker, counted by valgrind: "
        f"{portal:,.0f} per check (access log on), {bare:,.0f} per bare lookup: "
        f"ratio {bare / portal:.0%}"
    )


# At scale ---------------------------------------------------------------------------------

PATRONS = int(os.environ.get("BENCH_SCALE_PATRONS", "1000000"))
EVENTS_PER_PATRON = 20
SAMPLE = 2_000


async def _generate(database_url: str, catalog: str, locales: tuple[str, ...]) -> list[int]:
    """1,000,000 patrons, three consent states and twenty ledger events each, in SQL. A
    sample of them get real card lookups (the keyed hash of a known number)."""
    await Tortoise.init(config=tortoise_config(database_url))
    try:
        await publish(catalog, locales)
        db = connections.get("default")
        services = [
            row["id"] for row in await db.execute_query_dict("SELECT id FROM service ORDER BY id")
        ]
        started = time.monotonic()
        await db.execute_script(
            f"INSERT INTO patron (card_lookup, created_at, consent_version, shares_with_guardians) "
            f"SELECT 'gen-' || n, now(), 0, false FROM generate_series(1, {PATRONS}) n"
        )
        first = (await db.execute_query_dict("SELECT min(id) AS id FROM patron"))[0]["id"]
        for offset, service in enumerate(services[:3]):
            await db.execute_script(
                "INSERT INTO consent_state (patron_id, service_id, granted, granted_by, last_kind, "
                "terms_revision, revision, updated_at) "
                f"SELECT id, {service}, (id + {offset}) % 2 = 0, 'patron', 'given', 1, 1, now() "
                "FROM patron"
            )
        kinds = "ARRAY['given','refused','withdrawn','erased','renewed']"
        await db.execute_script(
            "INSERT INTO consent_event (patron_id, service_id, kind, purposes, occurred_at, "
            "method, actor, channel, detail) "
            f"SELECT p.id, {services[0]}, ({kinds})[1 + (e % 5)], '[]', "
            "now() - make_interval(days => e), 'online', 'patron', 'web', '{}' "
            f"FROM patron p CROSS JOIN generate_series(1, {EVENTS_PER_PATRON}) e"
        )
        await db.execute_script("ANALYZE")
        print(
            f"[postgres] generated {PATRONS:,} patrons, {PATRONS * 3:,} consent states and "
            f"{PATRONS * EVENTS_PER_PATRON:,} ledger events in {time.monotonic() - started:.0f} s"
        )
        sample = list(range(first, first + PATRONS, max(1, PATRONS // SAMPLE)))[:SAMPLE]
        for patron_id in sample:
            card = f"9{patron_id:011d}"
            lookup = keyed_hash(SECRET, KeyPurpose.CARD, normalise_card(card) or card)
            await db.execute_query(
                "UPDATE patron SET card_lookup = $1 WHERE id = $2", [lookup, patron_id]
            )
        return sample
    finally:
        await Tortoise.close_connections()


async def _sessions(database_url: str, patron_ids: list[int]) -> list[str]:
    await Tortoise.init(config=tortoise_config(database_url))
    try:
        return [
            await start_session(SECRET, patron_id, now=now(), minutes=600, hours=12)
            for patron_id in patron_ids[:200]
        ]
    finally:
        await Tortoise.close_connections()


def bench_scale(database_url: str, catalog: str, locales: tuple[str, ...]) -> None:
    sample = asyncio.run(_generate(database_url, catalog, locales))
    tokens = asyncio.run(_sessions(database_url, sample))
    env = {
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_SECRET_KEY": SECRET,
        "PORTAL_PUBLIC_URL": LOOPBACK_URL,
        # The checks are measured, not the delivery of the demo systems' requests.
        "PORTAL_DELIVERY_IN_PROCESS": "false",
    }
    with serve("portal.app:from_environment", env, factory=True) as portal:
        token = asyncio.run(api_token(database_url, portal.url))
        headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
        checks = [
            (
                "POST",
                "/api/v1/consent-check",
                headers,
                json.dumps({"card_number": f"9{patron_id:011d}", "service": SERVICES[n % 3]}),
            )
            for n, patron_id in enumerate(sample)
        ]
        check = wrk(portal.url, checks, connections=4)
        pages = [("GET", "/privacy", {"cookie": f"portal_session={t}"}, "") for t in tokens]
        privacy = wrk(portal.url, pages, connections=4)
        rss = portal.peak_rss_mb()
    print(
        f"[postgres, {PATRONS:,} patrons, {PATRONS * EVENTS_PER_PATRON:,} events] consent check "
        f"p99 {check.p99_ms:.1f} ms (target < 10 ms), {check.per_second:,.0f}/s | My privacy "
        f"p99 {privacy.p99_ms:.1f} ms (target < 50 ms), {privacy.per_second:,.0f}/s | worker "
        f"peak RSS {rss:.0f} MB (target < 120 MB)"
    )
