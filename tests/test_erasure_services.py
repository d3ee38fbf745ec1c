"""Retained data is refused at the door without a current consent (PRODUCT.md promise 2)."""

from __future__ import annotations

from datetime import date

import pytest

from portal.consent.policy import Decision
from portal.erasure import services as erasure
from portal.erasure.models import HistoryEntry, SavedList
from tests.factories import decides, make_patron, now, publish, standard_catalog

pytestmark = pytest.mark.usefixtures("db")

LOAN = erasure.Loan("Parable of the Sower", "Octavia E. Butler", date(2026, 2, 2))


async def test_history_is_refused_and_nothing_stored_without_consent() -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    with pytest.raises(erasure.NoCurrentConsent):
        await erasure.record_loans(patron.id, [LOAN, LOAN], now=now())
    assert await HistoryEntry.all().count() == 0


async def test_history_is_refused_after_a_refusal() -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    await decides(patron.id, "reading_history", Decision.NO)
    with pytest.raises(erasure.NoCurrentConsent):
        await erasure.record_loans(patron.id, [LOAN], now=now())
    assert await HistoryEntry.all().count() == 0


async def test_history_is_kept_with_consent_and_shown_newest_first() -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    await decides(patron.id, "reading_history", Decision.YES)
    older = erasure.Loan("Older", "", date(2025, 1, 1))
    await erasure.record_loans(patron.id, [older, LOAN], now=now())
    assert [e.title for e in await erasure.reading_history(patron.id)] == [LOAN.title, "Older"]


async def test_saved_list_cannot_be_created_without_consent() -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    with pytest.raises(erasure.NoCurrentConsent):
        await erasure.create_list(patron.id, "Summer", now=now())
    assert await SavedList.all().count() == 0


async def test_a_patron_cannot_add_to_someone_elses_list() -> None:
    await publish(standard_catalog())
    owner, intruder = await make_patron(), await make_patron()
    for person in (owner, intruder):
        await decides(person.id, "saved_lists", Decision.YES)
    saved = await erasure.create_list(owner.id, "Mine", now=now())
    with pytest.raises(erasure.NotFound):
        await erasure.add_to_list(intruder.id, saved.id, "Graffiti", now=now())
    with pytest.raises(erasure.NotFound):
        await erasure.delete_list(intruder.id, saved.id)
