"""Children's notices and the notice gate through HTTP: a yes leads on only to a known service
page, the page agrees with itself after an htmx swap, and a guardian of several children
always sees which child a page is about, with what that child is shown."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import httpx2 as httpx
import pytest

from portal.minors import services as minors
from portal.stores.reading_history import services as reading_history
from tests.factories import (
    SECRET,
    aged,
    catalog_text,
    make_patron,
    now,
    publish,
    service_table,
)
from tests.web import client_for, hidden, sign_in, visible_text

LOCALES = ("en", "es")
HTMX = {"hx-request": "true"}


@pytest.fixture
def portal_settings(settings):
    return replace(settings, locales=LOCALES, timezone="UTC")


def catalog() -> str:
    return catalog_text(
        service_table("reading_history", store="reading_history", locales=LOCALES),
        service_table("newsletter", locales=LOCALES),
    )


async def say_yes_at_the_gate(
    client: httpx.AsyncClient, onward: str | None, *, headers: dict[str, str] | None = None
) -> httpx.Response:
    gate = await client.get("/reading-history")
    data = {
        "decision": "yes",
        "notice_version": hidden(gate.text, "notice_version"),
        "revision": hidden(gate.text, "revision"),
    }
    if onward is not None:
        data["next"] = onward
    return await client.post("/services/reading_history/decision", data=data, headers=headers)


async def test_the_gate_in_front_of_a_service_page_carries_that_page(portal) -> None:
    await publish(catalog(), LOCALES)
    await sign_in(portal.client, await make_patron())
    gate = await portal.client.get("/reading-history")
    assert 'type="hidden" name="next" value="stores.reading_history"' in gate.text
    notice = await portal.client.get("/services/reading_history")
    assert "stores.reading_history" not in notice.text  # from My privacy: stays on it


async def test_a_yes_at_the_gate_leads_on_to_the_service_page(portal) -> None:
    await publish(catalog(), LOCALES)
    await sign_in(portal.client, await make_patron())
    answer = await say_yes_at_the_gate(portal.client, "stores.reading_history")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/reading-history"


async def test_with_htmx_a_yes_at_the_gate_loads_the_service_page(portal) -> None:
    await publish(catalog(), LOCALES)
    await sign_in(portal.client, await make_patron())
    answer = await say_yes_at_the_gate(portal.client, "stores.reading_history", headers=HTMX)
    assert answer.status_code == 200
    assert answer.headers["hx-redirect"] == "/reading-history"


@pytest.mark.parametrize(
    "onward",
    [
        "https://evil.example/phish",
        "//evil.example/phish",
        "/reading-history",
        "consent.privacy",  # a route, but not a service page
        "patrons.signout",
        "stores.reading_history\r\nLocation: https://evil.example",
    ],
)
async def test_a_yes_never_leads_anywhere_but_a_known_service_page(portal, onward: str) -> None:
    await publish(catalog(), LOCALES)
    for headers in (None, HTMX):
        client = await client_for(portal.app, await make_patron())
        answer = await say_yes_at_the_gate(client, onward, headers=headers)
        assert answer.status_code == 200, onward
        assert "location" not in answer.headers
        assert "hx-redirect" not in answer.headers
        assert "evil.example" not in answer.text
        assert "reading_history title en is on." in visible_text(answer.text)


async def test_after_an_htmx_decision_the_status_line_is_sent_again(portal) -> None:
    await publish(catalog(), LOCALES)
    await sign_in(portal.client, await make_patron())
    notice = await portal.client.get("/services/newsletter")
    answer = await portal.client.post(
        "/services/newsletter/decision",
        data={
            "decision": "yes",
            "notice_version": hidden(notice.text, "notice_version"),
            "revision": hidden(notice.text, "revision"),
        },
        headers=HTMX,
    )
    assert '<p id="status-line" hx-swap-oob="true">' in answer.text
    assert "On since" in answer.text
    assert "Off — you have not been asked yet" not in answer.text


async def test_turning_off_says_two_sentences_with_a_space_between(portal) -> None:
    await publish(catalog(), LOCALES)
    patron = await make_patron()
    await sign_in(portal.client, patron)
    for headers in (HTMX, None):
        await say_yes_at_the_gate(portal.client, None)
        await reading_history.record_loans(
            patron.id,
            [reading_history.Loan("Dune", "Herbert", date(2026, 3, 1))] * 3,
            now=now(),
        )
        notice = await portal.client.get("/services/reading_history")
        answer = await portal.client.post(
            "/services/reading_history/decision",
            data={
                "decision": "no",
                "notice_version": hidden(notice.text, "notice_version"),
                "revision": hidden(notice.text, "revision"),
            },
            headers=headers,
        )
        text = visible_text(answer.text)
        assert "reading_history title en is off. 3 saved items were deleted." in text


async def test_a_guardian_of_two_children_always_sees_which_child_a_page_is_about(
    portal,
) -> None:
    await publish(catalog(), LOCALES)
    guardian = await make_patron(born_on=date(1984, 4, 4))
    sam = await make_patron(born_on=aged(10))
    alex = await make_patron(born_on=aged(15))
    sam_link = await minors.link_at_desk(
        SECRET, guardian.card, sam.card, "Sam", now=now(), timezone="UTC"
    )
    alex_link = await minors.link_at_desk(
        SECRET, guardian.card, alex.card, "Alex", now=now(), timezone="UTC"
    )
    client = await client_for(portal.app, guardian)
    home = (await client.get("/guardian")).text
    assert f"/guardian/services/reading_history?child={sam_link.link_id}" in home
    unchosen = await client.get("/guardian/services/reading_history")
    assert "Which child is this about?" in visible_text(unchosen.text)
    assert 'name="decision"' not in unchosen.text
    for link, name in ((sam_link, "Sam"), (alex_link, "Alex")):
        page = await client.get(f"/guardian/services/reading_history?child={link.link_id}")
        heading = visible_text(page.text.split("<h1>")[1].split("</h1>")[0])
        assert heading == f"reading_history title en for {name}"
        assert f"Your choice for {name}" in visible_text(page.text)
    sams = visible_text(
        (await client.get(f"/guardian/services/reading_history?child={sam_link.link_id}")).text
    )
    # The full notice, and beside it the child's version Sam (10) reads.
    assert "reading_history data en" in sams
    assert "What your child is shown" in sams
    assert "reading_history data en for a child" in sams
    alexs = visible_text(
        (await client.get(f"/guardian/services/reading_history?child={alex_link.link_id}")).text
    )
    assert "What your child is shown" not in alexs  # at 15 Alex reads the full notice


async def test_a_guardians_decision_returns_to_that_childs_page(portal) -> None:
    await publish(catalog(), LOCALES)
    guardian = await make_patron(born_on=date(1984, 4, 4))
    sam = await make_patron(born_on=aged(10))
    alex = await make_patron(born_on=aged(9))
    await minors.link_at_desk(SECRET, guardian.card, sam.card, "Sam", now=now(), timezone="UTC")
    alex_link = await minors.link_at_desk(
        SECRET, guardian.card, alex.card, "Alex", now=now(), timezone="UTC"
    )
    client = await client_for(portal.app, guardian)
    path = f"/guardian/services/reading_history?child={alex_link.link_id}"
    page = await client.get(path)
    answer = await client.post(
        "/guardian/services/reading_history/decision",
        data={
            "decision": "yes",
            "link": hidden(page.text, "link"),
            "notice_version": hidden(page.text, "notice_version"),
            "revision": hidden(page.text, "revision"),
        },
    )
    assert answer.status_code == 303
    assert answer.headers["location"] == path


async def test_a_child_sees_the_childs_version_and_the_record_says_so(portal) -> None:
    await publish(catalog(), LOCALES)
    child = await make_patron(born_on=aged(10))
    client = await client_for(portal.app, child, "es")
    gate = await client.get("/services/reading_history")
    text = visible_text(gate.text)
    assert "reading_history summary es" in text
    assert "for a child" in text
    assert "todavía no te hemos preguntado" in text
    answer = await client.post(
        "/services/reading_history/decision",
        data={
            "decision": "no",
            "notice_version": hidden(gate.text, "notice_version"),
            "revision": hidden(gate.text, "revision"),
        },
    )
    assert "No guardamos nada sobre ti para esto." in visible_text(answer.text)
    record = visible_text((await client.get("/privacy/record")).text)
    assert "la versión para niños" in record
