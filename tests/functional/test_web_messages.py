"""Messages per kind and channel, as a patron uses them: a real table of labelled checkboxes
under the one notice, nothing ticked until they tick it, the number asked with the first
text message and erased with the last, and a refused save that loses nothing."""

from __future__ import annotations

import re

from portal.contacts.services import contact_of
from portal.ledger.models import ConsentEvent, EventKind
from tests.factories import catalog_text, make_patron, messages_table, publish, service_table
from tests.web import choose, sign_in, visible_text


def catalog() -> str:
    return catalog_text(
        service_table("newsletter"),
        messages_table(channels=("email", "sms", "phone")),
    )


def grid_form(page: str) -> dict[str, str]:
    """Every hidden field of the grid form, as the browser sends them."""
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page))


async def test_the_grid_is_a_table_of_labelled_boxes_none_ticked(portal) -> None:
    await publish(catalog())
    await sign_in(portal.client, await make_patron())
    page = await portal.client.get("/messages/messages")
    assert page.status_code == 200
    html = page.text
    assert '<th scope="col">Text message</th>' in html
    assert re.search(r'<th scope="row"><span class="kind">hold_filled en notice', html)
    boxes = re.findall(r'<input type="checkbox" name="on" value="([a-z_]+)" id="cell-\1"', html)
    assert len(boxes) == 2 * 3 + 1  # two kinds by three channels, and titles in messages
    assert "checked" not in html
    for key in boxes:
        assert f'<label for="cell-{key}"' in html
    label = re.search(
        r'for="cell-messages__hold_filled__sms" class="visually-hidden">(.*?)</label>', html
    )
    assert label is not None
    assert visible_text(label.group(1)) == "hold_filled en notice by Text message"
    # The notice comes first, whole.
    assert html.index("messages data en") < html.index('class="message-grid"')
    # My privacy shows the same grid, read only, and the way to it.
    privacy = await portal.client.get("/privacy")
    assert 'class="message-grid"' in privacy.text
    assert 'href="/messages/messages"' in privacy.text
    assert 'type="checkbox"' not in privacy.text


async def test_hold_ready_by_text_only_with_a_number_then_off_erases_it(portal) -> None:
    await publish(catalog())
    patron = await make_patron()
    await sign_in(portal.client, patron)
    page = await portal.client.get("/messages/messages")
    form = grid_form(page.text)

    refused = await portal.client.post(
        "/messages/messages", data={**form, "on": "messages__hold_filled__sms"}
    )
    assert refused.status_code == 400
    assert "Please give the number or address" in visible_text(refused.text)
    # Nothing changed, and nothing the patron did is lost: the box is still ticked.
    assert re.search(r'value="messages__hold_filled__sms" id="[^"]+" checked', refused.text)
    assert await ConsentEvent.filter(patron_id=patron.id).count() == 0

    bad = await portal.client.post(
        "/messages/messages",
        data={**form, "on": "messages__hold_filled__sms", "contact:sms": "12"},
    )
    assert bad.status_code == 400
    assert 'value="12"' in bad.text  # what they typed stays in the field

    saved = await portal.client.post(
        "/messages/messages",
        data={**form, "on": "messages__hold_filled__sms", "contact:sms": "(201) 555-0123"},
    )
    assert saved.status_code == 303
    after = await portal.client.get(saved.headers["location"])
    assert "1 choice changed" in visible_text(after.text)
    checked = re.findall(r'value="([a-z_]+)" id="[^"]+" checked', after.text)
    assert checked == ["messages__hold_filled__sms"]
    assert "Kept now: +1 201-555-0123" in visible_text(after.text)
    given = await ConsentEvent.filter(patron_id=patron.id, kind=EventKind.GIVEN)
    assert len(given) == 1

    form = grid_form(after.text)
    off = await portal.client.post("/messages/messages", data={**form, "all_off": "yes"})
    assert off.status_code == 303
    assert await contact_of(patron.id, "sms") is None
    events = await ConsentEvent.filter(patron_id=patron.id).order_by("id")
    assert [(event.kind, event.detail) for event in events[-2:]] == [
        (EventKind.WITHDRAWN, {}),
        (EventKind.ERASED, {"rows_deleted": 1, "contact": "sms"}),
    ]


async def test_a_stale_grid_changes_nothing(portal) -> None:
    await publish(catalog())
    patron = await make_patron()
    await sign_in(portal.client, patron)
    form = grid_form((await portal.client.get("/messages/messages")).text)
    first = await portal.client.post(
        "/messages/messages",
        data={**form, "on": "messages__hold_filled__email", "contact:email": "a@example.org"},
    )
    assert first.status_code == 303
    # The same form again, from another window: its revisions are old.
    again = await portal.client.post(
        "/messages/messages",
        data={**form, "on": ["messages__item_due__email"], "contact:email": "a@example.org"},
    )
    assert again.status_code == 409
    assert await ConsentEvent.filter(patron_id=patron.id, kind=EventKind.GIVEN).count() == 1


async def test_an_unknown_messaging_service_or_a_foreign_key_is_not_found(portal) -> None:
    await publish(catalog())
    await sign_in(portal.client, await make_patron())
    assert (await portal.client.get("/messages/newsletter")).status_code == 404
    assert (await portal.client.get("/messages/nothing")).status_code == 404
    form = grid_form((await portal.client.get("/messages/messages")).text)
    smuggled = await portal.client.post(
        "/messages/messages",
        data={**form, "version:newsletter": "1", "revision:newsletter": "0", "on": "newsletter"},
    )
    assert smuggled.status_code == 404


async def test_a_patron_whose_reminders_were_carried_over_is_told_on_their_next_visit(
    portal,
) -> None:
    old = service_table(
        "sms_notices", purposes=("notices",), data_categories=("contact_detail",), retention_days=30
    )
    await publish(catalog_text(service_table("newsletter"), old))
    patron = await make_patron()
    await sign_in(portal.client, patron)
    await choose(portal.client, "sms_notices", "yes")
    await publish(
        catalog_text(
            service_table("newsletter"),
            messages_table(carry_over=(("sms_notices", "sms", ("hold_filled",)),)),
        )
    )
    privacy = visible_text((await portal.client.get("/privacy")).text)
    assert "Your reminders now have a choice for each kind of message" in privacy
    page = await portal.client.get("/messages/messages")
    assert re.findall(r'value="([a-z_]+)" id="[^"]+" checked', page.text) == [
        "messages__hold_filled__sms"
    ]
    record = visible_text((await portal.client.get("/privacy/record")).text)
    assert "Kept on from your earlier choice of reminders" in record
    assert "Replaced by a choice for each kind of message" in record
    assert "sms_notices title en" in record  # the old service by its own notice's title
    # Once the patron chooses, the banner has said what it had to.
    form = grid_form(page.text)
    await portal.client.post("/messages/messages", data={**form, "all_off": "yes"})
    privacy = visible_text((await portal.client.get("/privacy")).text)
    assert "Your reminders now have a choice" not in privacy
