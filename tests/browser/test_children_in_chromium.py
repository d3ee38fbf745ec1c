"""Children's notices and the notice gate, in real Chromium against a real portal process
publishing the demo catalog: a child reads the child's version (in English and Spanish, in
the informal register), a yes at the gate leads on to the service asked for (with and without
JavaScript), and after an htmx swap the whole page agrees with the decision."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.conftest import (
    ARTIFACTS,
    PIN,
    choose_language,
    portal_process,
    wcag_violations,
)

pytestmark = pytest.mark.browser


@dataclass(frozen=True)
class People:
    url: str
    cards: dict[str, str]  # who: card number, each with PIN `PIN`


@pytest.fixture(scope="module")
def people(tmp_path_factory: pytest.TempPathFactory, browser: Browser) -> Iterator[People]:
    """An adult for each gate test and a ten-year-old, each with their own PIN."""
    ten_years_ago = date(datetime.now(UTC).year - 10, 1, 1)
    with portal_process(tmp_path_factory.mktemp("children")) as (url, run):
        cards = {}
        for number, (who, born) in enumerate(
            [("child", ten_years_ago), ("adult_js", None), ("adult_nojs", None),
             ("adult_swap", None)],
            start=1,
        ):  # fmt: skip
            card = f"2000 5555 000{number}"
            args = ["create-patron", *(["--born", born.isoformat()] if born else [])]
            created = run(*args, stdin=card + "\n")
            code = re.search(r"setup code: (\S+)", created)
            assert code, created
            page = browser.new_page()
            page.goto(f"{url}/setup-pin")
            page.fill("#card", card)
            page.fill("#code", code.group(1))
            page.fill("#pin", PIN)
            page.fill("#pin_again", PIN)
            page.click("button.primary")
            assert page.locator("h1").inner_text() == "Your PIN is set"
            page.close()
            cards[who] = card
        yield People(url, cards)


def signed_in(browser: Browser, people: People, who: str, *, javascript: bool = True) -> Page:
    context = browser.new_context(java_script_enabled=javascript, locale="en-US")
    page = context.new_page()
    outside: list[str] = []
    page.on("console", lambda message: outside.append(message.text))
    page.on(
        "request",
        lambda request: (
            outside.append(request.url) if not request.url.startswith(people.url) else None
        ),
    )
    page.outside = outside  # type: ignore[attr-defined]
    page.goto(f"{people.url}/signin")
    page.fill("#card", people.cards[who])
    page.fill("#pin", PIN)
    page.click("button.primary")
    return page


def test_a_child_reads_the_childs_version_in_english_and_spanish(
    browser: Browser, people: People, axe_source: str
) -> None:
    page = signed_in(browser, people, "child")
    page.goto(f"{people.url}/services/reading_history")
    notice = page.locator("article.notice").inner_text()
    assert "Nobody else sees it. Not even library staff." in notice
    assert "Library staff cannot browse it" not in notice  # the adult notice's wording
    assert "Off — you have not been asked yet" in notice
    assert page.locator("button[value=yes]").count() == 0  # a guardian says yes
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "child-notice-en.png"), full_page=True)
    choose_language(page, "es")
    page.goto(f"{people.url}/services/reading_history")
    notice = page.locator("article.notice").inner_text()
    assert "Nadie más la ve. Ni siquiera el personal de la biblioteca." in notice
    # The page's own lines speak to the child informally (tú), not as "usted".
    assert "Desactivado — todavía no te hemos preguntado" in notice
    choice = page.locator("#choice").inner_text()
    assert "Decir que no nunca cambia los libros que puedes sacar." in choice
    assert "usted" not in (notice + choice).lower()
    page.screenshot(path=str(ARTIFACTS / "child-notice-es.png"), full_page=True)
    assert wcag_violations(page, axe_source) == []
    choose_language(page, "en")
    assert page.outside == []  # type: ignore[attr-defined]


def test_yes_at_the_gate_leads_on_to_the_service_with_javascript(
    browser: Browser, people: People
) -> None:
    page = signed_in(browser, people, "adult_js")
    page.goto(f"{people.url}/reading-history")
    assert page.locator("button[value=yes]").is_visible()  # the gate stands in front
    page.click("button[value=yes]")
    page.wait_for_url(f"{people.url}/reading-history")
    page.locator("h1", has_text="My reading history").wait_for()
    assert page.locator("button[value=yes]").count() == 0
    assert page.outside == []  # type: ignore[attr-defined]


def test_yes_at_the_gate_leads_on_to_the_service_without_javascript(
    browser: Browser, people: People
) -> None:
    page = signed_in(browser, people, "adult_nojs", javascript=False)
    page.goto(f"{people.url}/reading-history")
    page.click("button[value=yes]")
    assert page.url == f"{people.url}/reading-history"
    assert page.locator("h1").inner_text() == "My reading history"


def test_after_each_htmx_swap_the_status_line_agrees_with_the_outcome(
    browser: Browser, people: People
) -> None:
    page = signed_in(browser, people, "adult_swap")
    page.goto(f"{people.url}/services/reading_history")
    before = page.url
    assert page.locator("#status-line").inner_text() == "Off — you have not been asked yet"
    page.click("button[value=yes]")
    page.locator("#choice[role=status]").wait_for()
    assert page.url == before  # swapped in place
    assert page.locator("#choice").inner_text().startswith("Reading history is on.")
    assert page.locator("#status-line").inner_text().startswith("On since ")
    page.goto(f"{people.url}/services/reading_history")
    page.click("button[value=no]")
    page.locator("#choice[role=status]").wait_for()
    outcome = page.locator("#choice .notice-box").first.inner_text()
    assert outcome == "Reading history is off. 0 saved items were deleted."
    assert page.locator("#status-line").inner_text().startswith("Off — you turned it off on ")
    assert page.locator("#status-line").count() == 1
    page.screenshot(path=str(ARTIFACTS / "status-after-swap.png"), full_page=True)
    assert page.outside == []  # type: ignore[attr-defined]
