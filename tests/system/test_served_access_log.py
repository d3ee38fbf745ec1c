"""`portal serve`'s access log as a library runs it: a log nobody reads (a stopped journal, a
full pipe) never holds up a request, and a line reaches the log within a second of its
request, so a crash loses at most the last second's lines."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx2 as httpx
import pytest

from tests.factories import SECRET
from tests.support import LOOPBACK_URL, free_port


@pytest.fixture
def environment(engine: str, database_url: str, tmp_path: Path) -> dict[str, str]:
    if engine != "sqlite":
        pytest.skip("the access log is the same whatever the database")
    return {
        **os.environ,
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_SECRET_KEY": SECRET,
        "PORTAL_PUBLIC_URL": LOOPBACK_URL,
        "PORTAL_LOCALES": "en",
        "PORTAL_DATA_DIR": str(tmp_path),
        "PORTAL_DELIVERY_IN_PROCESS": "false",
    }


@contextlib.contextmanager
def serving(
    env: dict[str, str], stderr: int | IO[bytes]
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "portal.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            assert time.monotonic() < deadline, "the portal never started"
            time.sleep(0.1)
        yield url, process
    finally:
        process.kill()
        process.wait(timeout=15)
        if process.stderr is not None:
            process.stderr.close()


def test_a_log_nobody_reads_never_holds_up_a_request(environment: dict[str, str]) -> None:
    # A pipe holds 64 KiB, about a thousand lines: then a write to it waits for a reader.
    with (
        serving(environment, subprocess.PIPE) as (url, process),
        httpx.Client(base_url=url, timeout=5) as client,
    ):
        for _ in range(3000):
            assert client.get("/healthz").status_code == 200
        assert process.stderr is not None
        os.set_blocking(process.stderr.fileno(), False)
        logged = b""
        deadline = time.monotonic() + 10
        # Read again, the lines kept in memory meanwhile arrive.
        while logged.count(b"GET /healthz 200") < 3000 and time.monotonic() < deadline:
            with contextlib.suppress(BlockingIOError, TypeError):
                logged += process.stderr.read() or b""
            time.sleep(0.05)
        assert logged.count(b"GET /healthz 200") >= 3000


def test_a_line_reaches_the_log_within_a_second_of_its_request(
    environment: dict[str, str], tmp_path: Path
) -> None:
    log = tmp_path / "portal.log"
    with log.open("wb") as stderr, serving(environment, stderr) as (url, _):
        assert httpx.get(f"{url}/no-such-page").status_code == 404
        answered = time.monotonic()
        while b"GET (no route) 404" not in log.read_bytes():
            assert time.monotonic() - answered < 1.9, "not in the log a second later"
            time.sleep(0.02)


def test_a_stopped_server_has_written_every_line(
    environment: dict[str, str], tmp_path: Path
) -> None:
    # uvicorn stops on SIGTERM, then raises the signal again: the process ends without
    # Python's exit handlers, so the lines still queued are written when the app stops.
    log = tmp_path / "portal.log"
    with log.open("wb") as stderr, serving(environment, stderr) as (url, process):
        with httpx.Client(base_url=url) as client:
            for _ in range(200):
                assert client.get("/no-such-page").status_code == 404
        process.terminate()
        process.wait(timeout=15)
    assert log.read_bytes().count(b"GET (no route) 404") == 200
