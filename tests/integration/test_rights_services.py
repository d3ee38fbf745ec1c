"""A patron's copy of their data, receipts from the ledger and the notices' history, on real
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest

from portal.consent.policy import Decision
from portal.decisions.services import turn_everything_off
from portal.ledger.models import ConsentEvent, EventKind
from portal.ledger.services import PATRON_ONLINE
from portal.minors.services import link_at_desk
from portal.rights import services
from portal.rights.policy import receipt_reference
from portal.stores.reading_history import services as reading_history
from portal.stores.saved_lists import services as saved_lists
from tests.factories import SECRET, aged, decides, make_patron, now, publish, standard_catalog

pytestmark = pytest.mark.usefixtures("db")

LOAN = reading_history.Loan("Kindred", "Octavia E. Butler", date(2026, 3, 3))


async def test_the_copy_holds_what_every_store_kept_for_the_patron() -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    await decides(patron.id, "reading_history", Decision.YES)
    await decides(patron.id, "saved_lists", Decision.YES)
    await reading_history.record_loans(patron.id, [LOAN], now=now())
    list_id = await saved_lists.create_list(patron.id, "Summer", now=now())
    await saved_lists.add_to_list(patron.id, list_id, "Dawn", now=now())
    data = await services.export_patron(patron.id, "en", now=now())
    assert data["retained_data"]["reading_history"][0]["title"] == "Kindred"
    assert data["retained_data"]["saved_lists"][0]["items"][0]["title"] == "Dawn"


async def test_the_copy_holds_nothing_of_another_patron() -> None:
    await publish(standard_catalog())
    patron, other = await make_patron(), await make_patron()
    await decides(other.id, "reading_history", Decision.YES)
    await reading_history.record_loans(other.id, [LOAN], now=now())
    data = await services.export_patron(patron.id, "en", now=now())
    assert data["retained_data"]["reading_history"] == []
    assert data["consent_record"] == []


async def test_a_guardians_copy_lists_the_link_and_nothing_the_child_did() -> None:
    await publish(standard_catalog())
    guardian = await make_patron()
    teen = await make_patron(born_on=aged(15))
    await link_at_desk(SECRET, guardian.card, teen.card, "Robin", now=now(), timezone="UTC")
    await decides(teen.id, "reading_history", Decision.YES)
    await reading_history.record_loans(teen.id, [LOAN], now=now())
    data = await services.export_patron(guardian.id, "en", now=now())
    assert [child["label"] for child in data["profile"]["children"]] == ["Robin"]
    assert "Kindred" not in str(data)
    assert all(entry["service"] is None for entry in data["consent_record"])


async def test_the_childs_copy_shows_the_guardian_link_without_naming_the_guardian() -> None:
    await publish(standard_catalog())
    guardian = await make_patron()
    teen = await make_patron(born_on=aged(15))
    await link_at_desk(SECRET, guardian.card, teen.card, "Robin", now=now(), timezone="UTC")
    data = await services.export_patron(teen.id, "en", now=now())
    assert len(data["profile"]["guardians"]) == 1
    assert data["profile"]["guardians"][0]["checked_in_person"] is True
    assert "Robin" not in str(data)


async def test_a_receipt_for_turning_everything_off_names_the_terms_then_in_force() -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    await decides(patron.id, "saved_lists", Decision.YES)
    await turn_everything_off(patron.id, now=now(), party=PATRON_ONLINE)
    withdrawn = await ConsentEvent.get(patron_id=patron.id, kind=EventKind.WITHDRAWN)
    facts = await services.receipt_facts(
        patron.id, receipt_reference(SECRET, withdrawn.id), secret=SECRET
    )
    assert facts is not None
    assert facts.kind is EventKind.WITHDRAWN
    assert facts.terms["retention_days"] == 365
    assert facts.controller == "Test Library"


async def test_an_erasure_line_has_no_receipt_only_decisions_do() -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    await decides(patron.id, "saved_lists", Decision.YES)
    await decides(patron.id, "saved_lists", Decision.NO)
    erased = await ConsentEvent.get(patron_id=patron.id, kind=EventKind.ERASED)
    reference = receipt_reference(SECRET, erased.id)
    assert await services.receipt_facts(patron.id, reference, secret=SECRET) is None


async def test_history_marks_a_material_change_and_a_rewording_apart() -> None:
    await publish(standard_catalog())
    await publish(standard_catalog(wording=" (clearer)"))
    await publish(standard_catalog(wording=" (clearer)", recipients=("library", "vendor")))
    history = await services.notice_history("reading_history")
    assert history is not None
    newest, reworded, first = history.revisions
    assert (newest.revision, newest.fresh_consent, [f.value for f in newest.changed]) == (
        3,
        True,
        ["recipients"],
    )
    assert (reworded.fresh_consent, reworded.reworded, reworded.changed) == (False, True, ())
    assert (first.fresh_consent, first.reworded) == (False, False)


async def test_an_earlier_version_keeps_its_exact_text_and_hash() -> None:
    await publish(standard_catalog())
    first = await services.notice_history("reading_history")
    assert first is not None
    await publish(standard_catalog(wording=" (clearer)"))
    shown = await services.shown_version("reading_history", 1, "en")
    assert shown is not None
    assert shown.texts["summary"] == "reading_history summary en"
    assert shown.current is False
    assert shown.content_hash == first.revisions[0].versions[0].content_hash
