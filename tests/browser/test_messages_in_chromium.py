"""Messages per kind and channel in real Chromium, against a real portal process whose
delivery worker sends to a real receiver standing in for the text-message gateway (it
checks every signature with an independent Standard Webhooks library): a patron turns on
"a hold is ready, by text" and nothing else, gives a number, sees that one choice on; the
gateway is told; turning it off erases the number here and the gateway receives a signed
deletion. With JavaScript, and without it in Arabic on a phone-sized screen; axe finds
nothing either way."""

from __future__ import annotations

import json
import re
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, Page

from tests.browser.conftest import (
    ARTIFACTS,
    PIN,
    LivePortal,
    choose_language,
    signed_in_page,
    wcag_violations,
)
from tests.delivery import ReceiverProcess
from tests.live import ROOT, portal_process

pytestmark = pytest.mark.browser

HOLD_BY_TEXT = "messages__hold_filled__sms"


@dataclass(frozen=True)
class Messaging:
    live: LivePortal
    gateway: ReceiverProcess
    token: str  # the library system's, with preferences:read and contacts:read

    def preferences(self) -> dict[str, object]:
        """What the library system reads of this patron: POST, by card number."""
        answer = httpx.post(
            f"{self.live.url}/api/v1/message-preferences",
            json={"patrons": [{"card_number": self.live.card}]},
            headers={"authorization": f"Bearer {self.token}"},
        )
        assert answer.status_code == 200, answer.text
        found: dict[str, object] = answer.json()["results"][0]
        return found


@pytest.fixture(scope="module")
def messaging(browser: Browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Messaging]:
    folder = tmp_path_factory.mktemp("messages")
    fast = {
        "PORTAL_DELIVERY_IN_PROCESS": "true",
        "PORTAL_DELIVERY_POLL_SECONDS": "0.2",
        "PORTAL_DELIVERY_RETRY_SECONDS": "0.5",
        "PORTAL_SYSTEM_ALLOWED_ADDRESSES": "127.0.0.1",
    }
    with portal_process(folder, extra_env=fast) as (url, run):
        secrets = tomllib.loads((folder / "system-secrets.toml").read_text(encoding="utf-8"))
        gateway = ReceiverProcess(folder, secrets["sms_gateway"])
        gateway.start()
        try:
            # The demo catalog, its text-message gateway on this machine.
            catalog = (ROOT / "deploy" / "catalog.toml").read_text(encoding="utf-8")
            local = folder / "catalog.toml"
            local.write_text(
                catalog.replace(
                    "https://hooks.textrelay.example/riverside/deletions", gateway.endpoint
                ),
                encoding="utf-8",
            )
            run("publish", str(local))
            card = "2000 5555 6666"
            code = re.search(r"setup code: (\S+)", run("create-patron", stdin=card + "\n"))
            assert code
            page = browser.new_page()
            page.goto(f"{url}/setup-pin")
            page.fill("#card", card)
            page.fill("#code", code.group(1))
            page.fill("#pin", PIN)
            page.fill("#pin_again", PIN)
            page.click("button.primary")
            page.close()
            shown = dict(
                re.findall(
                    r"^Client (id|secret): (\S+)$",
                    run(
                        "api-client", "add", "ils-messages", "--system", "ils",
                        "--scope", "preferences:read", "--scope", "contacts:read",
                    ),
                    flags=re.M,
                )
            )  # fmt: skip
            token = httpx.post(
                f"{url}/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=(shown["id"], shown["secret"]),
            ).json()["access_token"]
            yield Messaging(LivePortal(url, card, code.group(1)), gateway, token)
        finally:
            gateway.stop()


def bodies(gateway: ReceiverProcess, kind: str) -> list[dict[str, object]]:
    """What the gateway applied (a verified signature), of one kind, oldest first."""
    found = []
    for entry in gateway.entries("answered"):
        if entry.get("verified") and entry.get("applied"):
            body = json.loads(str(entry["body"]))
            if body["type"] == kind:
                found.append(body["data"])
    return found


def wait_for(gateway: ReceiverProcess, kind: str, count: int) -> list[dict[str, object]]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = bodies(gateway, kind)
        if len(found) >= count:
            return found
        time.sleep(0.1)
    raise AssertionError(f"the gateway did not receive {count} {kind}: {bodies(gateway, kind)}")


def ticked(page: Page) -> list[str]:
    return page.eval_on_selector_all(
        "input[type=checkbox][name=on]:checked", "boxes => boxes.map(box => box.value)"
    )


@pytest.mark.parametrize(
    ("javascript", "locale"),
    [(True, "en"), (False, "ar"), (True, "ar")],
    ids=["javascript", "arabic-phone-no-js", "arabic"],
)
def test_hold_ready_by_text_only_then_off_erases_the_number_here_and_at_the_gateway(
    browser: Browser, messaging: Messaging, axe_source: str, javascript: bool, locale: str
) -> None:
    live, gateway = messaging.live, messaging.gateway
    given_before = len(bodies(gateway, "consent.given"))
    deleted_before = len(bodies(gateway, "deletion.requested"))
    page = signed_in_page(browser, live, javascript=javascript)
    if not javascript:
        page.set_viewport_size({"width": 375, "height": 740})  # a phone
    if locale != "en":
        choose_language(page, locale)
    page.goto(f"{live.url}/messages/messages")
    assert page.locator("html").get_attribute("dir") == ("rtl" if locale == "ar" else "ltr")
    assert ticked(page) == []  # nothing ticked until the patron ticks it
    # A real table: ten kinds (row headers) by three channels (column headers).
    assert page.locator("table.message-grid thead th[scope=col]").count() == 4
    assert page.locator("table.message-grid tbody th[scope=row]").count() == 10
    if not javascript:
        # On a phone the grid scrolls inside its box; the page itself never scrolls sideways.
        widths = page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1]

    # Keyboard: the box is reached and ticked with the keyboard, by its label's name.
    page.locator(f"#cell-{HOLD_BY_TEXT}").focus()
    page.keyboard.press("Space")
    page.fill("#contact-sms", "(201) 555-0123")
    page.locator("form.messages-form button.choice").first.click()
    page.wait_for_load_state()
    assert ticked(page) == [HOLD_BY_TEXT]
    assert "+1 201-555-0123" in (page.locator("#kept-sms").text_content() or "")
    if javascript:  # axe runs in the page: with JavaScript (the Arabic run has its own)
        assert wcag_violations(page, axe_source) == []
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"messages-{locale}.png"), full_page=True)

    # The library system reads exactly that one choice, and where it goes.
    read = messaging.preferences()
    assert read["messages"] == [
        {
            "group": "messages",
            "kind": "Hold_Filled",
            "channel": "sms",
            "contains": ["branch", "pickup_by"],
            "titles": False,
        }
    ]
    assert read["contacts"] == {"sms": "+12015550123"}

    given = wait_for(gateway, "consent.given", given_before + 1)[-1]
    assert given["service"] == HOLD_BY_TEXT
    assert given["message"] == {
        "group": "messages",
        "kind": "Hold_Filled",
        "channel": "sms",
        "contains": ["branch", "pickup_by"],
        "contact": "+12015550123",
    }

    page.locator(f"#cell-{HOLD_BY_TEXT}").uncheck()
    page.locator("form.messages-form button.choice").first.click()
    page.wait_for_load_state()
    assert ticked(page) == []
    assert page.locator("#kept-sms").count() == 0  # erased here
    assert messaging.preferences()["messages"] == []
    deletion = wait_for(gateway, "deletion.requested", deleted_before + 1)[-1]
    assert deletion["service"] == HOLD_BY_TEXT
    assert deletion["message"]["contact_erased"] is True  # type: ignore[index]
    assert page.violations == []  # type: ignore[attr-defined]
    page.context.close()
