"""Signing in with the library system's card and PIN (SIP2), in Chromium: a portal process
started with the operator's commands, asking a SIP2 stand-in (pysip2, a process of its own)
on loopback. The first visit has everything off; a child's first visit is under the
guardian rules; when the library system is down the page says so. axe finds nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, Page

from portal.catalog.jurisdiction import born_on_or_before
from tests.browser.conftest import portal_process, wcag_violations
from tests.factories import now
from tests.ils_process import running_ils
from tests.support import free_port

pytestmark = pytest.mark.browser
ADULT, CHILD, PIN = "21000000000021", "21000000000022", "Pw8qZ4xk"
PATRONS = [
    {"card": ADULT, "pin": PIN, "name": "Zoë Müller", "born": "19800214", "valid": True},
    {
        "card": CHILD,
        "pin": PIN,
        "name": "Ana Pérez",
        "born": born_on_or_before(now().date(), 9).strftime("%Y%m%d"),
        "valid": True,
    },
]


@dataclass(frozen=True)
class Portals:
    url: str  # asks the stand-in
    url_ils_down: str  # asks a port where nothing listens


def _sip2_env(port: int) -> dict[str, str]:
    return {
        "PORTAL_IDENTITY_SOURCE": "sip2",
        "PORTAL_SIP2_HOST": "127.0.0.1",
        "PORTAL_SIP2_PORT": str(port),
        "PORTAL_SIP2_PLAIN_LOOPBACK": "true",
        "PORTAL_SIP2_CONNECT_TIMEOUT": "1",
    }


@pytest.fixture(scope="module")
def portals(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portals]:
    with (
        running_ils(tmp_path_factory.mktemp("ils"), PATRONS) as ils,
        portal_process(tmp_path_factory.mktemp("sip2"), extra_env=_sip2_env(ils.port)) as (
            url,
            _,
        ),
        portal_process(tmp_path_factory.mktemp("sip2-down"), extra_env=_sip2_env(free_port())) as (
            url_down,
            _,
        ),
    ):
        yield Portals(url, url_down)


def _sign_in(browser: Browser, url: str, card: str) -> Page:
    page = browser.new_context(locale="en-US").new_page()
    page.set_default_timeout(8000)
    page.goto(f"{url}/signin")
    page.fill("#card", card)
    page.fill("#pin", PIN)
    page.click("button.primary")
    return page


def test_first_sign_in_through_the_library_system_has_everything_off(
    browser: Browser, portals: Portals, axe_source: str
) -> None:
    page = _sign_in(browser, portals.url, ADULT)
    assert page.url.endswith("/privacy")
    statuses = page.locator(".status").all_inner_texts()
    assert statuses
    assert all("Off" in status for status in statuses)
    assert wcag_violations(page, axe_source) == []
    page.goto(f"{portals.url}/signin")
    assert wcag_violations(page, axe_source) == []


def test_a_childs_first_visit_is_under_the_guardian_rules(
    browser: Browser, portals: Portals, axe_source: str
) -> None:
    page = _sign_in(browser, portals.url, CHILD)
    assert page.url.endswith("/privacy")
    assert "Waiting for a parent or guardian to agree" in page.content()
    page.goto(f"{portals.url}/services/reading_history")
    assert "written for children" in page.content()
    assert page.locator("button[value=yes]").count() == 0  # a guardian decides
    assert wcag_violations(page, axe_source) == []


def test_the_library_system_down_is_said_plainly(
    browser: Browser, portals: Portals, axe_source: str
) -> None:
    page = _sign_in(browser, portals.url_ils_down, ADULT)
    assert page.url.endswith("/signin")
    alert = page.locator("[role=alert]").inner_text()
    assert "The library system cannot be reached just now" in alert
    assert PIN not in page.content()
    assert wcag_violations(page, axe_source) == []
