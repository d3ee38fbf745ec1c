"""Messages per kind and channel for minors, through HTTP: below the guardian-consent age
only a guardian verified in person ticks a box, and gives the number (the child's, kept for
the child); the child can always take a tick away, and the last one on a channel erases the
number; a teenager decides alone; a guardian linked with a code only reads."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date

import httpx2 as httpx
import pytest

from portal.contacts.services import contact_of
from portal.guardians.models import GuardianLink
from portal.ledger.models import ConsentEvent, EventKind
from portal.minors import services as minors
from tests.factories import (
    SECRET,
    aged,
    catalog_text,
    make_patron,
    messages_table,
    now,
    publish,
    service_table,
)
from tests.web import client_for, visible_text

HOLD_BY_TEXT = "messages__hold_filled__sms"
NUMBER = "(201) 555-0123"


@pytest.fixture
def portal_settings(settings):
    return replace(settings, timezone="UTC")


def catalog() -> str:
    return catalog_text(
        service_table("newsletter"),
        messages_table(channels=("email", "sms", "phone")),
    )


def grid_form(page: str) -> dict[str, str]:
    """Every hidden field of the grid form, as the browser sends them."""
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))


def ticked(page: str) -> list[str]:
    return re.findall(r'value="([a-z_]+)" id="[^"]+" checked', page)


async def child_with_guardian(portal, *, age: int = 10):
    child = await make_patron(born_on=aged(age))
    parent = await make_patron(born_on=date(1984, 4, 4))
    await minors.link_at_desk(SECRET, parent.card, child.card, "Maya", now=now(), timezone="UTC")
    return (
        child,
        await client_for(portal.app, child),
        await client_for(portal.app, parent),
    )


async def link_of(child_id: int) -> str:
    return str((await GuardianLink.get(child_id=child_id, ended_at=None)).id)


async def guardian_ticks(client: httpx.AsyncClient, data: dict[str, str]) -> httpx.Response:
    page = await client.get("/guardian/messages/messages")
    return await client.post("/guardian/messages/messages", data={**grid_form(page.text), **data})


async def test_a_child_cannot_tick_a_box_and_is_told_why_once(portal) -> None:
    await publish(catalog())
    child, child_client, _ = await child_with_guardian(portal)
    page = await child_client.get("/messages/messages")
    assert page.status_code == 200
    boxes = re.findall(r'<input type="checkbox" name="on" value="[a-z_]+" [^>]*>', page.text)
    assert len(boxes) == 2 * 3 + 1
    assert all(box.endswith(" disabled>") for box in boxes)
    text = visible_text(page.text)
    assert text.count("Only a parent or guardian can tick a box for you.") == 1
    assert "messages data en for a child" in text  # the child's version
    assert 'name="contact:' not in page.text  # the guardian gives where messages go
    # Short sentences for a child, the titles choice's included.
    assert "Say which book in my messages" in text
    assert "Without this tick, a message never says which book." in text

    refused = await child_client.post(
        "/messages/messages",
        data={**grid_form(page.text), "on": HOLD_BY_TEXT, "contact:sms": NUMBER},
    )
    assert refused.status_code == 403
    assert (
        await ConsentEvent.filter(patron_id=child.id)
        .exclude(kind=EventKind.GUARDIAN_LINKED)
        .count()
        == 0
    )
    assert await contact_of(child.id, "sms") is None


async def test_a_verified_guardian_turns_on_hold_ready_by_text_and_the_child_turns_it_off(
    portal,
) -> None:
    await publish(catalog())
    child, child_client, parent_client = await child_with_guardian(portal)
    home = await parent_client.get("/guardian")
    # One entry for the messaging service, not one per kind and channel.
    assert home.text.count('href="/guardian/messages/messages?child=') == 1
    assert "/guardian/services/messages__" not in home.text
    assert "messages title en : Off" in visible_text(home.text)

    page = await parent_client.get("/guardian/messages/messages")
    assert page.status_code == 200
    text = visible_text(page.text)
    assert visible_text(page.text.split("<h1>")[1].split("</h1>")[0]) == (
        "messages title en for Maya"
    )
    assert "messages data en" in text  # the full notice
    assert "What your child is shown" in text
    assert "messages data en for a child" in text
    assert "hold_filled en child_notice: hold_filled says en" in text  # the child's words
    assert text.index("What your child is shown") < page.text.index('class="message-grid"')
    assert "disabled" not in page.text.split('class="message-grid"')[1]

    saved = await guardian_ticks(parent_client, {"on": HOLD_BY_TEXT, "contact:sms": NUMBER})
    assert saved.status_code == 303
    after = await parent_client.get(saved.headers["location"])
    assert "1 choice changed" in visible_text(after.text)
    assert ticked(after.text) == [HOLD_BY_TEXT]
    assert "Kept now: +1 201-555-0123" in visible_text(after.text)
    given = await ConsentEvent.get(patron_id=child.id, kind=EventKind.GIVEN)
    assert given.actor == "guardian"
    # The number is the child's, kept for the child.
    assert await contact_of(child.id, "sms") == "+12015550123"
    assert "1 message on" in visible_text((await parent_client.get("/guardian")).text)

    # The child sees the tick, can take it away, and sees where messages go.
    mine = await child_client.get("/messages/messages")
    assert ticked(mine.text) == [HOLD_BY_TEXT]
    assert re.search(rf'value="{HOLD_BY_TEXT}" id="[^"]+" checked>', mine.text)  # not disabled
    assert "+1 201-555-0123" in visible_text(mine.text)
    off = await child_client.post("/messages/messages", data=grid_form(mine.text))
    assert off.status_code == 303
    assert await contact_of(child.id, "sms") is None
    events = await ConsentEvent.filter(patron_id=child.id).order_by("id")
    assert [(event.kind, event.actor, event.detail) for event in events[-2:]] == [
        (EventKind.WITHDRAWN, "patron", {}),
        (EventKind.ERASED, "patron", {"rows_deleted": 1, "contact": "sms"}),
    ]


async def test_a_child_cannot_change_the_number_a_guardian_gave(portal) -> None:
    await publish(catalog())
    child, child_client, parent_client = await child_with_guardian(portal)
    await guardian_ticks(parent_client, {"on": HOLD_BY_TEXT, "contact:sms": NUMBER})
    mine = await child_client.get("/messages/messages")
    changed = await child_client.post(
        "/messages/messages",
        data={**grid_form(mine.text), "on": HOLD_BY_TEXT, "contact:sms": "(201) 555-0199"},
    )
    assert changed.status_code == 403
    assert await contact_of(child.id, "sms") == "+12015550123"


async def test_a_teenager_decides_alone_and_the_guardian_cannot(portal) -> None:
    await publish(catalog())
    teen, teen_client, parent_client = await child_with_guardian(portal, age=15)
    page = await teen_client.get("/messages/messages")
    assert "disabled" not in page.text.split('class="message-grid"')[1].split("</table>")[0]
    assert "Only a parent or guardian" not in visible_text(page.text)
    saved = await teen_client.post(
        "/messages/messages",
        data={**grid_form(page.text), "on": HOLD_BY_TEXT, "contact:sms": NUMBER},
    )
    assert saved.status_code == 303

    review = await parent_client.get("/guardian/messages/messages")
    text = visible_text(review.text)
    assert "Between their age and adulthood they decide alone." in text
    assert "Their own choice, not shared with you" in text
    assert 'name="on"' not in review.text
    assert 'class="message-grid"' not in review.text  # not shared: nothing to read
    assert "What your child is shown" not in text  # at 15 they read the full notice
    assert "Their own choice, not shared with you" in visible_text(
        (await parent_client.get("/guardian")).text
    )
    before = await ConsentEvent.filter(patron_id=teen.id).count()
    mine = await teen_client.get("/messages/messages")
    forged = await parent_client.post(
        "/guardian/messages/messages",
        data={**grid_form(mine.text), "link": await link_of(teen.id), "all_off": "yes"},
    )
    assert forged.status_code == 403
    assert await ConsentEvent.filter(patron_id=teen.id).count() == before
    assert await contact_of(teen.id, "sms") == "+12015550123"


async def test_a_guardian_linked_with_a_code_only_reads(portal) -> None:
    await publish(catalog())
    child = await make_patron(born_on=aged(9))
    adult = await make_patron(born_on=date(1980, 1, 1))
    child_client = await client_for(portal.app, child)
    code = re.search(
        r"<strong>([\d-]+)</strong>", (await child_client.post("/privacy/guardian-code")).text
    )
    assert code
    adult_client = await client_for(portal.app, adult)
    linked = await adult_client.post("/guardian/link", data={"code": code.group(1), "label": "Jo"})
    assert linked.status_code == 303
    review = await adult_client.get("/guardian/messages/messages")
    assert "ask library staff to check your link in person" in visible_text(review.text)
    assert 'name="on"' not in review.text
    assert 'class="message-grid"' in review.text  # where each choice stands, read only
    assert 'name="contact:' not in review.text
    mine = await child_client.get("/messages/messages")
    refused = await adult_client.post(
        "/guardian/messages/messages",
        data={
            **grid_form(mine.text),
            "link": await link_of(child.id),
            "on": HOLD_BY_TEXT,
            "contact:sms": NUMBER,
        },
    )
    assert refused.status_code == 403
    assert await ConsentEvent.filter(patron_id=child.id, kind=EventKind.GIVEN).count() == 0
    assert await contact_of(child.id, "sms") is None
