"""What every tier of tests shares: a free loopback port and the one client factory."""

from __future__ import annotations

import socket

import httpx2 as httpx
from starlette.types import ASGIApp

BASE_URL = "http://portal.test"


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
