"""Minors and guardians against a real database: who may turn services on, what guardians
see, and handing the account over at majority."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from portal.catalog.jurisdiction import AgeBand
from portal.consent import reads
from portal.consent.models import ConsentState
from portal.consent.policy import ConsentError, Decision, Status
from portal.decisions import services as decisions
from portal.guardians.models import GuardianLink
from portal.ledger.models import ConsentEvent, EventKind
from portal.minors import services as minors
from portal.patrons import services as patrons_services
from portal.stores.reading_history import services as reading_history
from portal.stores.reading_history.models import HistoryEntry
from tests.factories import (
    SECRET,
    catalog_text,
    decides,
    make_patron,
    publish,
    service_table,
)

pytestmark = pytest.mark.usefixtures("db")

NOW = datetime(2026, 7, 1, 16, 0, tzinfo=UTC)
TZ = "America/New_York"
LOCALES = ("en", "es")


def catalog(preset: str = "US") -> str:
    return catalog_text(
        service_table("reading_history", store="reading_history", locales=LOCALES),
        service_table("ebook_vendor", locales=LOCALES, minimum_age=13),
        service_table("fundraising", locales=LOCALES, minimum_age=18),
        preset=preset,
    )


async def notice_id(key: str, locale: str = "en") -> int:
    view = await reads.service_view(0, key, locale)
    return view.notice.id


async def patron_says(patron_id: int, key: str, decision: Decision, *, now: datetime = NOW):
    return await decides(patron_id, key, decision, at=now, timezone=TZ)


async def guardian_says(
    guardian_id: int, link_id: int, child_id: int, key: str, decision: Decision,
    *, locale: str = "en", now: datetime = NOW,
):  # fmt: skip
    view = await reads.service_view(child_id, key, locale)
    return await minors.guardian_decide(
        guardian_id, link_id, key, decision, notice_version_id=view.notice.id,
        expected_revision=view.revision, locale=locale, now=now, timezone=TZ,
    )  # fmt: skip


async def family(
    child_born: date, *, guardians: int = 1, jurisdiction: str | None = None, at: datetime = NOW
):
    child = await make_patron(born_on=child_born, jurisdiction=jurisdiction)
    links = []
    for n in range(guardians):
        guardian = await make_patron(born_on=date(1985, 5, 5))
        made = await minors.link_at_desk(
            SECRET, guardian.card, child.card, f"Child {n}", now=at, timezone=TZ
        )
        link_id = made.link_id
        links.append((guardian, link_id))
    return child, links


async def test_a_ten_year_old_cannot_turn_a_service_on_alone() -> None:
    await publish(catalog(), LOCALES)
    child, _ = await family(date(2016, 3, 3))
    with pytest.raises(ConsentError) as raised:
        await patron_says(child.id, "reading_history", Decision.YES)
    assert raised.value.code == "guardian_required"
    assert not await ConsentEvent.filter(patron_id=child.id, service_id__not_isnull=True).exists()


async def test_a_guardians_consent_is_recorded_with_the_guardian_and_their_language() -> None:
    await publish(catalog(), LOCALES)
    child, [(guardian, link_id)] = await family(date(2016, 3, 3))
    outcome = await guardian_says(
        guardian.id, link_id, child.id, "reading_history", Decision.YES, locale="es"
    )
    assert outcome.status is Status.ON
    event = await ConsentEvent.get(patron_id=child.id, kind=EventKind.GIVEN)
    assert (event.actor, event.method, event.acting_guardian_id) == (
        "guardian",
        "guardian",
        guardian.id,
    )
    assert event.locale == "es"  # the notice the guardian read, in the guardian's language
    state = await ConsentState.get(patron_id=child.id)
    assert state.granted_by == "guardian"


async def test_either_guardian_or_the_child_can_withdraw_and_it_erases() -> None:
    await publish(catalog(), LOCALES)
    child, [(first, first_link), (second, second_link)] = await family(
        date(2016, 3, 3), guardians=2
    )
    await guardian_says(first.id, first_link, child.id, "reading_history", Decision.YES)
    await reading_history.record_loans(
        child.id, [reading_history.Loan("Matilda", "", date(2026, 6, 1))], now=NOW
    )
    outcome = await guardian_says(second.id, second_link, child.id, "reading_history", Decision.NO)
    assert outcome.erased == 1
    await guardian_says(first.id, first_link, child.id, "reading_history", Decision.YES)
    await reading_history.record_loans(
        child.id, [reading_history.Loan("Holes", "", date(2026, 6, 2))], now=NOW
    )
    outcome = await patron_says(child.id, "reading_history", Decision.NO)
    assert outcome.erased == 1
    assert await HistoryEntry.filter(patron_id=child.id).count() == 0


async def test_a_fifteen_year_old_decides_alone_under_us_rules() -> None:
    await publish(catalog(), LOCALES)
    teen, [(guardian, link_id)] = await family(date(2011, 1, 1))
    with pytest.raises(ConsentError) as raised:
        await guardian_says(guardian.id, link_id, teen.id, "reading_history", Decision.YES)
    assert raised.value.code == "not_guardians_choice"
    assert (await patron_says(teen.id, "reading_history", Decision.YES)).status is Status.ON


async def test_a_fifteen_year_old_needs_a_guardian_in_a_16_year_gdpr_country() -> None:
    await publish(catalog("GDPR-DE"), LOCALES)
    teen, [(guardian, link_id)] = await family(date(2011, 1, 1))
    with pytest.raises(ConsentError) as raised:
        await patron_says(teen.id, "reading_history", Decision.YES)
    assert raised.value.code == "guardian_required"
    outcome = await guardian_says(guardian.id, link_id, teen.id, "reading_history", Decision.YES)
    assert outcome.status is Status.ON


async def test_a_patrons_own_jurisdiction_overrides_the_librarys() -> None:
    await publish(catalog("US"), LOCALES)
    teen = await make_patron(born_on=date(2011, 1, 1), jurisdiction="GDPR-DE")
    with pytest.raises(ConsentError) as raised:
        await patron_says(teen.id, "reading_history", Decision.YES)
    assert raised.value.code == "guardian_required"


async def test_services_not_offered_below_their_minimum_age() -> None:
    await publish(catalog(), LOCALES)
    child, [(guardian, link_id)] = await family(date(2014, 7, 2))  # 12, turns 13 tomorrow
    with pytest.raises(ConsentError) as raised:
        await guardian_says(guardian.id, link_id, child.id, "ebook_vendor", Decision.YES)
    assert raised.value.code == "not_offered"
    teen = await make_patron(born_on=date(2009, 1, 1))  # 17
    with pytest.raises(ConsentError) as raised:
        await patron_says(teen.id, "fundraising", Decision.YES)
    assert raised.value.code == "not_offered"
    await patron_says(teen.id, "fundraising", Decision.NO)  # saying no is always possible


async def test_link_code_is_one_time_and_expires() -> None:
    await publish(catalog(), LOCALES)
    child = await make_patron(born_on=date(2016, 3, 3))
    parent = await make_patron(born_on=date(1980, 1, 1))
    code, _ = await minors.issue_link_code(SECRET, child.id, now=NOW, timezone=TZ)
    await minors.redeem_link_code(SECRET, parent.id, code, "Sam", now=NOW, timezone=TZ)
    other = await make_patron(born_on=date(1981, 1, 1))
    with pytest.raises(minors.MinorsError):
        await minors.redeem_link_code(SECRET, other.id, code, "Sam", now=NOW, timezone=TZ)
    late, _ = await minors.issue_link_code(SECRET, child.id, now=NOW, timezone=TZ)
    with pytest.raises(minors.MinorsError):
        await minors.redeem_link_code(
            SECRET, other.id, late, "Sam", now=NOW + timedelta(days=4), timezone=TZ
        )
    assert await GuardianLink.filter(child_id=child.id).count() == 1
    linked = await ConsentEvent.get(patron_id=child.id, kind=EventKind.GUARDIAN_LINKED)
    assert linked.acting_guardian_id == parent.id


async def test_a_refused_redemption_still_uses_up_the_code() -> None:
    await publish(catalog(), LOCALES)
    child = await make_patron(born_on=date(2016, 3, 3))
    teen = await make_patron(born_on=date(2011, 1, 1))
    code, _ = await minors.issue_link_code(SECRET, child.id, now=NOW, timezone=TZ)
    with pytest.raises(minors.MinorsError, match="guardian_not_adult"):
        await minors.redeem_link_code(SECRET, teen.id, code, "Sib", now=NOW, timezone=TZ)
    parent = await make_patron(born_on=date(1980, 1, 1))
    with pytest.raises(minors.MinorsError, match="link_code_invalid"):
        await minors.redeem_link_code(SECRET, parent.id, code, "Sam", now=NOW, timezone=TZ)
    assert await GuardianLink.filter(child_id=child.id).count() == 0


async def test_coming_of_age_runs_on_29_february_with_majority_below_16() -> None:
    early_majority = catalog().replace('preset = "US"', 'preset = "US"\nage_of_majority = 15')
    await publish(early_majority, LOCALES)
    _child, _ = await family(date(2013, 3, 1), at=datetime(2026, 1, 5, tzinfo=UTC))  # 12
    leap_day = datetime(2028, 2, 29, 17, 0, tzinfo=UTC)  # 14 that day: not yet
    report = await minors.coming_of_age(now=leap_day, timezone=TZ)
    assert report.links_ended == 0
    report = await minors.coming_of_age(now=datetime(2028, 3, 1, 17, tzinfo=UTC), timezone=TZ)
    assert (report.patrons, report.links_ended) == (1, 1)


async def test_only_adults_can_be_guardians_and_only_minors_have_them() -> None:
    await publish(catalog(), LOCALES)
    adult = await make_patron(born_on=date(1990, 1, 1))
    teen = await make_patron(born_on=date(2011, 1, 1))
    child = await make_patron(born_on=date(2016, 1, 1))
    with pytest.raises(minors.MinorsError, match="guardian_not_adult"):
        await minors.link_at_desk(SECRET, teen.card, child.card, "x", now=NOW, timezone=TZ)
    with pytest.raises(minors.MinorsError, match="not_a_minor"):
        await minors.link_at_desk(SECRET, adult.card, adult.card, "x", now=NOW, timezone=TZ)
    other_adult = await make_patron(born_on=date(1991, 1, 1))
    with pytest.raises(minors.MinorsError, match="not_a_minor"):
        await minors.link_at_desk(SECRET, adult.card, other_adult.card, "x", now=NOW, timezone=TZ)


async def test_a_guardian_sees_a_teens_choices_only_when_shared() -> None:
    await publish(catalog(), LOCALES)
    teen, [(guardian, _)] = await family(date(2011, 1, 1))
    await patron_says(teen.id, "reading_history", Decision.YES)
    [view] = await minors.children(guardian.id, "es", now=NOW, timezone=TZ)
    assert view.band is AgeBand.TEEN
    assert {item.status for item in view.services} == {None}
    await patrons_services.set_sharing(teen.id, shares=True)
    [view] = await minors.children(guardian.id, "es", now=NOW, timezone=TZ)
    statuses = {item.service.key: item.status for item in view.services}
    assert statuses["reading_history"] is Status.ON
    assert {item.notice.locale for item in view.services} == {"es"}


async def test_coming_of_age_hands_the_account_over() -> None:
    await publish(catalog(), LOCALES)
    born = date(2008, 7, 2)  # turns 18 on 2 July 2026
    years_ago = datetime(2019, 1, 10, tzinfo=UTC)  # then aged 10
    child, [(guardian, link_id)] = await family(born)
    await guardian_says(
        guardian.id, link_id, child.id, "reading_history", Decision.YES, now=years_ago
    )
    await reading_history.record_loans(
        child.id, [reading_history.Loan("Holes", "", date(2019, 2, 1))], now=NOW
    )

    before = await minors.coming_of_age(now=NOW, timezone=TZ)  # still 17 on 1 July
    assert before.patrons == 0

    birthday = datetime(2026, 7, 2, 12, 0, tzinfo=UTC)
    report = await minors.coming_of_age(now=birthday, timezone=TZ)
    assert (report.patrons, report.links_ended, report.consents_suspended) == (1, 1, 1)
    again = await minors.coming_of_age(now=birthday + timedelta(hours=1), timezone=TZ)
    assert (again.patrons, again.links_ended, again.consents_suspended) == (0, 0, 0)

    assert not await GuardianLink.exists(guardian_id=guardian.id, ended_at=None)
    view = await reads.service_view(child.id, "reading_history", "en")
    assert view.status is Status.NEEDS_RENEWAL
    with pytest.raises(ConsentError):
        await reading_history.record_loans(
            child.id, [reading_history.Loan("New", "", date(2026, 7, 3))], now=NOW
        )
    assert await HistoryEntry.filter(patron_id=child.id).count() == 1  # kept until they answer
    kinds = [e.kind for e in await ConsentEvent.filter(patron_id=child.id)]
    assert EventKind.GUARDIAN_LINK_ENDED in kinds
    assert kinds[-1] == EventKind.SUSPENDED


async def test_a_new_adult_who_says_yes_keeps_what_was_retained() -> None:
    await publish(catalog(), LOCALES)
    child, [(guardian, link_id)] = await family(date(2008, 7, 2))
    past = datetime(2019, 1, 10, tzinfo=UTC)
    await guardian_says(guardian.id, link_id, child.id, "reading_history", Decision.YES, now=past)
    await reading_history.record_loans(
        child.id, [reading_history.Loan("Holes", "", date(2019, 2, 1))], now=NOW
    )
    later = datetime(2026, 7, 3, tzinfo=UTC)
    await minors.coming_of_age(now=later, timezone=TZ)
    outcome = await patron_says(child.id, "reading_history", Decision.YES, now=later)
    assert outcome.status is Status.ON
    state = await ConsentState.get(patron_id=child.id)
    assert state.granted_by == "patron"
    assert await HistoryEntry.filter(patron_id=child.id).count() == 1


async def test_unanswered_guardian_consents_expire_after_the_grace_period() -> None:
    await publish(catalog(), LOCALES)
    child, [(guardian, link_id)] = await family(date(2008, 7, 2))
    past = datetime(2019, 1, 10, tzinfo=UTC)
    await guardian_says(guardian.id, link_id, child.id, "reading_history", Decision.YES, now=past)
    await reading_history.record_loans(
        child.id, [reading_history.Loan("Holes", "", date(2019, 2, 1))], now=NOW
    )
    birthday = datetime(2026, 7, 2, 12, tzinfo=UTC)
    await minors.coming_of_age(now=birthday, timezone=TZ)
    grace = {"material_grace_days": 90, "majority_grace_days": 30}
    assert await decisions.expire_unanswered(now=birthday + timedelta(days=29), **grace) == 0
    assert await decisions.expire_unanswered(now=birthday + timedelta(days=30), **grace) == 1
    assert await HistoryEntry.filter(patron_id=child.id).count() == 0


async def test_the_patrons_own_consents_are_not_paused_at_majority() -> None:
    await publish(catalog(), LOCALES)
    teen, _ = await family(date(2008, 7, 2))
    await patron_says(teen.id, "reading_history", Decision.YES)  # at 17, alone
    report = await minors.coming_of_age(now=datetime(2026, 7, 3, tzinfo=UTC), timezone=TZ)
    assert report.consents_suspended == 0
    assert (await reads.service_view(teen.id, "reading_history", "en")).status is Status.ON


async def test_coming_of_age_follows_the_library_time_zone() -> None:
    await publish(catalog(), LOCALES)
    await family(date(2008, 3, 1), at=datetime(2026, 2, 1, tzinfo=UTC))
    evening_in_new_york = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)  # still 28 February there
    assert (await minors.coming_of_age(now=evening_in_new_york, timezone=TZ)).patrons == 0
    assert (await minors.coming_of_age(now=evening_in_new_york, timezone="UTC")).patrons == 1


async def test_a_guardian_linked_by_code_reads_but_cannot_decide() -> None:
    await publish(catalog(), LOCALES)
    child = await make_patron(born_on=date(2016, 3, 3))
    stranger = await make_patron(born_on=date(1970, 1, 1))
    code, _ = await minors.issue_link_code(SECRET, child.id, now=NOW, timezone=TZ)
    link_id = await minors.redeem_link_code(SECRET, stranger.id, code, "Kid", now=NOW, timezone=TZ)
    [view] = await minors.children(stranger.id, "en", now=NOW, timezone=TZ)
    assert not view.may_decide
    assert {item.status for item in view.services} <= {Status.NEVER_ASKED}  # sees the states
    for decision in (Decision.YES, Decision.NO):
        with pytest.raises(minors.MinorsError, match="guardian_not_verified"):
            await guardian_says(stranger.id, link_id, child.id, "reading_history", decision)
    assert await ConsentState.filter(patron_id=child.id).count() == 0


async def test_no_child_gets_more_than_four_guardians() -> None:
    await publish(catalog(), LOCALES)
    child, links = await family(date(2016, 1, 1), guardians=4)
    fifth = await make_patron(born_on=date(1975, 1, 1))
    with pytest.raises(minors.MinorsError, match="too_many_guardians"):
        await minors.link_at_desk(SECRET, fifth.card, child.card, "x", now=NOW, timezone=TZ)
    assert len(links) == 4


async def test_ending_a_link_is_recorded_and_told_to_the_others() -> None:
    await publish(catalog(), LOCALES)
    child, [(mother, mother_link), (father, father_link)] = await family(
        date(2016, 1, 1), guardians=2
    )
    await minors.end_own_link(father.id, father_link, now=NOW)
    with pytest.raises(minors.MinorsError, match="not_linked"):
        await minors.end_own_link(father.id, father_link, now=NOW)  # once is enough
    [mother_view] = await minors.children(mother.id, "en", now=NOW, timezone=TZ)
    assert [link.ended_at for link in mother_view.other_guardians] == [NOW]
    assert await minors.children(father.id, "en", now=NOW, timezone=TZ) == []
    await minors.end_link_at_desk(SECRET, mother.card, child.card, now=NOW)
    ended = await ConsentEvent.filter(patron_id=child.id, kind=EventKind.GUARDIAN_LINK_ENDED)
    assert [event.detail["reason"] for event in ended] == ["guardian_ended", "ended_by_library"]
    assert ended[0].acting_guardian_id == father.id
    assert "note" not in ended[1].detail  # staff's words stay in the staff audit trail
    assert mother_link != father_link


async def test_ending_a_link_pauses_what_that_guardian_agreed_to() -> None:
    await publish(catalog(), LOCALES)
    child, [(mother, mother_link), (father, father_link)] = await family(
        date(2016, 1, 1), guardians=2
    )
    await guardian_says(mother.id, mother_link, child.id, "reading_history", Decision.YES)
    await minors.end_own_link(mother.id, mother_link, now=NOW)
    state = await ConsentState.get(patron_id=child.id)
    assert (state.granted, state.suspension_reason) == (True, "guardian_unlinked")
    view = await reads.service_view(child.id, "reading_history", "en")
    assert view.status is Status.NEEDS_RENEWAL  # off until a linked guardian answers
    with pytest.raises(minors.MinorsError, match="not_linked"):
        await guardian_says(mother.id, mother_link, child.id, "reading_history", Decision.YES)
    await guardian_says(father.id, father_link, child.id, "reading_history", Decision.YES)
    assert (await reads.service_view(child.id, "reading_history", "en")).status is Status.ON


async def test_turning_off_never_depends_on_the_language_of_the_notice_shown() -> None:
    await publish(catalog(), LOCALES)
    adult = await make_patron(born_on=date(1990, 1, 1))
    await patron_says(adult.id, "reading_history", Decision.YES)
    spanish = await reads.service_view(adult.id, "reading_history", "es")
    outcome = await decisions.decide(
        adult.id, "reading_history", Decision.NO, notice_version_id=spanish.notice.id,
        expected_revision=spanish.revision, locale="en", now=NOW, timezone=TZ,
    )  # fmt: skip
    assert outcome.status is Status.WITHDRAWN
