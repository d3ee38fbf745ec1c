"""What every tier of tests shares: a free loopback port, the one client factory, a
deadline to wait on another process with (never a fixed sleep), and starting and stopping
the helper processes the tests run on loopback (a library system, an identity provider)."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx2 as httpx
import pytest
from starlette.types import ASGIApp

T = TypeVar("T")

BASE_URL = "http://portal.test"
# The public address of the portal processes the tests start on this machine (any port).
LOOPBACK_URL = "http://127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def portal_client(app: ASGIApp, **headers: str) -> httpx.AsyncClient:
    """A browser-like client in process: same-origin requests, as a form submit sends them."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=BASE_URL,
        headers={"origin": BASE_URL, **headers},
    )


async def until(probe: Callable[[], Awaitable[T | None]], *, what: str, seconds: float = 20) -> T:
    """`probe`'s first answer that is not None, asked every 0.05 s; the test fails, saying
    what it waited for, if none comes within `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        answer = await probe()
        if answer is not None:
            return answer
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {seconds} s for {what}")
        await asyncio.sleep(0.05)


def ready_line(
    process: subprocess.Popen[bytes], what: str, stderr: Callable[[], str], *, seconds: float
) -> str:
    """What follows "ready " on the first line `process` prints (its port, its address); the
    test fails, with the process's stderr, if it exits, says anything else or takes longer
    than `seconds`."""
    assert process.stdout is not None
    deadline = time.monotonic() + seconds
    line = b""
    while not line.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        readable, _, _ = select.select([process.stdout], [], [], max(remaining, 0))
        chunk = os.read(process.stdout.fileno(), 256) if readable else b""
        if not chunk:
            why = "exited" if readable else f"did not start within {seconds:.0f} s"
            stop_process(process)
            pytest.fail(f"{what} {why}; its stderr:\n{stderr()}")
        line += chunk
    word, _, rest = line.decode().strip().partition(" ")
    if word != "ready":
        stop_process(process)
        pytest.fail(f"{what} said {line!r}; its stderr:\n{stderr()}")
    return rest


def stop_process(process: subprocess.Popen[bytes], seconds: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after `seconds`."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    if process.stdout is not None:
        process.stdout.close()
