"""What every tier of tests shares: a free loopback port, the one client factory, and a
deadline to wait on another process with (never a fixed sleep)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx2 as httpx
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
