"""What a patron does with their rights in Chromium: download their data and a receipt,
check the receipt on the public verify page (and see one altered byte rejected), and read
the earlier text of a privacy notice the library changed, from their consent record."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.conftest import (
    PIN,
    LivePortal,
    choose_language,
    signed_in_page,
    wcag_violations,
)
from tests.live import ARTIFACTS, ROOT, child_versions_edited, portal_process

pytestmark = pytest.mark.browser


@dataclass(frozen=True)
class RightsPortal:
    live: LivePortal
    data: Path
    run: object  # the operator's commands against this portal


@pytest.fixture(scope="module")
def rights_portal(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RightsPortal]:
    data = tmp_path_factory.mktemp("rights")
    with portal_process(data) as (url, run):
        card = "2000 5555 6666"
        code = re.search(r"setup code: (\S+)", run("create-patron", stdin=card + "\n"))
        assert code
        live = LivePortal(url, card, code.group(1))
        page = browser.new_page()
        page.goto(f"{url}/setup-pin")
        page.fill("#card", card)
        page.fill("#code", code.group(1))
        page.fill("#pin", PIN)
        page.fill("#pin_again", PIN)
        page.click("button.primary")
        page.close()
        yield RightsPortal(live, data, run)


def _say_no_to_the_newsletter(page: Page, url: str) -> None:
    page.goto(f"{url}/services/newsletter")
    page.click("button[value=no]")
    page.locator("main").wait_for()


def _receipt_from_the_record(page: Page, url: str) -> str:
    page.goto(f"{url}/privacy/record")
    page.locator("a", has_text="Receipt").last.click()
    assert page.locator("h1").inner_text() == "Consent receipt"
    with page.expect_download() as download:
        page.click("text=Download the receipt file")
    return Path(download.value.path()).read_text(encoding="utf-8").strip()


def _one_byte_altered(receipt: str) -> str:
    header, payload, signature = receipt.split(".")
    middle = len(payload) // 2
    swapped = "A" if payload[middle] != "A" else "B"
    return f"{header}.{payload[:middle]}{swapped}{payload[middle + 1 :]}.{signature}"


def test_a_patron_downloads_their_data_from_my_privacy(
    browser: Browser, rights_portal: RightsPortal
) -> None:
    page = signed_in_page(browser, rights_portal.live)
    page.goto(f"{rights_portal.live.url}/privacy")
    with page.expect_download() as download:
        page.click("text=Download my data (JSON file)")
    data = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))
    assert data["schema_version"] == 1
    assert {c["status"] for c in data["consents"]} <= {"never_asked", "on", "refused", "withdrawn"}
    assert rights_portal.live.card.replace(" ", "") not in json.dumps(data)
    page.goto(f"{rights_portal.live.url}/privacy/my-data")
    assert page.locator("h1").inner_text() == "My data"
    assert page.violations == []  # type: ignore[attr-defined]


def test_a_receipt_is_valid_on_the_verify_page_until_one_byte_changes(
    browser: Browser, rights_portal: RightsPortal
) -> None:
    url = rights_portal.live.url
    page = signed_in_page(browser, rights_portal.live)
    _say_no_to_the_newsletter(page, url)
    receipt = _receipt_from_the_record(page, url)
    visitor = browser.new_page()  # anyone may check a receipt, signed in or not
    visitor.goto(f"{url}/receipts/verify")
    visitor.fill("#receipt", receipt)
    visitor.click("button.primary")
    verdict = visitor.locator("#verdict").inner_text()
    assert "Valid: the library signed this receipt" in verdict
    assert "Newsletter" in verdict or "newsletter" in verdict.lower()
    visitor.screenshot(path=str(ARTIFACTS / "receipt-valid.png"), full_page=True)
    visitor.fill("#receipt", _one_byte_altered(receipt))
    visitor.click("button.primary")
    assert "Not valid" in visitor.locator("#verdict").inner_text()
    altered = rights_portal.data / "altered.jws"
    altered.write_text(_one_byte_altered(receipt))
    visitor.fill("#receipt", "")
    visitor.set_input_files("#file", str(altered))
    visitor.click("button.primary")
    assert "Not valid" in visitor.locator("#verdict").inner_text()
    visitor.close()


def test_the_operator_verifies_a_downloaded_receipt_from_the_command_line(
    browser: Browser, rights_portal: RightsPortal
) -> None:
    url = rights_portal.live.url
    page = signed_in_page(browser, rights_portal.live)
    _say_no_to_the_newsletter(page, url)
    receipt = rights_portal.data / "receipt.jws"
    receipt.write_text(_receipt_from_the_record(page, url))
    checked = rights_portal.run("verify-receipt", str(receipt))  # type: ignore[operator]
    assert checked.startswith("VALID")
    assert '"event": "refused"' in checked


def test_a_record_entry_shows_the_earlier_text_of_a_changed_notice(
    browser: Browser, rights_portal: RightsPortal
) -> None:
    url = rights_portal.live.url
    page = signed_in_page(browser, rights_portal.live)
    page.goto(f"{url}/services/reading_history")
    page.click("button[value=yes]")
    page.locator("main").wait_for()
    old = "Keep a private list of the books and other items you borrow"
    changed = (ROOT / "deploy" / "catalog.toml").read_text(encoding="utf-8")
    changed = changed.replace(old, "Keep a list of what you borrow, shared with partners", 1)
    changed = changed.replace(
        'recipients = ["library"]\nretention_days = 1095',
        ('recipients = ["library", "partner_libraries"]\nretention_days = 1095'),
        1,
    )
    changed = child_versions_edited(
        changed, "reading_history", "recipients", lambda value: f"{value} (+ partner libraries)"
    )
    catalog = rights_portal.data / "changed-catalog.toml"
    catalog.write_text(changed, encoding="utf-8")
    rights_portal.run("publish", str(catalog))  # type: ignore[operator]
    page.goto(f"{url}/privacy/record")
    row = page.locator("tr", has_text="Reading history").filter(has_text="You said yes").last
    row.locator("a[href^='/notices/reading_history/v']").click()
    main = page.locator("main").inner_text()
    assert old in main
    assert "This is an earlier version" in main
    page.click("text=See every version of this privacy notice")
    history = page.locator("main").inner_text()
    assert "A fresh yes was needed" in history
    assert "Who receives it" in history


@pytest.mark.parametrize("locale", ["en", "ar"])
def test_receipt_and_notice_pages_have_no_wcag_violations(
    browser: Browser, rights_portal: RightsPortal, axe_source: str, locale: str
) -> None:
    url = rights_portal.live.url
    page = signed_in_page(browser, rights_portal.live)
    _say_no_to_the_newsletter(page, url)
    receipt = _receipt_from_the_record(page, url)
    choose_language(page, locale)
    found = {}
    page.goto(f"{url}/privacy/record")
    receipt_path = page.locator("a[href^='/privacy/receipts/']").last.get_attribute("href")
    version_path = page.locator("a[href^='/notices/newsletter/v']").last.get_attribute("href")
    for path in (receipt_path, version_path, "/privacy/my-data", "/notices/newsletter"):
        page.goto(f"{url}{path}")
        if violations := wcag_violations(page, axe_source):
            found[path] = violations
    page.goto(f"{url}/receipts/verify")
    page.fill("#receipt", receipt)
    page.click("button.primary")
    if violations := wcag_violations(page, axe_source):
        found["verify"] = violations
    choose_language(page, "en")
    assert found == {}


def test_an_arabic_receipt_and_notice_versions_in_arabic_and_hong_kong_chinese(
    browser: Browser, rights_portal: RightsPortal, axe_source: str
) -> None:
    """A decision taken in Arabic: its receipt shows the notice's Arabic words, right to left,
    with the company's name isolated; the version pages in Arabic and in Hong Kong Chinese.
    axe finds nothing on any of them."""
    url = rights_portal.live.url
    page = signed_in_page(browser, rights_portal.live)
    choose_language(page, "ar")
    page.goto(f"{url}/messages/messages")
    page.check("#cell-messages__hold_filled__sms")
    page.fill("#contact-sms", "+1 201 555 0123")
    page.locator("form.messages-form button.choice").first.click()
    page.locator("main").wait_for()
    page.goto(f"{url}/privacy/record")
    pair = "a[href^='/notices/messages__hold_filled__sms/v']"
    row = page.locator("tr").filter(has=page.locator(pair)).first
    receipt_path = row.locator("a[href^='/privacy/receipts/']").get_attribute("href")
    version_path = row.locator(pair).get_attribute("href")
    assert version_path is not None
    assert version_path.endswith("/ar")
    found = {}
    page.goto(f"{url}{receipt_path}")
    worded = page.locator(".receipt-facts .worded", has_text="TextRelay").first
    assert worded.get_attribute("lang") == "ar"
    assert worded.evaluate("e => getComputedStyle(e).direction") == "rtl"
    name = worded.locator("bdi", has_text="TextRelay Messaging Inc.")
    assert name.evaluate("e => getComputedStyle(e).direction") == "ltr"
    assert "TextRelay Messaging Inc. (text message provider)" in page.locator("main").inner_text()
    page.screenshot(path=str(ARTIFACTS / "receipt-ar.png"), full_page=True)
    if violations := wcag_violations(page, axe_source):
        found["receipt in Arabic"] = violations
    page.goto(f"{url}{version_path}")
    facts = page.locator("dl.notice-facts dd[lang=ar]").first
    assert facts.evaluate("e => getComputedStyle(e).direction") == "rtl"
    page.screenshot(path=str(ARTIFACTS / "notice-version-ar.png"), full_page=True)
    if violations := wcag_violations(page, axe_source):
        found["version in Arabic"] = violations
    choose_language(page, "zh_Hant_HK")
    page.goto(f"{url}{version_path.rpartition('/')[0]}/zh_Hant")
    assert page.locator("html").get_attribute("lang") == "zh-Hant-HK"
    assert "借閱證" not in page.locator("header").inner_text()
    page.screenshot(path=str(ARTIFACTS / "notice-version-zh-hk.png"), full_page=True)
    if violations := wcag_violations(page, axe_source):
        found["version in Hong Kong Chinese"] = violations
    page.goto(f"{url}{version_path}")  # the Arabic version on a Hong Kong page
    facts = page.locator("dl.notice-facts dd[lang=ar]").first
    assert facts.evaluate("e => getComputedStyle(e).direction") == "rtl"
    if violations := wcag_violations(page, axe_source):
        found["Arabic version on a Hong Kong page"] = violations
    choose_language(page, "en")
    assert found == {}
