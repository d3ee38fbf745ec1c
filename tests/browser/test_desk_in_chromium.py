"""A whole desk visit in real Chromium against a real portal process and a real OpenID
Connect provider: staff sign in through the provider, create a card and hand the screen over;
an Arabic-speaking patron sets a PIN, says yes to one service and no to the rest; the screen
comes back showing no choices; the patron then signs in online and finds exactly those
choices. A second visit onboards a nine-year-old with a Spanish-speaking guardian. axe-core
checks each desk and hand-over page on the way."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.conftest import ARTIFACTS, portal_process, wcag_violations
from tests.factories import aged
from tests.oidc_provider import running_provider
from tests.support import free_port

pytestmark = pytest.mark.browser


@dataclass(frozen=True)
class LiveDesk:
    url: str
    provider: str  # the library's identity provider, where staff sign in


@pytest.fixture(scope="module")
def live_desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDesk]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with running_provider(f"{url}/staff/provider/callback") as provider:
        settings = {
            "PORTAL_OIDC_ISSUER": provider.issuer,
            "PORTAL_OIDC_CLIENT_ID": provider.client_id,
            "PORTAL_OIDC_CLIENT_SECRET": provider.client_secret,
        }
        data = tmp_path_factory.mktemp("desk")
        with portal_process(data, port=port, extra_env=settings) as (live_url, _):
            yield LiveDesk(live_url, provider.issuer)


class Visit:
    """One browser at the desk, checking every page it shows with axe-core."""

    def __init__(self, page: Page, live: LiveDesk, axe_source: str) -> None:
        self.page, self.live, self.axe = page, live, axe_source
        self.violations: dict[str, list[str]] = {}
        self.outside: list[str] = []
        # What the portal's own pages load (going to the provider to sign in is a navigation,
        # and the provider's login page is the library's, not the portal's).
        page.on(
            "request",
            lambda request: (
                self.outside.append(request.url)
                if request.frame.url.startswith(live.url)
                and not request.url.startswith((live.url, live.provider))
                else None
            ),
        )

    def check(self, name: str) -> None:
        found = wcag_violations(self.page, self.axe)
        if found:
            self.violations[name] = found
        self.page.screenshot(path=str(ARTIFACTS / f"desk-{name}.png"), full_page=True)

    def staff_sign_in(self, login: str = "desk-dana") -> None:
        self.page.goto(f"{self.live.url}/staff/signin")
        self.page.click("text=Sign in with your library account")
        # The provider's own login form: asked every time (prompt=login), never remembered.
        self.page.fill("input[name=login]", login)
        self.page.fill("input[name=password]", "any password")
        self.page.click("button[type=submit]")
        self.page.wait_for_url(f"{self.live.url}/desk")

    def scan(self, selector: str, card: str) -> None:
        """A barcode scanner types the number and ends with Enter."""
        self.page.fill(selector, card)

    def hand_over(self) -> None:
        self.page.click("text=Hand the screen to the patron")
        self.page.wait_for_url(f"{self.live.url}/handover")

    def set_pin(self, pin: str) -> None:
        self.page.fill("#pin", pin)
        self.page.fill("#pin_again", pin)
        # The next page is read at once (a locator's count does not wait): wait until the
        # answer has loaded, not only until it started to (a busy machine showed the gap).
        with self.page.expect_navigation(wait_until="load"):
            self.page.click("form[action='/handover/pin'] button")

    def answer_every_notice(self, first: str) -> int:
        """`first` to the first notice, no to every other; the messaging service's grid is
        left with nothing ticked (which decides nothing, so records nothing). Returns how
        many notices were answered."""
        answered, step = 0, 0
        while self.page.locator("button[name=decision], button[name=all_off]").count():
            self.check(f"notice-{step}")
            step += 1
            if self.page.locator("table.message-grid").count():
                self.page.click("button[name=all_off]")
                continue
            self.page.click(f"button[name=decision][value={first if answered == 0 else 'no'}]")
            answered += 1
        return answered


def test_a_whole_desk_visit(browser: Browser, live_desk: LiveDesk, axe_source: str) -> None:
    context = browser.new_context(locale="en-US")
    visit = Visit(context.new_page(), live_desk, axe_source)
    page = visit.page

    visit.staff_sign_in()
    visit.check("home")
    card = "2000 4444 5555"
    page.select_option("#locale", "ar")
    visit.scan("#card", card)
    page.press("#card", "Enter")
    assert page.locator("h1").inner_text() == "Card created"
    visit.check("card-created")
    visit.hand_over()

    # The patron's screen: Arabic, right to left, no desk navigation.
    assert page.locator("html").get_attribute("dir") == "rtl"
    assert page.locator("a[href^='/desk']").count() == 0
    visit.check("handover-pin")
    visit.set_pin("4826")
    shown = visit.answer_every_notice("yes")
    assert shown >= 2
    visit.check("handover-done")
    # Back button and typed URLs lead nowhere near the desk while the screen is handed over.
    page.go_back()
    page.goto(f"{live_desk.url}/desk")
    assert page.url == f"{live_desk.url}/staff/signin"
    page.goto(f"{live_desk.url}/handover")
    page.click("form.hand-back button")
    assert page.url == f"{live_desk.url}/staff/signin"

    visit.staff_sign_in()
    assert "Card ready" in page.inner_text("main")
    assert "4826" not in page.content()
    titles = page.inner_text("main")
    assert "reading" not in titles.lower()
    visit.check("card-ready")

    # At home: the patron signs in online and finds exactly the one service on.
    home = browser.new_context(locale="ar").new_page()
    home.goto(f"{live_desk.url}/signin")
    home.fill("#card", card)
    home.fill("#pin", "4826")
    home.click("button.primary")
    home.wait_for_url(f"{live_desk.url}/privacy")
    assert home.locator(".status.on").count() == 1
    home.goto(f"{live_desk.url}/privacy/record")
    assert home.locator("td .hint").count() == shown  # each decision made at the desk

    # A nine-year-old, with a Spanish-speaking guardian who gets a card in the same visit.
    page.goto(f"{live_desk.url}/desk")
    page.select_option("#locale", "es")
    page.fill("#born_on", aged(9).isoformat())
    page.fill("#guardian_card", "2000 6666 7777")
    page.check("#guardian_new")
    page.fill("#guardian_label", "Lucía")
    page.check("#identity_checked")
    visit.scan("#card", "2000 6666 8888")
    page.press("#card", "Enter")
    assert page.locator("h1").inner_text() == "Card created"
    visit.hand_over()
    assert page.locator("html").get_attribute("lang") == "es"
    visit.set_pin("1397")  # the child's own PIN
    visit.check("handover-guardian-pin")
    visit.set_pin("8642")  # the guardian's, for their new card
    assert page.locator(".for-guardian").count() == 1  # the guardian is asked to decide
    guardian_answers = visit.answer_every_notice("yes")
    assert guardian_answers >= 1
    page.click("form.hand-back button")
    visit.staff_sign_in()
    assert "Card ready" in page.inner_text("main")

    page.goto(f"{live_desk.url}/desk/lookup")
    visit.scan("#card", card)
    page.press("#card", "Enter")
    assert "Not locked" in page.inner_text("main")
    visit.check("lookup")
    page.goto(f"{live_desk.url}/desk/links")
    visit.check("links")

    assert visit.violations == {}
    assert visit.outside == []
    context.close()
