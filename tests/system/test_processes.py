"""Two portal processes (one of them with two workers) against one database behave as one
portal: the sign-in throttle counts across them, a session started on one is ended on the
other, and a catalog published by the operator reaches both."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.factories import SECRET, catalog_text, service_table
from tests.support import LOOPBACK_URL, free_port

ROOT = Path(__file__).resolve().parents[2]


def portal_command(env: dict[str, str], *args: str, stdin: str = "") -> str:
    done = subprocess.run(
        [sys.executable, "-m", "portal.cli", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@contextlib.contextmanager
def serving(env: dict[str, str], workers: int) -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "portal.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            raise RuntimeError(f"the portal with {workers} worker(s) never became ready")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=15)


def catalog(wording: str) -> str:
    return catalog_text(service_table("newsletter", wording=wording))


@pytest.fixture
def environment(engine: str, database_url: str, tmp_path: Path) -> dict[str, str]:
    if engine != "postgres":
        pytest.skip("several hosts share PostgreSQL; SQLite serves one host")
    env = {
        **os.environ,
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_SECRET_KEY": SECRET,
        "PORTAL_PUBLIC_URL": LOOPBACK_URL,
        "PORTAL_LOCALES": "en",
        "PORTAL_DATA_DIR": str(tmp_path),
    }
    (tmp_path / "catalog.toml").write_text(catalog(""), encoding="utf-8")
    portal_command(env, "publish", str(tmp_path / "catalog.toml"))
    return env


def test_two_processes_behave_as_one_portal(environment: dict[str, str], tmp_path: Path) -> None:
    env = environment
    card = "2000 3333 4444"
    code = re.search(r"setup code: (\S+)", portal_command(env, "create-patron", stdin=card))
    assert code
    with (
        serving(env, workers=2) as first,
        serving(env, workers=1) as second,
        httpx.Client(base_url=first, headers={"origin": first}) as one,
        httpx.Client(base_url=second, headers={"origin": second}) as two,
    ):
        done = two.post(
            "/setup-pin",
            data={"card": card, "code": code.group(1), "pin": "4826", "pin_again": "4826"},
        )
        assert done.status_code == 200

        # A session started on one process is ended on the other.
        assert one.post("/signin", data={"card": card, "pin": "4826"}).status_code == 303
        cookie = {"cookie": f"portal_session={one.cookies['portal_session']}"}
        assert two.get("/privacy", headers=cookie).status_code == 200
        two.post("/signout", headers=cookie)
        assert one.get("/privacy", headers=cookie).status_code == 303

        # A publish by the operator reaches both processes (their snapshots are a cache).
        (tmp_path / "catalog.toml").write_text(catalog(" Now weekly."), encoding="utf-8")
        portal_command(env, "publish", str(tmp_path / "catalog.toml"))
        assert two.post("/signin", data={"card": card, "pin": "4826"}).status_code == 303
        cookie = {"cookie": f"portal_session={two.cookies['portal_session']}"}
        deadline = time.monotonic() + 10
        seen: set[str] = set()
        while time.monotonic() < deadline and seen != {first, second}:
            for url in (first, second):
                page = httpx.get(f"{url}/privacy", headers=cookie).text
                if "Now weekly." in page:
                    seen.add(url)
            time.sleep(0.5)
        assert seen == {first, second}

        # The throttle counts guesses on both processes (and all their workers) together.
        answers = [
            (one if n % 2 else two).post("/signin", data={"card": card, "pin": "0000"}).status_code
            for n in range(6)
        ]
        assert answers == [400] * 5 + [429]
