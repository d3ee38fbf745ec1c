"""WCAG 2.2 A/AA checks with axe-core on the pages patrons and guardians use, left to
right and right to left. axe-core is fetched from npm by `make test` (never served)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser

from tests.browser.conftest import LivePortal, choose_language, signed_in_page, wcag_violations

pytestmark = pytest.mark.browser
PAGES = [
    "/privacy",
    "/services/reading_history",
    "/privacy/record",
    "/guardian",
    "/signin",
    "/privacy/my-data",
    "/receipts/verify",
    "/notices",
    "/notices/reading_history",
]


@pytest.mark.parametrize("locale", ["en", "ar"])
def test_pages_have_no_wcag_violations(
    browser: Browser, patron_with_pin: LivePortal, axe_source: str, locale: str
) -> None:
    page = signed_in_page(browser, patron_with_pin)
    choose_language(page, locale)
    found = {}
    for path in PAGES:
        page.goto(f"{patron_with_pin.url}{path}")
        violations = wcag_violations(page, axe_source)
        if violations:
            found[path] = violations
    choose_language(page, "en")
    assert found == {}


def test_the_check_itself_catches_a_planted_violation(
    browser: Browser, patron_with_pin: LivePortal, axe_source: str
) -> None:
    page = signed_in_page(browser, patron_with_pin)
    page.goto(f"{patron_with_pin.url}/privacy")
    page.evaluate("document.querySelector('main').append(document.createElement('button'))")
    page.evaluate(axe_source)
    violations = page.evaluate("() => axe.run().then(result => result.violations.map(v => v.id))")
    assert "button-name" in violations
