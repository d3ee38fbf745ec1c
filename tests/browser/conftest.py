"""A real portal process (started with the operator's own commands) and real Chromium."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.factories import demo_system_secrets
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
PIN = "4826"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass(frozen=True)
class LivePortal:
    url: str
    card: str
    setup_code: str


@contextlib.contextmanager
def portal_process(
    data: Path, *, port: int | None = None, extra_env: dict[str, str] | None = None
) -> Iterator[tuple[str, Callable[..., str]]]:
    """A migrated portal with the demo catalog, served by `portal serve` on loopback: its
    URL, and a way to run the operator's other commands against it."""
    env = {
        **os.environ,
        "PORTAL_DATA_DIR": str(data),
        "PORTAL_SECRET_KEY": "browser-test-secret-0123456789",
        "PORTAL_DATABASE_URL": f"sqlite://{data / 'portal.sqlite3'}",
        "PORTAL_SYSTEM_SECRETS_FILE": str(demo_system_secrets(data / "system-secrets.toml")),
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
    run("publish", str(ROOT / "deploy" / "catalog.toml"))
    port = port or free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log = (ARTIFACTS / f"server-{data.name}.log").open("w", encoding="utf-8")
    server = subprocess.Popen(
        [*portal, "serve", "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
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


@pytest.fixture(scope="module")
def live_portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LivePortal]:
    with portal_process(tmp_path_factory.mktemp("live")) as (url, run):
        card = "2000 7777 8888"
        created = run("create-patron", stdin=card + "\n")
        code = re.search(r"setup code: (\S+)", created)
        assert code, created
        yield LivePortal(url, card, code.group(1))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module scope: Playwright's sync API keeps an event loop running in this thread, which
    # must end before the other tests run theirs.
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS
        )
        yield launched
        launched.close()


def signed_in_page(browser: Browser, live: LivePortal, *, javascript: bool = True) -> Page:
    context = browser.new_context(java_script_enabled=javascript, locale="en-US")
    page = context.new_page()
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text))
    page.on(
        "request",
        lambda request: (
            violations.append(f"request {request.url}")
            if not request.url.startswith(live.url)
            else None
        ),
    )
    page.violations = violations  # type: ignore[attr-defined]
    page.goto(f"{live.url}/signin")
    page.fill("#card", live.card)
    page.fill("#pin", PIN)
    page.click("button.primary")
    return page


@pytest.fixture(scope="module")
def patron_with_pin(browser: Browser, live_portal: LivePortal) -> LivePortal:
    page = browser.new_page()
    page.goto(f"{live_portal.url}/setup-pin")
    page.fill("#card", live_portal.card)
    page.fill("#code", live_portal.setup_code)
    page.fill("#pin", PIN)
    page.fill("#pin_again", PIN)
    page.click("button.primary")
    assert page.locator("h1").inner_text() == "Your PIN is set"
    page.close()
    return live_portal


def choose_language(page: Page, code: str) -> None:
    page.select_option("#locale-choice", code)
    page.click(".language button")


WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]


@pytest.fixture(scope="module")
def axe_source() -> str:
    path = os.environ.get("PORTAL_TEST_AXE")
    if not path or not Path(path).exists():
        pytest.fail("axe-core is missing: run the tests with `make test`")
    return Path(path).read_text(encoding="utf-8")


def wcag_violations(page: Page, axe_source: str) -> list[str]:
    """axe-core's WCAG 2.2 A/AA findings on the page as it stands."""
    # Evaluated through the DevTools protocol, so the page's CSP stays as strict as ever.
    page.evaluate(axe_source)
    found: list[str] = page.evaluate(
        "tags => axe.run(document, {runOnly: {type: 'tag', values: tags}})"
        ".then(result => result.violations.map(v => v.id + ': ' + v.help))",
        WCAG_TAGS,
    )
    return found
