"""A real portal process, started with the operator's own commands: migrated SQLite, the
demo catalog published, `portal serve` on a free loopback port."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from tests.factories import demo_system_secrets
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"


@contextlib.contextmanager
def portal_process(
    data: Path, *, port: int | None = None, extra_env: dict[str, str] | None = None
) -> Iterator[tuple[str, Callable[..., str]]]:
    """A migrated portal with the demo catalog, served by `portal serve` on loopback: its
    URL, and a way to run the operator's other commands against it."""
    data.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "PORTAL_DATA_DIR": str(data),
        "PORTAL_SECRET_KEY": "live-portal-secret-0123456789",
        "PORTAL_PUBLIC_URL": url,
        "PORTAL_DATABASE_URL": f"sqlite://{data / 'portal.sqlite3'}",
        "PORTAL_SYSTEM_SECRETS_FILE": str(demo_system_secrets(data / "system-secrets.toml")),
        "PORTAL_RECEIPT_KEYS_FILE": str(data / "receipt-keys.json"),
        # The demo systems' endpoints answer nobody: no delivery in these tests.
        "PORTAL_DELIVERY_IN_PROCESS": "false",
        **(extra_env or {}),
    }
    portal = [sys.executable, "-m", "portal.cli"]

    def run(*args: str, stdin: str = "") -> str:
        done = subprocess.run(
            [*portal, *args], env=env, input=stdin, capture_output=True, text=True, check=True
        )
        return done.stdout

    run("migrate")
    run("receipt-key", "rotate")
    run("publish", str(ROOT / "deploy" / "catalog.toml"))
    ARTIFACTS.mkdir(exist_ok=True)
    log = (ARTIFACTS / f"server-{data.name}.log").open("w", encoding="utf-8")
    server = subprocess.Popen(
        [*portal, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=1)  # noqa: S310 - loopback
                break
            except OSError:
                time.sleep(0.1)
        yield url, run
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


def child_versions_edited(
    catalog: str, service: str, field: str, edit: Callable[[str], str]
) -> str:
    """The catalog text with `field` of every child's version of `service` passed through
    `edit`: a material change must reach the child's versions too, or nothing is published."""
    lines = catalog.split("\n")
    key, table = None, None
    for number, line in enumerate(lines):
        if line.startswith("key = "):
            key = line.split("=", 1)[1].strip().strip('"')
        elif line.startswith("["):
            table = line if line.startswith("[service.child_notice.") else None
        elif key == service and table and line.startswith(f"{field} = "):
            value = line.split("=", 1)[1].strip()
            assert value.startswith('"'), line
            assert value.endswith('"'), line
            lines[number] = f'{field} = "{edit(value[1:-1])}"'
    return "\n".join(lines)
