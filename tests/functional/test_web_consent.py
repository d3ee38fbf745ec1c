"""What a patron does in the browser, through real HTTP against the running app."""

from __future__ import annotations

import re
from datetime import date

from portal.stores.reading_history import services as reading_history
from portal.stores.reading_history.models import HistoryEntry
from tests.factories import make_patron, now, publish, standard_catalog
from tests.web import choose, hidden, sign_in, visible_text


async def test_signed_out_visitor_is_sent_to_sign_in(portal) -> None:
    await publish(standard_catalog())
    response = await portal.client.get("/privacy")
    assert response.status_code == 303
    assert response.headers["location"] == "/signin"


async def test_new_patron_finds_everything_off_and_nothing_preselected(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    await sign_in(portal.client, patron)
    page = await portal.client.get("/privacy")
    assert page.status_code == 200
    assert page.text.count("Off — you have not been asked yet") == 3
    assert "checked" not in page.text
    assert "Turn everything off" in page.text


async def test_service_is_gated_by_its_notice_with_two_equal_choices(portal) -> None:
    await publish(standard_catalog())
    await sign_in(portal.client, await make_patron())
    page = await portal.client.get("/reading-history")
    assert page.status_code == 200
    assert "reading_history data en" in page.text
    assert "reading_history retention en" in page.text
    buttons = re.findall(
        r'<button type="submit" name="decision" value="(\w+)" class="(\w+)"', page.text
    )
    assert buttons == [("yes", "choice"), ("no", "choice")]
    assert "My reading history" not in page.text


async def test_opt_in_accrue_history_opt_out_and_it_is_gone(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    await sign_in(portal.client, patron)
    decided = await choose(portal.client, "reading_history", "yes")
    assert decided.status_code == 200
    assert "is on." in decided.text
    await reading_history.record_loans(
        patron.id,
        [reading_history.Loan("The Dispossessed", "Ursula K. Le Guin", date(2026, 6, 1))],
        now=now(),
    )
    history = await portal.client.get("/reading-history")
    assert "The Dispossessed" in history.text
    withdrawn = await choose(portal.client, "reading_history", "no")
    assert withdrawn.status_code == 200
    assert "1 saved item was deleted." in visible_text(withdrawn.text)
    assert await HistoryEntry.filter(patron_id=patron.id).count() == 0
    record = await portal.client.get("/privacy/record")
    for said in ("You said yes", "You turned it off", "1 saved item deleted"):
        assert said in visible_text(record.text)


async def test_htmx_decision_returns_only_the_fragment(portal) -> None:
    await publish(standard_catalog())
    await sign_in(portal.client, await make_patron())
    page = await portal.client.get("/services/newsletter")
    response = await portal.client.post(
        "/services/newsletter/decision",
        data={
            "decision": "no",
            "notice_version": hidden(page.text, "notice_version"),
            "revision": hidden(page.text, "revision"),
        },
        headers={"hx-request": "true"},
    )
    assert response.status_code == 200
    assert response.text.lstrip().startswith('<div id="choice"')
    assert "stays off" in response.text


async def test_stale_form_gets_a_clear_answer_and_the_current_state(portal) -> None:
    await publish(standard_catalog())
    await sign_in(portal.client, await make_patron())
    page = await portal.client.get("/services/newsletter")
    form = {"notice_version": hidden(page.text, "notice_version"), "revision": "0"}
    await portal.client.post("/services/newsletter/decision", data={**form, "decision": "yes"})
    await choose(portal.client, "newsletter", "no")
    replay = await portal.client.post(
        "/services/newsletter/decision", data={**form, "decision": "yes"}
    )
    assert replay.status_code == 409
    assert "Your choices changed in another window" in replay.text
    assert "you turned it off" in replay.text


async def test_malformed_decision_is_refused_without_change(portal) -> None:
    await publish(standard_catalog())
    await sign_in(portal.client, await make_patron())
    response = await portal.client.post(
        "/services/newsletter/decision", data={"decision": "maybe", "revision": "x"}
    )
    assert response.status_code == 400
    assert "Please read the privacy notice and choose from it." in response.text


async def test_unknown_service_is_a_friendly_404(portal) -> None:
    await publish(standard_catalog())
    await sign_in(portal.client, await make_patron())
    response = await portal.client.get("/services/telepathy")
    assert response.status_code == 404
    assert "Page not found" in response.text


async def test_turn_everything_off_is_one_action(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    await sign_in(portal.client, patron)
    for key in ("reading_history", "saved_lists", "newsletter"):
        await choose(portal.client, key, "yes")
    response = await portal.client.post("/privacy/everything-off")
    assert response.status_code == 303
    page = await portal.client.get(response.headers["location"])
    assert page.text.count("you turned it off on") == 3
    assert "Every optional service is now off" in page.text


async def test_saved_lists_flow(portal) -> None:
    await publish(standard_catalog())
    await sign_in(portal.client, await make_patron())
    await choose(portal.client, "saved_lists", "yes")
    await portal.client.post("/saved-lists", data={"name": "Summer reading"})
    page = await portal.client.get("/saved-lists")
    list_id = hidden(page.text, "list_id")
    await portal.client.post("/saved-lists/items", data={"list_id": list_id, "title": "Piranesi"})
    page = await portal.client.get("/saved-lists")
    assert "Summer reading" in page.text
    assert "Piranesi" in page.text
    empty_name = await portal.client.post("/saved-lists", data={"name": "  "})
    assert empty_name.status_code == 400
    assert "Please give your list a name." in empty_name.text
