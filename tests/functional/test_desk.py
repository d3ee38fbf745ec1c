"""The registration desk through its pages: onboarding with the screen handed over, minors
with a guardian present, look-up, unlock and PIN reset, guardian links, and the audit trail."""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest
from tortoise import Tortoise

from portal.desk.models import Handover
from portal.guardians.models import GuardianLink
from portal.i18n import format_moment, gettext, use_locale
from portal.ledger.models import ConsentEvent
from portal.patrons.models import Patron, PinSetupCode, PortalSession
from portal.settings import Settings
from portal.staff.models import StaffAuditEvent, StaffSession
from portal.staff.policy import AuditAction, Role
from tests.desk import (
    answer_notice,
    create_card,
    hand_over,
    make_staff,
    new_card_number,
    staff_sign_in,
)
from tests.factories import (
    aged,
    catalog_text,
    make_patron,
    messages_table,
    publish,
    service_table,
    standard_catalog,
)
from tests.support import portal_client
from tests.web import client_for, hidden, visible_text

LOCALES = ("en", "es", "ar")


@pytest.fixture
def portal_settings(settings: Settings) -> Settings:
    return replace(settings, locales=LOCALES)


async def _onboard_and_hand_over(portal, **fields: str):  # type: ignore[no-untyped-def]
    staff = await make_staff(Role.DESK)
    await staff_sign_in(portal.client, staff)
    card = new_card_number()
    created = await create_card(portal.client, card=card, **fields)
    assert created.status_code == 200, created.text
    await hand_over(portal.client, created)
    return staff, card


async def test_a_new_cardholder_sets_their_pin_and_chooses_on_the_handed_over_screen(
    portal,
) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    staff, card = await _onboard_and_hand_over(portal, locale="es")

    pin_step = await portal.client.get("/handover")
    assert pin_step.status_code == 200
    assert 'lang="es"' in pin_step.text  # the patron's language
    assert "/desk" not in pin_step.text  # nothing of the desk on the patron's screen
    mismatch = await portal.client.post("/handover/pin", data={"pin": "4826", "pin_again": "4862"})
    assert mismatch.status_code == 400
    assert "4826" not in mismatch.text  # never echoed
    await portal.client.post("/handover/pin", data={"pin": "4826", "pin_again": "4826"})

    assert (await answer_notice(portal.client, "yes")).status_code == 303
    assert (await answer_notice(portal.client, "no")).status_code == 303
    assert (await answer_notice(portal.client, "no")).status_code == 303
    done = await portal.client.get("/handover")
    assert "4826" not in done.text
    back = await portal.client.post("/handover/back")
    assert back.headers["location"] == "/staff/signin"

    await staff_sign_in(portal.client, staff)
    desk = await portal.client.get("/desk")
    text = visible_text(desk.text)
    assert "Card ready" in text
    assert "reading_history" not in desk.text
    assert "saved_lists" not in desk.text

    events = await ConsentEvent.filter(patron__card_lookup__isnull=False).order_by("id")
    decisions = [event for event in events if event.kind in ("given", "refused")]
    assert [(e.kind, e.channel, e.method, e.locale) for e in decisions] == [
        ("given", "desk", "desk_handover", "es"),
        ("refused", "desk", "desk_handover", "es"),
        ("refused", "desk", "desk_handover", "es"),
    ]
    assert all(e.witnessed_by and e.witnessed_by.startswith("staff-") for e in decisions)

    # The patron later signs in online and finds exactly those choices.
    portal.client.cookies.clear()
    signed_in = await portal.client.post("/signin", data={"card": card, "pin": "4826"})
    assert signed_in.status_code == 303
    await portal.client.post("/language", data={"locale": "en", "next": "/privacy"})
    overview = await portal.client.get("/privacy")
    assert overview.text.count('class="status on"') == 1
    # The record in English: the patron chose Spanish at the desk, and picks English here.
    await portal.client.post("/language", data={"locale": "en", "next": "/privacy/record"})
    record = visible_text((await portal.client.get("/privacy/record")).text)
    assert "at the library desk" in record
    assert "Library staff created your card" in record


async def test_handing_over_ends_the_staff_session_so_no_desk_page_is_reachable(portal) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    staff = await make_staff(Role.DESK)
    await staff_sign_in(portal.client, staff)
    staff_cookie = portal.client.cookies.get("portal_staff")
    created = await create_card(portal.client, card=new_card_number())
    await hand_over(portal.client, created)
    assert await StaffSession.filter(staff_id=staff.staff_id).count() == 0
    for path in ("/desk", "/desk/lookup", "/desk/links", "/staff/trail"):
        response = await portal.client.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == "/staff/signin"
    # Back button or a new tab with the old cookie: the session no longer exists.
    portal.client.cookies.set("portal_staff", staff_cookie or "")
    typed = await portal.client.post("/desk/cards", data={"card": new_card_number()})
    assert typed.headers["location"] == "/staff/signin"
    assert await Patron.all().count() == 1


async def test_a_handed_over_screen_clears_itself_when_idle(portal, portal_settings) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    portal.app.state.settings = replace(portal_settings, handover_idle_minutes=0)
    await _onboard_and_hand_over(portal)
    cleared = await portal.client.get("/handover")
    assert cleared.status_code == 410
    assert "This screen was cleared" in cleared.text
    refused = await portal.client.post("/handover/pin", data={"pin": "4826", "pin_again": "4826"})
    assert refused.status_code == 410
    assert (await Patron.first()).pin_hash is None  # type: ignore[union-attr]


async def test_decide_later_leaves_everything_off(portal) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    await _onboard_and_hand_over(portal)
    await portal.client.post("/handover/pin", data={"pin": "4826", "pin_again": "4826"})
    later = await portal.client.post("/handover/later")
    assert later.status_code == 303
    assert "All done" in (await portal.client.get("/handover")).text
    assert await ConsentEvent.filter(kind__in=("given", "refused")).count() == 0


@pytest.mark.parametrize(
    ("card", "code"),
    [("12", "That does not look like a library card number."), (None, "already exists")],
)
async def test_a_bad_or_existing_card_is_refused_and_nothing_is_created(
    portal, card: str | None, code: str
) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    existing = await make_patron()
    staff = await make_staff(Role.DESK)
    await staff_sign_in(portal.client, staff)
    refused = await create_card(portal.client, card=card or existing.card)
    assert refused.status_code in (400, 409)
    assert code in visible_text(refused.text)
    assert await Patron.all().count() == 1


async def test_a_child_needs_the_guardian_who_is_present_and_nothing_is_made_without(
    portal,
) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    staff = await make_staff(Role.DESK)
    await staff_sign_in(portal.client, staff)
    born = aged(9).isoformat()
    alone = await create_card(portal.client, card=new_card_number(), born_on=born)
    assert alone.status_code == 400
    unchecked = await create_card(
        portal.client,
        card=new_card_number(),
        born_on=born,
        guardian_card=new_card_number(),
        guardian_new="yes",
    )
    assert unchecked.status_code == 400
    assert await Patron.all().count() == 0


async def test_a_nine_year_old_chooses_a_pin_and_the_guardian_decides(portal) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    await _onboard_and_hand_over(
        portal,
        born_on=aged(9).isoformat(),
        locale="es",
        guardian_card=new_card_number(),
        guardian_new="yes",
        guardian_label="Lucía",
        identity_checked="yes",
    )
    link = await GuardianLink.get()
    assert link.method == "desk_handover"
    assert link.ended_at is None
    await portal.client.post("/handover/pin", data={"pin": "1397", "pin_again": "1397"})
    guardian_step = await portal.client.get("/handover")
    assert 'name="pin"' in guardian_step.text  # the new guardian's own PIN
    await portal.client.post("/handover/pin", data={"pin": "8642", "pin_again": "8642"})
    await answer_notice(portal.client, "yes")
    given = await ConsentEvent.get(kind="given")
    assert (given.actor, given.channel, given.acting_guardian_id) == (
        "guardian",
        "desk",
        link.guardian_id,
    )
    child = await Patron.get(id=link.child_id)
    guardian = await Patron.get(id=link.guardian_id)
    assert child.pin_hash is not None
    assert guardian.pin_hash is not None
    assert child.pin_hash != guardian.pin_hash


async def test_lookup_shows_only_existence_pin_guardians_and_lock_and_unlock_works(
    portal,
) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    patron = await make_patron()
    for _ in range(5):
        await portal.client.post("/signin", data={"card": patron.card, "pin": "0000"})
    staff = await make_staff(Role.DESK)
    await staff_sign_in(portal.client, staff)
    found = await portal.client.post("/desk/lookup", data={"card": patron.card})
    text = visible_text(found.text)
    assert "Exists" in text
    assert "PIN Set" in text
    assert "Locked after too many wrong PINs" in text
    assert patron.card not in found.text  # the number is not echoed into the page
    assert "reading_history" not in found.text
    unlocked = await portal.client.post("/desk/unlock", data={"ref": hidden(found.text, "ref")})
    assert unlocked.status_code == 200
    portal.client.cookies.delete("portal_staff")
    again = await portal.client.post("/signin", data={"card": patron.card, "pin": patron.pin})
    assert again.status_code == 303


async def test_a_pin_reset_ends_every_session_and_the_patron_is_told(portal) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    patron = await make_patron()
    await portal.client.post("/signin", data={"card": patron.card, "pin": patron.pin})
    assert await PortalSession.filter(patron_id=patron.id).count() == 1
    staff = await make_staff(Role.DESK)
    await staff_sign_in(portal.client, staff)
    found = await portal.client.post("/desk/lookup", data={"card": patron.card})
    reset = await portal.client.post("/desk/reset-pin", data={"ref": hidden(found.text, "ref")})
    assert reset.status_code == 200
    assert await PortalSession.filter(patron_id=patron.id).count() == 0
    old = await portal.client.post("/signin", data={"card": patron.card, "pin": patron.pin})
    assert old.status_code == 400
    await hand_over(portal.client, reset)
    await portal.client.post("/handover/pin", data={"pin": "7391", "pin_again": "7391"})
    assert "All done" in (await portal.client.get("/handover")).text  # no notices on a reset
    await portal.client.post("/handover/back")
    portal.client.cookies.clear()
    await portal.client.post("/signin", data={"card": patron.card, "pin": "7391"})
    record = visible_text((await portal.client.get("/privacy/record")).text)
    assert "Library staff reset your PIN" in record


async def test_a_setup_slip_holds_a_one_time_code_stored_only_hashed(portal) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    staff = await make_staff(Role.DESK)
    await staff_sign_in(portal.client, staff)
    card = new_card_number()
    created = await create_card(portal.client, card=card, locale="ar")
    slip = await portal.client.post("/desk/setup-slip", data={"ref": hidden(created.text, "ref")})
    assert 'lang="ar"' in slip.text
    assert 'dir="rtl"' in slip.text
    code = slip.text.split('class="code" dir="ltr">')[1].split("<")[0]
    stored = await PinSetupCode.get()
    assert code not in stored.code_lookup
    portal.client.cookies.clear()
    done = await portal.client.post(
        "/setup-pin", data={"card": card, "code": code, "pin": "5820", "pin_again": "5820"}
    )
    assert done.status_code == 200


async def test_linking_needs_the_identity_check_and_ending_needs_a_reason(portal) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    child = await make_patron(born_on=aged(8))
    parent = await make_patron()
    staff = await make_staff(Role.DESK)
    await staff_sign_in(portal.client, staff)
    form = {"guardian_card": parent.card, "child_card": child.card, "label": "Ana"}
    assert (await portal.client.post("/desk/links", data=form)).status_code == 400
    linked = await portal.client.post("/desk/links", data={**form, "identity_checked": "yes"})
    assert linked.status_code == 200
    assert (await GuardianLink.get()).method == "desk_handover"
    ending = {"guardian_card": parent.card, "child_card": child.card, "identity_checked": "yes"}
    assert (await portal.client.post("/desk/links/end", data=ending)).status_code == 400
    ended = await portal.client.post("/desk/links/end", data={**ending, "reason": "court order"})
    assert ended.status_code == 200
    link = await GuardianLink.get()
    assert link.ended_at is not None  # recorded, never deleted
    reasons = await StaffAuditEvent.filter(action="guardian_unlinked").values_list(
        "reason", flat=True
    )
    assert reasons == ["court order", "court order"]  # one entry for each of the two patrons


async def test_the_privacy_officer_reads_the_trail_and_desk_staff_cannot(portal) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    desk = await make_staff(Role.DESK)
    officer = await make_staff(Role.PRIVACY_OFFICER)
    await staff_sign_in(portal.client, desk)
    await create_card(portal.client, card=new_card_number())
    assert (await portal.client.get("/staff/trail")).status_code == 403
    portal.client.cookies.clear()
    await staff_sign_in(portal.client, officer)
    assert (await portal.client.get("/desk")).status_code == 403
    trail = await portal.client.get("/staff/trail", params={"action": "card_created"})
    assert trail.status_code == 200
    assert f"Staff {desk.username}" in trail.text
    assert "signed_in" not in visible_text(trail.text).split("Patron reference")[1]


async def test_a_staff_session_grants_nothing_on_patron_pages(portal) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    staff = await make_staff(Role.DESK, Role.PRIVACY_OFFICER)
    await staff_sign_in(portal.client, staff)
    for path in ("/privacy", "/privacy/record", "/guardian", "/saved-lists", "/reading-history"):
        response = await portal.client.get(path)
        assert response.status_code == 303
        assert response.headers["location"] == "/signin"


async def test_staff_sign_in_guesses_are_throttled_when_raced(portal) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    staff = await make_staff(Role.DESK)
    answers = await asyncio.gather(
        *(
            portal.client.post(
                "/staff/signin", data={"username": staff.username, "password": f"wrong {n}"}
            )
            for n in range(20)
        )
    )
    statuses = Counter(answer.status_code for answer in answers)
    assert statuses == {400: 5, 429: 15}


async def test_staff_sign_in_guesses_count_together_however_the_name_is_typed(portal) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    staff = await make_staff(Role.DESK)
    for typed in (staff.username, staff.username.upper(), staff.username.title()) * 2:
        answer = await portal.client.post(
            "/staff/signin", data={"username": typed, "password": "wrong"}
        )
    assert answer.status_code == 429


async def test_staff_cannot_hand_over_or_print_a_slip_for_a_card_that_has_a_pin(portal) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    patron = await make_patron()
    pin_before = (await Patron.get(id=patron.id)).pin_hash
    staff = await make_staff(Role.DESK)
    await staff_sign_in(portal.client, staff)
    found = await portal.client.post("/desk/lookup", data={"card": patron.card})
    ref = hidden(found.text, "ref")
    for purpose in ("new_card", "pin_reset"):
        refused = await portal.client.post("/desk/handover", data={"ref": ref, "purpose": purpose})
        assert refused.status_code == 409
    slip = await portal.client.post("/desk/setup-slip", data={"ref": ref})
    assert slip.status_code == 409
    assert (await Patron.get(id=patron.id)).pin_hash == pin_before
    assert await PinSetupCode.filter(patron_id=patron.id).count() == 0


async def test_a_card_created_page_cannot_be_handed_over_again_once_the_pin_is_set(portal) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    staff = await make_staff(Role.DESK)
    await staff_sign_in(portal.client, staff)
    created = await create_card(portal.client, card=new_card_number())
    await hand_over(portal.client, created)
    await portal.client.post("/handover/pin", data={"pin": "4826", "pin_again": "4826"})
    await portal.client.post("/handover/back")
    await staff_sign_in(portal.client, staff)
    again = await portal.client.post(
        "/desk/handover", data={"ref": hidden(created.text, "ref"), "purpose": "new_card"}
    )
    assert again.status_code == 409
    assert "already has a PIN" in visible_text(again.text)


async def test_a_pin_posted_after_the_screen_came_back_is_not_set(portal) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    await _onboard_and_hand_over(portal)
    handover_cookie = portal.client.cookies.get("portal_handover")
    await portal.client.post("/handover/back")
    portal.client.cookies.set("portal_handover", handover_cookie or "")
    late = await portal.client.post("/handover/pin", data={"pin": "4826", "pin_again": "4826"})
    assert late.status_code == 410
    assert (await Patron.get()).pin_hash is None


async def test_a_patron_signed_in_on_the_library_screen_is_forgotten(portal) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    _, card = await _onboard_and_hand_over(portal)
    await portal.client.post("/handover/pin", data={"pin": "4826", "pin_again": "4826"})
    # The patron types /signin on the handed-over screen and signs in: told why not, and no
    # session is started on the library's screen.
    refused = await portal.client.post("/signin", data={"card": card, "pin": "4826"})
    assert refused.status_code == 409
    assert await PortalSession.all().count() == 0
    mine = await portal.client.get("/privacy/record")
    assert mine.headers["location"] == "/signin"  # the library's screen is never a patron
    await portal.client.post("/handover/back")
    assert await PortalSession.all().count() == 0


async def test_a_teenager_decides_even_with_a_guardian_at_the_desk(portal) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    parent = await make_patron()
    await _onboard_and_hand_over(
        portal,
        born_on=aged(15).isoformat(),
        guardian_card=parent.card,
        guardian_label="Sam",
        identity_checked="yes",
    )
    await portal.client.post("/handover/pin", data={"pin": "1397", "pin_again": "1397"})
    screen = await portal.client.get("/handover")
    assert "for-guardian" not in screen.text
    await answer_notice(portal.client, "yes")
    given = await ConsentEvent.get(kind="given")
    assert (given.actor, given.acting_guardian_id) == ("patron", None)


async def test_an_answer_to_another_notice_than_the_one_on_screen_decides_nothing(portal) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    await _onboard_and_hand_over(portal)
    await portal.client.post("/handover/pin", data={"pin": "4826", "pin_again": "4826"})
    screen = await portal.client.get("/handover")
    assert hidden(screen.text, "service") == "reading_history"
    stale = await portal.client.post(
        "/handover/decision",
        data={
            "decision": "no",
            "service": "saved_lists",
            "notice_version": hidden(screen.text, "notice_version"),
            "revision": "0",
        },
    )
    assert stale.status_code == 303
    assert await ConsentEvent.filter(kind__in=("given", "refused")).count() == 0
    assert hidden((await portal.client.get("/handover")).text, "service") == "reading_history"


async def test_the_trail_takes_any_dates_without_failing(portal) -> None:
    officer = await make_staff(Role.PRIVACY_OFFICER)
    await staff_sign_in(portal.client, officer)
    for until in ("9999-12-31", "0001-01-01", "yesterday"):
        page = await portal.client.get("/staff/trail", params={"until": until, "since": until})
        assert page.status_code == 200


async def _handover_row() -> tuple[object, ...]:
    row = await Handover.get()
    return (row.expires_at, row.finished_at, row.position, row.pin_set, row.service_keys)


async def test_looking_at_the_handed_over_screen_changes_nothing(portal) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    await _onboard_and_hand_over(portal)
    await portal.client.post("/handover/pin", data={"pin": "4826", "pin_again": "4826"})
    before = await _handover_row()
    for _ in range(2):
        assert (await portal.client.get("/handover")).status_code == 200
    assert await _handover_row() == before


async def test_a_notice_withdrawn_meanwhile_is_passed_over_without_a_write_on_get(portal) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    await _onboard_and_hand_over(portal)
    await portal.client.post("/handover/pin", data={"pin": "4826", "pin_again": "4826"})
    keys = (await Handover.get()).service_keys
    await Handover.all().update(service_keys=["withdrawn", *keys])

    screen = await portal.client.get("/handover")
    assert screen.status_code == 200
    assert hidden(screen.text, "service") == keys[0]
    assert (await Handover.get()).position == 0
    assert (await answer_notice(portal.client, "no")).status_code == 303
    assert (await Handover.get()).position == 2  # past the withdrawn notice and the answered one


async def test_more_time_is_asked_for_with_a_post_and_a_get_keeps_the_idle_deadline(
    portal,
) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    await _onboard_and_hand_over(portal)
    soon = (await Handover.get()).expires_at - timedelta(minutes=1)
    await Handover.all().update(expires_at=soon)
    await portal.client.get("/handover")
    assert (await Handover.get()).expires_at == soon
    more = await portal.client.post("/handover/more-time")
    assert more.status_code == 303
    assert more.headers["location"] == "/handover"
    assert (await Handover.get()).expires_at > soon


async def test_the_desk_shows_the_returned_screen_without_a_write_on_get(portal) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    staff, _ = await _onboard_and_hand_over(portal)
    await portal.client.post("/handover/pin", data={"pin": "4826", "pin_again": "4826"})
    await portal.client.post("/handover/later")
    await portal.client.post("/handover/back")
    await staff_sign_in(portal.client, staff)
    trail = await StaffAuditEvent.all().count()
    before = await _handover_row()

    desk = await portal.client.get("/desk")

    assert "Card ready" in visible_text(desk.text)
    assert await _handover_row() == before
    assert await StaffAuditEvent.all().count() == trail
    again = await portal.client.get("/desk")
    assert "Card ready" not in visible_text(again.text), "shown once"


async def test_staff_taking_the_screen_back_unreturned_ends_the_hand_over(portal) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    staff, _ = await _onboard_and_hand_over(portal)
    await portal.client.post("/handover/pin", data={"pin": "4826", "pin_again": "4826"})
    # No "hand back": staff simply sign in again on the same screen.
    await staff_sign_in(portal.client, staff)

    row = await Handover.get()
    assert row.finished_at is not None, "the hand-over ends with the staff sign-in"
    finished = await StaffAuditEvent.filter(action=AuditAction.HANDOVER_FINISHED).count()
    assert finished == 1
    desk = await portal.client.get("/desk")
    assert "Card ready" in visible_text(desk.text)
    assert "cleared itself" not in visible_text(desk.text)


async def test_a_hand_over_is_not_begun_when_the_staff_session_cannot_end(
    portal, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    staff = await make_staff(Role.DESK)
    await staff_sign_in(portal.client, staff)
    created = await create_card(portal.client, card=new_card_number())
    await _refuse_ending_staff_sessions(database_url)
    caplog.set_level(logging.ERROR, logger="portal.errors")
    answer = await portal.client.post(
        "/desk/handover",
        data={"ref": hidden(created.text, "ref"), "purpose": hidden(created.text, "purpose")},
    )
    assert answer.status_code == 500
    # Logged by the error's type and where (portal.web.failures), as each engine raises it.
    [failure] = [record.getMessage() for record in caplog.records if record.name == "portal.errors"]
    assert failure.startswith("server error in POST /desk/handover: ")
    assert "sessions kept" not in failure  # the type and where, never what the error says
    assert not await Handover.exists(), "the screen is never handed over with staff signed in"


async def _refuse_ending_staff_sessions(database_url: str) -> None:
    connection = Tortoise.get_connection("default")
    if database_url.startswith("sqlite"):
        await connection.execute_script(
            "CREATE TRIGGER keep_sessions BEFORE DELETE ON staff_session "
            "BEGIN SELECT RAISE(ABORT, 'sessions kept'); END;"
        )
        return
    await connection.execute_script(
        "CREATE FUNCTION keep_sessions() RETURNS trigger AS $$ BEGIN "
        "RAISE EXCEPTION 'sessions kept'; END $$ LANGUAGE plpgsql; "
        "CREATE TRIGGER keep_sessions BEFORE DELETE ON staff_session "
        "FOR EACH ROW EXECUTE FUNCTION keep_sessions();"
    )


async def test_signing_in_on_a_handed_over_screen_says_why_it_cannot(portal) -> None:
    """The desk's screen ignores a patron session while it is handed over: a sign-in there
    would land back on the form with nothing said."""
    await publish(standard_catalog(LOCALES), LOCALES)
    patron = await make_patron()
    await _onboard_and_hand_over(portal)
    answer = await portal.client.post(
        "/signin", data={"card": patron.card, "pin": patron.pin}, follow_redirects=True
    )
    assert answer.status_code == 409
    assert "handed over at the library desk" in visible_text(answer.text)
    assert await PortalSession.filter(patron_id=patron.id).count() == 0  # nothing left behind
    assert "/handover" in answer.text  # the way back to the screen


async def test_signing_in_where_staff_are_signed_in_says_why_it_cannot(portal) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    patron = await make_patron()
    await staff_sign_in(portal.client, await make_staff(Role.DESK))
    answer = await portal.client.post(
        "/signin", data={"card": patron.card, "pin": patron.pin}, follow_redirects=True
    )
    assert answer.status_code == 409
    assert "staff are signed in on this screen" in visible_text(answer.text)
    assert await PortalSession.filter(patron_id=patron.id).count() == 0


async def _linked_with_the_childs_code(portal):  # type: ignore[no-untyped-def]
    child = await make_patron(born_on=aged(8))
    parent = await make_patron()
    code_page = await (await client_for(portal.app, child)).post("/privacy/guardian-code")
    code = code_page.text.split("<strong>")[1].split("</strong>")[0]
    parent_client = await client_for(portal.app, parent)
    linked = await parent_client.post("/guardian/link", data={"code": code, "label": "Ana"})
    assert linked.status_code == 303
    assert (await GuardianLink.get()).method == "guardian"
    return child, parent, parent_client


async def test_the_desk_checks_in_person_a_link_made_with_the_childs_code(portal) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    child, parent, parent_client = await _linked_with_the_childs_code(portal)
    code_link = await GuardianLink.get()
    staff = await make_staff(Role.DESK)
    await staff_sign_in(portal.client, staff)
    form = {"guardian_card": parent.card, "child_card": child.card, "label": "Ana"}
    checked = await portal.client.post("/desk/links", data={**form, "identity_checked": "yes"})
    assert checked.status_code == 200, checked.text
    link = await GuardianLink.get()  # the same link, not a second one
    assert (link.id, link.method, link.ended_at) == (code_link.id, "desk_handover", None)
    entry = await ConsentEvent.filter(patron_id=child.id).order_by("-id").first()
    assert entry is not None
    assert (entry.kind, entry.method.value, entry.channel.value) == (
        "guardian_linked",
        "desk_handover",
        "desk",
    )
    assert entry.witnessed_by is not None
    assert await StaffAuditEvent.filter(action="guardian_linked").count() == 2
    review = await parent_client.get("/guardian/services/reading_history")
    assert 'name="decision"' in review.text, "the guardian may now decide"


async def test_the_desk_ends_a_link_made_with_the_childs_code(portal) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    child, parent, _ = await _linked_with_the_childs_code(portal)
    staff = await make_staff(Role.DESK)
    await staff_sign_in(portal.client, staff)
    ending = {"guardian_card": parent.card, "child_card": child.card, "identity_checked": "yes"}
    ended = await portal.client.post("/desk/links/end", data={**ending, "reason": "unknown adult"})
    assert ended.status_code == 200
    assert (await GuardianLink.get()).ended_at is not None


async def test_after_a_pin_reset_the_patron_is_told_at_their_next_sign_in_until_dismissed(
    portal, portal_settings
) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    patron = await make_patron()
    staff = await make_staff(Role.DESK)
    await staff_sign_in(portal.client, staff)
    found = await portal.client.post("/desk/lookup", data={"card": patron.card})
    ref = hidden(found.text, "ref")
    assert (await portal.client.post("/desk/reset-pin", data={"ref": ref})).status_code == 200
    slip = await portal.client.post("/desk/setup-slip", data={"ref": ref})
    code = slip.text.split('class="code" dir="ltr">')[1].split("<")[0]
    reset_at = (await StaffAuditEvent.get(action="pin_reset")).occurred_at
    patron_client = portal_client(portal.app)
    await patron_client.post("/language", data={"locale": "es", "next": "/signin"})
    done = await patron_client.post(
        "/setup-pin", data={"card": patron.card, "code": code, "pin": "5820", "pin_again": "5820"}
    )
    assert done.status_code == 200
    signed_in = await patron_client.post("/signin", data={"card": patron.card, "pin": "5820"})
    first_page = await patron_client.get(signed_in.headers["location"])
    with use_locale("es"):
        when = format_moment(reset_at, portal_settings.timezone)
        heading = gettext("Library staff reset your PIN")
        what_to_do = gettext(
            "If you did not ask for this, tell the library: ask at the desk of %(library)s or "
            "call them, and say that your PIN was reset without your asking. Staff will check "
            "who did it and help you choose a new PIN."
        )
    notice = first_page.text.split('role="alert" id="pin-reset"')[1].split("</section>")[0]
    assert heading in visible_text(notice)
    assert when in visible_text(notice)
    assert what_to_do.split("%(")[0].strip() in visible_text(notice)  # in the patron's language
    again = await patron_client.get("/privacy")
    assert 'id="pin-reset"' in again.text, "shown until the patron dismisses it"
    dismissed = await patron_client.post("/privacy/pin-reset-notice")
    assert dismissed.status_code == 303
    assert 'id="pin-reset"' not in (await patron_client.get("/privacy")).text
    later = portal_client(portal.app)
    await later.post("/signin", data={"card": patron.card, "pin": "5820"})
    assert 'id="pin-reset"' not in (await later.get("/privacy")).text, "nor at the next sign-in"


async def test_a_guardian_deciding_at_the_desk_sees_the_childs_version_and_the_childs_name(
    portal,
) -> None:
    """As on /guardian pages: the full notice, headed with the child's name, and beside it
    "What your child is shown"."""
    await publish(standard_catalog(LOCALES), LOCALES)
    await _onboard_and_hand_over(
        portal,
        born_on=aged(9).isoformat(),
        locale="en",
        guardian_card=new_card_number(),
        guardian_new="yes",
        guardian_label="Lucía",
        identity_checked="yes",
    )
    await portal.client.post("/handover/pin", data={"pin": "1397", "pin_again": "1397"})
    await portal.client.post("/handover/pin", data={"pin": "8642", "pin_again": "8642"})
    screen = await portal.client.get("/handover")
    heading = visible_text(screen.text.split("<h1>", 1)[1].split("</h1>", 1)[0])
    assert heading.endswith("for Lucía")
    text = visible_text(screen.text)
    assert "What your child is shown" in text
    assert "for a child" in text  # the child's version's own words
    assert 'name="notice_version"' in screen.text  # and the guardian still decides


async def test_an_adult_at_the_desk_reads_the_notice_alone(portal) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    await _onboard_and_hand_over(portal, born_on=aged(30).isoformat(), locale="en")
    await portal.client.post("/handover/pin", data={"pin": "1397", "pin_again": "1397"})
    text = visible_text((await portal.client.get("/handover")).text)
    assert "What your child is shown" not in text
    assert "for a child" not in text


async def test_at_the_desk_a_messaging_service_is_one_step_with_its_grid_and_staff_never_see_it(
    portal,
) -> None:
    await publish(
        catalog_text(messages_table(locales=LOCALES), service_table("newsletter", locales=LOCALES)),
        LOCALES,
    )
    staff, _card = await _onboard_and_hand_over(portal, locale="en")
    await portal.client.post("/handover/pin", data={"pin": "4826", "pin_again": "4826"})
    step = await portal.client.get("/handover")
    # Two steps, not five: the messaging service is one, its notice then its grid.
    assert "Privacy notice 1 of 2" in visible_text(step.text)
    assert 'class="message-grid"' in step.text
    assert "checked" not in step.text
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', step.text))
    refused = await portal.client.post(
        "/handover/messages", data={**form, "on": "messages__hold_filled__sms"}
    )
    assert refused.status_code == 400
    assert re.search(r'value="messages__hold_filled__sms" id="[^"]+" checked', refused.text)
    saved = await portal.client.post(
        "/handover/messages",
        data={**form, "on": "messages__hold_filled__sms", "contact:sms": "+1 201 555 0123"},
    )
    assert saved.status_code == 303
    assert "Privacy notice 2 of 2" in visible_text((await portal.client.get("/handover")).text)
    given = await ConsentEvent.filter(kind="given").order_by("id")
    assert [(e.channel, e.method) for e in given] == [("desk", "desk_handover")]
    await portal.client.post("/handover/back")
    await staff_sign_in(portal.client, staff)
    desk = await portal.client.get("/desk")
    assert "messages" not in desk.text.replace("/messages", "")
    assert "555" not in desk.text
