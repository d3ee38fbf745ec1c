"""Consent decisions against a real database: defaults, the ledger, erasure in the same
transaction, stale and replayed forms."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest
from tortoise.connection import connections
from tortoise.exceptions import IntegrityError

from portal.catalog.models import NoticeVersion, Service
from portal.consent import reads
from portal.consent.models import ConsentState
from portal.consent.policy import ConsentError, Decision, Status
from portal.db import Erasure
from portal.decisions import services
from portal.ledger.models import ConsentEvent, EventKind
from portal.ledger.services import PATRON_ONLINE
from portal.patrons.models import Patron
from portal.stores.reading_history import services as reading_history
from portal.stores.reading_history.models import HistoryEntry
from portal.stores.registry import STORES
from portal.stores.saved_lists import services as saved_lists
from portal.stores.saved_lists.models import SavedList, SavedListItem
from tests.factories import (
    catalog_text,
    make_patron,
    now,
    publish,
    service_table,
    standard_catalog,
)

pytestmark = pytest.mark.usefixtures("db")


async def notice_id(key: str, locale: str = "en") -> int:
    service = await Service.get(key=key)
    notice = await NoticeVersion.get(
        service_id=service.id, revision=service.revision, locale=locale
    )
    return notice.id


async def say(patron_id: int, key: str, decision: Decision, revision: int | None = None):
    if revision is None:
        state = await ConsentState.filter(patron_id=patron_id, service__key=key).first()
        revision = state.revision if state else 0
    return await services.decide(
        patron_id,
        key,
        decision,
        notice_version_id=await notice_id(key),
        expected_revision=revision,
        locale="en",
        now=now(),
        timezone="UTC",
    )


async def loans(patron_id: int, count: int) -> None:
    await reading_history.record_loans(
        patron_id,
        [reading_history.Loan(f"Book {n}", "Author", date(2026, 1, 1)) for n in range(count)],
        now=now(),
    )


async def test_new_account_has_every_service_off() -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    overview = (await reads.privacy_overview(patron.id, "en")).services
    assert len(overview) == 3
    assert {item.status for item in overview} == {Status.NEVER_ASKED}
    assert await ConsentState.filter(patron_id=patron.id).count() == 0


async def test_yes_records_the_notice_version_locale_purposes_and_actor() -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    outcome = await say(patron.id, "reading_history", Decision.YES)
    assert outcome.status is Status.ON
    event = await ConsentEvent.get(patron_id=patron.id)
    notice = await NoticeVersion.get(id=await notice_id("reading_history"))
    assert event.kind == EventKind.GIVEN
    assert event.notice_version_id == notice.id
    assert event.notice_hash == notice.content_hash
    assert event.locale == "en"
    assert event.purposes == ["own_use"]
    assert event.method == "online"
    assert event.actor == "patron"
    assert event.channel == "web"
    assert event.occurred_at.utcoffset().total_seconds() == 0


async def test_refusal_is_recorded_and_keeps_the_service_off() -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    outcome = await say(patron.id, "newsletter", Decision.NO)
    assert outcome.status is Status.REFUSED
    assert [e.kind for e in await ConsentEvent.filter(patron_id=patron.id)] == [EventKind.REFUSED]


async def test_withdrawal_deletes_history_in_the_same_step_and_records_the_erasure() -> None:
    await publish(standard_catalog())
    patron, other = await make_patron(), await make_patron()
    for person in (patron, other):
        await say(person.id, "reading_history", Decision.YES)
        await loans(person.id, 5)
    outcome = await say(patron.id, "reading_history", Decision.NO)
    assert outcome.status is Status.WITHDRAWN
    assert outcome.erased == 5
    assert await HistoryEntry.filter(patron_id=patron.id).count() == 0
    assert await HistoryEntry.filter(patron_id=other.id).count() == 5  # nobody else's data
    kinds = [e.kind for e in await ConsentEvent.filter(patron_id=patron.id)]
    assert kinds == [EventKind.GIVEN, EventKind.WITHDRAWN, EventKind.ERASED]
    erased = await ConsentEvent.get(patron_id=patron.id, kind=EventKind.ERASED)
    assert erased.detail == {"rows_deleted": 5}


async def test_withdrawal_deletes_saved_lists_and_their_items() -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    await say(patron.id, "saved_lists", Decision.YES)
    saved = await saved_lists.create_list(patron.id, "To read", now=now())
    await saved_lists.add_to_list(patron.id, saved, "Beloved", now=now())
    await say(patron.id, "saved_lists", Decision.NO)
    assert await SavedList.filter(patron_id=patron.id).count() == 0
    assert await SavedListItem.all().count() == 0


async def test_yes_needs_the_notice_that_was_shown() -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    with pytest.raises(ConsentError) as raised:
        await services.decide(
            patron.id,
            "newsletter",
            Decision.YES,
            notice_version_id=None,
            expected_revision=0,
            locale="en",
            now=now(),
            timezone="UTC",
        )
    assert raised.value.code == "notice_required"
    assert await ConsentEvent.all().count() == 0


async def test_form_against_a_superseded_notice_is_refused() -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    old_notice = await notice_id("newsletter")
    # A rewording publishes a new version; a form showing the old one is not accepted.
    reworded = catalog_text(
        service_table("reading_history", store="reading_history"),
        service_table("saved_lists", store="saved_lists"),
        service_table("newsletter", data_categories=("email",), wording=" (clearer)"),
    )
    await publish(reworded)
    with pytest.raises(ConsentError) as raised:
        await services.decide(
            patron.id,
            "newsletter",
            Decision.YES,
            notice_version_id=old_notice,
            expected_revision=0,
            locale="en",
            now=now(),
            timezone="UTC",
        )
    assert raised.value.code == "stale_notice"
    assert await ConsentEvent.all().count() == 0


async def test_unknown_service_is_refused() -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    with pytest.raises(ConsentError) as raised:
        await services.decide(
            patron.id,
            "telepathy",
            Decision.NO,
            notice_version_id=None,
            expected_revision=0,
            locale="en",
            now=now(),
            timezone="UTC",
        )
    assert raised.value.code == "unknown_service"


async def test_double_submit_of_yes_records_one_event() -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    first = await say(patron.id, "newsletter", Decision.YES, revision=0)
    second = await say(patron.id, "newsletter", Decision.YES, revision=0)
    assert first.changed
    assert not second.changed
    assert await ConsentEvent.filter(patron_id=patron.id).count() == 1


async def test_replayed_yes_after_withdrawal_is_refused_as_stale() -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    await say(patron.id, "reading_history", Decision.YES, revision=0)
    await say(patron.id, "reading_history", Decision.NO, revision=1)
    with pytest.raises(ConsentError) as raised:
        await say(patron.id, "reading_history", Decision.YES, revision=0)  # the old form again
    assert raised.value.code == "stale_form"
    state = await ConsentState.get(patron_id=patron.id)
    assert not state.granted


async def test_turn_everything_off_withdraws_all_and_erases() -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    for key in ("reading_history", "saved_lists", "newsletter"):
        await say(patron.id, key, Decision.YES)
    await loans(patron.id, 3)
    await saved_lists.create_list(patron.id, "Later", now=now())
    turned_off = await services.turn_everything_off(patron.id, now=now(), party=PATRON_ONLINE)
    assert turned_off == 3
    assert {i.status for i in (await reads.privacy_overview(patron.id, "en")).services} == {
        Status.WITHDRAWN
    }
    assert await HistoryEntry.filter(patron_id=patron.id).count() == 0
    assert await SavedList.filter(patron_id=patron.id).count() == 0


async def test_failure_between_event_and_erasure_leaves_neither_half(monkeypatch) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    await say(patron.id, "reading_history", Decision.YES)
    await loans(patron.id, 4)

    async def crash(erasure: Erasure, patron_id: int) -> int:
        raise RuntimeError("power cut between the ledger entry and the deletion")

    monkeypatch.setitem(STORES, "reading_history", replace(STORES["reading_history"], erase=crash))
    with pytest.raises(RuntimeError):
        await say(patron.id, "reading_history", Decision.NO)
    # Neither half survived: the consent still stands, so the data it covers may stay.
    assert [e.kind for e in await ConsentEvent.filter(patron_id=patron.id)] == [EventKind.GIVEN]
    assert (await ConsentState.get(patron_id=patron.id)).granted
    assert await HistoryEntry.filter(patron_id=patron.id).count() == 4
    monkeypatch.undo()
    outcome = await say(patron.id, "reading_history", Decision.NO)
    assert outcome.erased == 4


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE consent_event SET kind = 'refused'",
        "DELETE FROM consent_event",
    ],
)
async def test_the_database_refuses_to_change_or_delete_a_ledger_event(statement: str) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    await say(patron.id, "newsletter", Decision.YES)
    with pytest.raises(IntegrityError, match="append-only"):
        await connections.get("default").execute_query(statement)
    with pytest.raises(IntegrityError, match="append-only"):
        await ConsentEvent.filter(patron_id=patron.id).update(kind=EventKind.REFUSED)
    with pytest.raises(IntegrityError, match="append-only"):
        await ConsentEvent.filter(patron_id=patron.id).delete()
    assert [e.kind for e in await ConsentEvent.filter(patron_id=patron.id)] == [EventKind.GIVEN]


async def test_a_notice_is_answered_only_from_a_page_in_its_own_language() -> None:
    await publish(standard_catalog(("en", "es")), ("en", "es"))
    patron = await make_patron()
    with pytest.raises(ConsentError) as raised:
        await services.decide(
            patron.id,
            "reading_history",
            Decision.YES,
            notice_version_id=await notice_id("reading_history", "en"),
            expected_revision=0,
            locale="es",  # the ledger would record a language the patron was not shown
            now=now(),
            timezone="UTC",
        )
    assert raised.value.code == "notice_required"
    assert await ConsentEvent.filter(patron_id=patron.id).count() == 0


async def test_my_privacy_never_shows_a_choice_older_than_the_patrons_consent_version() -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    version = (await Patron.get(id=patron.id)).consent_version
    before = await reads.privacy_overview(patron.id, "en", version=version)
    assert {item.status for item in before.services} == {Status.NEVER_ASKED}
    await say(patron.id, "newsletter", Decision.YES)  # in this process or another
    version = (await Patron.get(id=patron.id)).consent_version
    after = await reads.privacy_overview(patron.id, "en", version=version)
    assert {item.service.key: item.status for item in after.services}["newsletter"] is Status.ON
