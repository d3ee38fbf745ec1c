"""The privacy officer in real Chromium against a real `portal serve`: uploads a catalog
with a material change, reads the preview in English and Arabic beside what is published
now, publishes it, and the consent report shows the paused consents. axe-core checks every
officer page."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.conftest import ARTIFACTS, choose_language, portal_process, wcag_violations
from tests.live import ROOT, child_versions_edited

PASSWORD = "a long officer password"
PATRONS = 12
SEED = """
import asyncio, sys
from tortoise import Tortoise
from portal.consent.policy import Decision
from portal.db import tortoise_config
from tests.factories import decides, make_patron

async def seed(url, count):
    await Tortoise.init(config=tortoise_config(url))
    try:
        for _ in range(count):
            patron = await make_patron()
            await decides(patron.id, "reading_history", Decision.YES)
    finally:
        await Tortoise.close_connections()

asyncio.run(seed(sys.argv[1], int(sys.argv[2])))
"""


@dataclass(frozen=True)
class LiveOfficer:
    url: str
    username: str
    code: str


@pytest.fixture(scope="module")
def live_officer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveOfficer]:
    data = tmp_path_factory.mktemp("officer")
    with portal_process(data) as (url, run):
        added = run("staff", "add", "olive", "--role", "privacy_officer", "--name", "Olive")
        code = re.search(r"setup code: (\S+)", added)
        assert code, added
        # Twelve patrons who turned reading history on (through the real use cases).
        database = f"sqlite://{data / 'portal.sqlite3'}"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        subprocess.run(
            [sys.executable, "-c", SEED, database, str(PATRONS)], env=env, check=True, cwd=ROOT
        )
        yield LiveOfficer(url, "olive", code.group(1))


def _changed_catalog(folder: Path) -> Path:
    """The demo catalog with reading history kept five years instead of three: longer
    retention is a material change."""
    text = (ROOT / "deploy" / "catalog.toml").read_text(encoding="utf-8")
    for old, new in (
        ("retention_days = 1095", "retention_days = 1825"),
        ("kept for up to 3 years", "kept for up to 5 years"),
        ("مدة أقصاها 3 سنوات", "مدة أقصاها 5 سنوات"),
    ):
        assert old in text
        text = text.replace(old, new, 1)
    text = child_versions_edited(
        text, "reading_history", "retention", lambda value: value.replace("3", "5", 1)
    )
    path = folder / "catalog.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _paused(page: Page) -> str:
    return page.locator("#service-reading_history td.paused").inner_text()


def _on(page: Page) -> str:
    return page.locator("#service-reading_history td.on").inner_text()


def test_an_officer_publishes_a_material_change_from_the_browser(
    browser: Browser, live_officer: LiveOfficer, axe_source: str, tmp_path: Path
) -> None:
    page = browser.new_context(locale="en-US").new_page()
    outside: list[str] = []
    page.on(
        "request",
        lambda request: (
            outside.append(request.url) if not request.url.startswith(live_officer.url) else None
        ),
    )
    violations: dict[str, list[str]] = {}

    def check(name: str) -> None:
        found = wcag_violations(page, axe_source)
        if found:
            violations[name] = found
        page.screenshot(path=str(ARTIFACTS / f"officer-{name}.png"), full_page=True)

    page.goto(f"{live_officer.url}/staff/setup")
    page.fill("#username", live_officer.username)
    page.fill("#code", live_officer.code)
    page.fill("#password", PASSWORD)
    page.fill("#password_again", PASSWORD)
    page.click("main button[type=submit]")
    page.goto(f"{live_officer.url}/staff/signin")
    page.fill("#username", live_officer.username)
    page.fill("#password", PASSWORD)
    page.click("main button[type=submit]")
    page.click("text=Consent report")
    # The month's figures are drawn now: about PATRONS on, about 0 paused, with noise.
    before = (_paused(page), _on(page))
    assert all(figure.startswith("about ") for figure in before)
    assert "19 times out of 20" in page.locator("#what-a-count-means").inner_text()
    check("report-before")

    page.click("text=Publish the catalog")
    check("catalog")
    page.set_input_files("#catalog", str(_changed_catalog(tmp_path)))
    page.click("text=Check and preview")
    preview = page.locator("#preview-reading_history")
    assert "material change" in preview.locator("h2").inner_text()
    assert "1,825 (longer)" in preview.locator("table.terms").inner_text()
    english = page.locator("#diff-reading_history-en tr.changed", has_text="retention")
    assert "up to 3 years" in english.locator("td").nth(0).inner_text()
    assert "up to 5 years" in english.locator("td").nth(1).inner_text()
    arabic = page.locator("#diff-reading_history-ar tr.changed", has_text="retention")
    assert "3 سنوات" in arabic.locator("td").nth(0).inner_text()
    assert "5 سنوات" in arabic.locator("td").nth(1).inner_text()
    assert arabic.locator("td").nth(1).get_attribute("lang") == "ar"
    assert page.locator("#preview-saved_lists").count() == 0  # unchanged services stay out
    check("preview")

    page.click("text=Publish this catalog")
    page.wait_for_url(f"{live_officer.url}/officer/report")
    # The same month: the same figures, so the change cannot be read off two reports.
    assert (_paused(page), _on(page)) == before
    check("report-after")

    # The officer's own pages in Arabic, right to left.
    choose_language(page, "ar")
    page.goto(f"{live_officer.url}/officer/report")
    assert page.locator("h1").inner_text() == "تقرير الموافقات"
    assert page.locator("html").get_attribute("dir") == "rtl"
    check("report-ar")
    choose_language(page, "en")

    for name in ("promises", "requests", "transparency", "inventory"):
        page.goto(f"{live_officer.url}/officer/{name}")
        check(name)
    page.goto(f"{live_officer.url}/officer/promises")
    assert "Warning" in page.locator("main").inner_text()  # no scheduled job has run here
    assert outside == []
    assert violations == {}
