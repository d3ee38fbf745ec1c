"""Guardians and minors through HTTP: the notice review in the guardian's language, consent
on the child's behalf, and proof that no guardian-reachable response shows library use."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, timedelta

import httpx2 as httpx
import pytest
from starlette.routing import Route

from portal.consent import reads
from portal.consent.policy import Decision
from portal.guardians.models import GuardianLink
from portal.i18n import gettext, use_locale
from portal.ledger.models import ConsentEvent, EventKind
from portal.minors import services as minors
from portal.stores.reading_history import services as reading_history
from portal.stores.reading_history.models import HistoryEntry
from portal.stores.reading_history.services import history
from tests.factories import (
    SECRET,
    aged,
    catalog_text,
    make_patron,
    now,
    publish,
    service_table,
)
from tests.web import client_for, hidden, visible_text

LOCALES = ("en", "es", "ar")
SECRET_TITLE = "Private Diary Of A Very Secret Reader"
SECRET_LIST = "Books I hide from everyone"


@pytest.fixture
def portal_settings(settings):
    return replace(settings, locales=LOCALES, timezone="UTC")


def catalog() -> str:
    return catalog_text(
        service_table("reading_history", store="reading_history", locales=LOCALES),
        service_table("saved_lists", store="saved_lists", locales=LOCALES),
        service_table("fundraising", locales=LOCALES, minimum_age=18),
    )


async def guardian_agrees(client: httpx.AsyncClient, key: str) -> httpx.Response:
    page = await client.get(f"/guardian/services/{key}")
    return await client.post(
        f"/guardian/services/{key}/decision",
        data={
            "decision": "yes",
            "link": hidden(page.text, "link"),
            "notice_version": hidden(page.text, "notice_version"),
            "revision": hidden(page.text, "revision"),
        },
    )


async def ten_year_old_with_two_guardians(portal):
    child = await make_patron(born_on=aged(10))
    mother = await make_patron(born_on=date(1984, 4, 4))
    father = await make_patron(born_on=date(1983, 3, 3))
    await minors.link_at_desk(SECRET, mother.card, child.card, "Maya", now=now(), timezone="UTC")
    child_client = await client_for(portal.app, child, "en")
    code_page = await child_client.post("/privacy/guardian-code")
    code = re.search(r"<strong>([\d-]+)</strong>", code_page.text)
    assert code, code_page.text
    father_client = await client_for(portal.app, father, "ar")
    linked = await father_client.post(
        "/guardian/link", data={"code": code.group(1), "label": "مايا"}
    )
    assert linked.status_code == 303
    return child, child_client, await client_for(portal.app, mother, "es"), father_client


async def test_child_waits_for_a_guardian_who_consents_in_their_own_language(portal) -> None:
    await publish(catalog(), LOCALES)
    child, child_client, mother_client, father_client = await ten_year_old_with_two_guardians(
        portal
    )
    privacy = visible_text((await child_client.get("/privacy")).text)
    assert "Waiting for a parent or guardian to agree." in privacy
    assert "You have 2 parents or guardians linked." in privacy
    gate = await child_client.get("/reading-history")
    assert 'value="yes"' not in gate.text
    assert 'value="no"' in gate.text

    review = await mother_client.get("/guardian/services/reading_history")
    assert '<html lang="es"' in review.text
    assert "reading_history data es" in review.text  # the Spanish notice
    decided = await guardian_agrees(mother_client, "reading_history")
    assert decided.status_code == 303
    event = await ConsentEvent.get(patron_id=child.id, kind=EventKind.GIVEN)
    assert (event.actor, event.locale) == ("guardian", "es")
    assert "My reading history" in (await child_client.get("/reading-history")).text
    father_view = visible_text((await father_client.get("/guardian")).text)
    with use_locale("ar"):  # the father reads Arabic
        agreed = gettext("On — a parent or guardian agreed")
    assert f"reading_history title ar : {agreed}" in father_view


async def test_services_not_offered_to_minors_show_no_choice(portal) -> None:
    await publish(catalog(), LOCALES)
    _, child_client, mother_client, _ = await ten_year_old_with_two_guardians(portal)
    assert "Not offered at your age" in visible_text((await child_client.get("/privacy")).text)
    review = await mother_client.get("/guardian/services/fundraising")
    assert 'name="decision"' not in review.text


async def test_teenager_decides_alone_and_chooses_what_guardians_see(portal) -> None:
    await publish(catalog(), LOCALES)
    teen = await make_patron(born_on=aged(15))
    parent = await make_patron(born_on=date(1980, 1, 1))
    await minors.link_at_desk(SECRET, parent.card, teen.card, "Sam", now=now(), timezone="UTC")
    teen_client = await client_for(portal.app, teen, "en")
    page = await teen_client.get("/services/reading_history")
    await teen_client.post(
        "/services/reading_history/decision",
        data={"decision": "yes", "notice_version": hidden(page.text, "notice_version"),
              "revision": hidden(page.text, "revision")},
    )  # fmt: skip
    parent_client = await client_for(portal.app, parent, "en")
    home = visible_text((await parent_client.get("/guardian")).text)
    assert "Their own choice, not shared with you" in home
    assert "On" not in home.split("Sam", 1)[1].split("Link a child")[0].split()
    await teen_client.post("/privacy/sharing", data={"share": "yes"})
    home = visible_text((await parent_client.get("/guardian")).text)
    assert "reading_history title en : On" in home, home


async def test_no_guardian_reachable_response_contains_the_childs_library_use(portal) -> None:
    await publish(catalog(), LOCALES)
    child, child_client, mother_client, father_client = await ten_year_old_with_two_guardians(
        portal
    )
    await guardian_agrees(mother_client, "reading_history")
    await guardian_agrees(mother_client, "saved_lists")
    await reading_history.record_loans(
        child.id, [reading_history.Loan(SECRET_TITLE, "Anonymous", date(2026, 1, 2))], now=now()
    )
    await child_client.post("/saved-lists", data={"name": SECRET_LIST})
    assert SECRET_TITLE in (await child_client.get("/reading-history")).text  # it is there

    keys = ["reading_history", "saved_lists", "fundraising"]
    for guardian in (mother_client, father_client):
        seen: list[str] = []
        for route in portal.app.routes:
            if not isinstance(route, Route) or route.path.startswith("/static"):
                continue
            paths = (
                [route.path.replace("{key:catalog_key}", key) for key in keys]
                if "{" in route.path
                else [route.path]
            )
            for path in paths:
                for method in sorted(route.methods or ()):
                    if method == "HEAD" or path == "/signout":
                        continue
                    response = await guardian.request(
                        method, path, data={"link": "1", "list_id": "1", "decision": "no"}
                    )
                    seen.append(f"{method} {path} {response.status_code}")
                    body = response.text + str(response.headers)
                    assert SECRET_TITLE not in body, f"{method} {path}"
                    assert SECRET_LIST not in body, f"{method} {path}"
        assert len(seen) > 20  # every route was really tried
    # Still the child's, and still kept: the walk ended the mother's link (POST
    # /guardian/unlink), which pauses what she agreed to but erases nothing.
    assert SECRET_TITLE in {loan.title for loan in await history(child.id)}


async def test_a_new_adult_is_told_they_are_in_charge_and_decides(portal) -> None:
    await publish(catalog(), LOCALES)
    teen = await make_patron(born_on=aged(18))  # turned 18 this year
    parent = await make_patron(born_on=date(1975, 1, 1))
    years_ago = now() - timedelta(days=8 * 365)  # when they were about 10
    link_id = (
        await minors.link_at_desk(
            SECRET, parent.card, teen.card, "Kim", now=years_ago, timezone="UTC"
        )
    ).link_id
    view = await reads.service_view(teen.id, "reading_history", "en")
    await minors.guardian_decide(
        parent.id, link_id, "reading_history", Decision.YES, notice_version_id=view.notice.id,
        expected_revision=0, locale="en", now=years_ago, timezone="UTC",
    )  # fmt: skip
    await reading_history.record_loans(
        teen.id, [reading_history.Loan("Coraline", "", date(2020, 1, 1))], now=now()
    )
    report = await minors.coming_of_age(now=now(), timezone="UTC")
    assert report.patrons == 1

    client = await client_for(portal.app, teen, "en")
    privacy = visible_text((await client.get("/privacy")).text)
    assert "You are in charge of your privacy now" in privacy
    assert "Paused" in privacy
    parent_client = await client_for(portal.app, parent, "en")
    assert "My children" not in visible_text((await parent_client.get("/privacy")).text)
    page = await client.get("/services/reading_history")
    await client.post(
        "/services/reading_history/decision",
        data={"decision": "no", "notice_version": hidden(page.text, "notice_version"),
              "revision": hidden(page.text, "revision")},
    )  # fmt: skip
    assert await HistoryEntry.filter(patron_id=teen.id).count() == 0
    privacy = visible_text((await client.get("/privacy")).text)
    assert "You are in charge of your privacy now" not in privacy


async def test_guardian_refusals_answer_with_the_status_of_their_code(portal) -> None:
    await publish(catalog(), LOCALES)
    _, _, mother_client, _ = await ten_year_old_with_two_guardians(portal)
    page = await mother_client.get("/guardian/services/reading_history")
    link = hidden(page.text, "link")
    fundraising = await reads.service_view(0, "fundraising", "es")
    shown = hidden(page.text, "notice_version")
    cases = [  # (service, form, status, message)
        ("reading_history", {"link": "99999", "notice_version": shown}, 404,
         "You are not linked to that child."),
        ("reading_history", {"link": link}, 400,
         "Please read the privacy notice and choose from it."),
        ("fundraising", {"link": link, "notice_version": str(fundraising.notice.id)}, 403,
         "The library does not offer this service at your age."),
    ]  # fmt: skip
    for key, fields, status, message in cases:
        answer = await mother_client.post(
            f"/guardian/services/{key}/decision",
            data={"decision": "yes", "revision": "0", **fields},
        )
        assert answer.status_code == status, (key, fields)
        with use_locale("es"):
            assert gettext(message) in visible_text(answer.text)


async def test_a_code_link_shows_notices_but_no_choice_and_the_child_is_told(portal) -> None:
    await publish(catalog(), LOCALES)
    _, child_client, _, father_client = await ten_year_old_with_two_guardians(portal)
    review = await father_client.get("/guardian/services/reading_history")
    assert 'name="decision"' not in review.text
    with use_locale("ar"):
        assert gettext("Other parents or guardians") in visible_text(
            (await father_client.get("/guardian")).text
        )
    told = visible_text((await child_client.get("/privacy")).text)
    assert "checked in person at the library" in told
    assert "with a code from the child" in told


async def test_guessing_link_codes_is_throttled(portal) -> None:
    await publish(catalog(), LOCALES)
    adult = await make_patron(born_on=date(1980, 1, 1))
    client = await client_for(portal.app, adult, "en")
    answers = [
        (await client.post("/guardian/link", data={"code": f"0000-0000-{n:04d}", "label": "x"}))
        for n in range(6)
    ]
    assert [answer.status_code for answer in answers] == [400] * 5 + [429]
    assert "Too many tries" in answers[-1].text


async def test_a_child_ends_a_link_an_adult_made_with_their_code(portal) -> None:
    await publish(catalog(), LOCALES)
    child, child_client, _, father_client = await ten_year_old_with_two_guardians(portal)
    page = (await child_client.get("/privacy")).text
    assert page.count('name="link"') == 1, "only the code link has a button"
    ended = await child_client.post(
        "/privacy/guardian-links/end", data={"link": hidden(page, "link")}
    )
    assert ended.status_code == 303
    assert "A link ended on" in visible_text((await child_client.get("/privacy")).text)
    with use_locale("ar"):
        assert gettext("No child is linked to your account yet.") in visible_text(
            (await father_client.get("/guardian")).text
        )
    event = await ConsentEvent.filter(patron_id=child.id).order_by("-id").first()
    assert event is not None
    assert event.kind is EventKind.GUARDIAN_LINK_ENDED
    assert event.detail["reason"] == "ended_by_child"
    assert event.actor.value == "patron"


async def test_a_child_cannot_end_a_link_staff_checked_in_person(portal) -> None:
    await publish(catalog(), LOCALES)
    child, child_client, _, _ = await ten_year_old_with_two_guardians(portal)
    in_person = await GuardianLink.get(child_id=child.id, method="desk_handover")
    refused = await child_client.post("/privacy/guardian-links/end", data={"link": in_person.id})
    assert refused.status_code == 403
    assert (await GuardianLink.get(id=in_person.id)).ended_at is None
