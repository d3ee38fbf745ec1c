"""Children's notices against a real database (SQLite and PostgreSQL): what publishing keeps,
which text the ledger says was shown, and what a material change needs."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from portal.catalog.models import NoticeVersion, Publication, Service
from portal.catalog.policy import CatalogError
from portal.catalog.publishing import Change
from portal.catalog.services import age_for_decision
from portal.consent import reads
from portal.consent.policy import Decision, Status
from portal.ledger.models import ConsentEvent, EventKind
from portal.ledger.services import entries
from portal.ledger.vocabulary import Audience
from portal.minors import services as minors
from tests.factories import SECRET, catalog_text, decides, make_patron, publish, service_table

pytestmark = pytest.mark.usefixtures("db")

NOW = datetime(2026, 7, 1, 16, 0, tzinfo=UTC)
TZ = "UTC"
LOCALES = ("en", "es")


def catalog(**changes: object) -> str:
    return catalog_text(
        service_table("reading_history", store="reading_history", locales=LOCALES, **changes),  # type: ignore[arg-type]
    )


async def child_and_guardian() -> tuple[int, int, int]:
    child = await make_patron(born_on=date(2016, 3, 3))
    guardian = await make_patron(born_on=date(1985, 5, 5))
    made = await minors.link_at_desk(SECRET, guardian.card, child.card, "Sam", now=NOW, timezone=TZ)
    return child.id, guardian.id, made.link_id


async def test_publishing_keeps_each_locales_childs_version_with_its_own_hash() -> None:
    await publish(catalog(), LOCALES)
    versions = await NoticeVersion.all().order_by("locale")
    assert [v.locale for v in versions] == ["en", "es"]
    for version in versions:
        assert version.child_texts is not None
        assert version.child_texts["title"] == f"reading_history title {version.locale} for a child"
        assert version.child_hash is not None
        assert version.child_hash != version.content_hash


async def test_a_child_reads_the_childs_version_and_a_teenager_the_full_notice() -> None:
    await publish(catalog(), LOCALES)
    for born, title in ((date(2016, 3, 3), "title es for a child"), (date(2011, 3, 3), "title es")):
        patron = await make_patron(born_on=born)
        age = await age_for_decision(born, None, now=NOW, timezone=TZ)
        view = await reads.service_view(patron.id, "reading_history", "es", age)
        assert view.texts["title"] == f"reading_history {title}"


async def test_a_childs_no_is_recorded_with_the_childs_version_and_its_hash() -> None:
    await publish(catalog(), LOCALES)
    child_id, _, _ = await child_and_guardian()
    await decides(child_id, "reading_history", Decision.NO, at=NOW, timezone=TZ)
    event = await ConsentEvent.get(patron_id=child_id, kind=EventKind.REFUSED)
    version = await NoticeVersion.get(id=event.notice_version_id)
    assert event.notice_audience == Audience.CHILD.value
    assert event.notice_hash == version.child_hash
    assert [e.audience for e in await entries(child_id) if e.kind is EventKind.REFUSED] == ["child"]


async def test_a_guardians_yes_is_recorded_with_the_full_notice() -> None:
    await publish(catalog(), LOCALES)
    child_id, guardian_id, link_id = await child_and_guardian()
    view = await reads.service_view(child_id, "reading_history", "es")
    outcome = await minors.guardian_decide(
        guardian_id, link_id, "reading_history", Decision.YES,
        notice_version_id=view.notice.id, expected_revision=view.revision, locale="es",
        now=NOW, timezone=TZ,
    )  # fmt: skip
    assert outcome.status is Status.ON
    event = await ConsentEvent.get(patron_id=child_id, kind=EventKind.GIVEN)
    assert (event.notice_audience, event.notice_hash, event.locale) == (
        Audience.ADULT.value,
        view.notice.content_hash,
        "es",
    )


async def test_an_adults_choice_is_recorded_with_the_full_notice() -> None:
    await publish(catalog(), LOCALES)
    adult = await make_patron()
    await decides(adult.id, "reading_history", Decision.YES, at=NOW, timezone=TZ)
    event = await ConsentEvent.get(patron_id=adult.id, kind=EventKind.GIVEN)
    assert event.notice_audience == Audience.ADULT.value


async def test_a_material_change_with_an_unchanged_childs_version_publishes_nothing() -> None:
    await publish(catalog(child_wording=" as before"), LOCALES)
    with pytest.raises(CatalogError) as raised:
        await publish(catalog(child_wording=" as before", retention_days=3650), LOCALES)
    assert raised.value.problems == [
        "service 'reading_history': a material change, but child_notice.en is unchanged: "
        "the child's version must tell the same new facts",
        "service 'reading_history': a material change, but child_notice.es is unchanged: "
        "the child's version must tell the same new facts",
    ]
    service = await Service.get(key="reading_history")
    assert (service.revision, service.terms["retention_days"]) == (1, 365)
    assert await Publication.all().count() == 1
    assert await NoticeVersion.all().count() == 2


async def test_a_material_change_that_rewrites_the_childs_version_is_published() -> None:
    await publish(catalog(), LOCALES)
    report = await publish(catalog(retention_days=3650), LOCALES)
    assert report.changes["reading_history"] is Change.MATERIAL
    latest = await NoticeVersion.filter(revision=2, locale="en").first()
    assert latest is not None
    assert latest.child_texts is not None
    assert "3650 days" in latest.child_texts["summary"]


async def test_rewording_only_the_childs_version_is_a_wording_change() -> None:
    await publish(catalog(), LOCALES)
    adult = await make_patron()
    await decides(adult.id, "reading_history", Decision.YES, at=NOW, timezone=TZ)
    report = await publish(catalog(child_wording=" in simpler words"), LOCALES)
    assert report.changes["reading_history"] is Change.WORDING
    view = await reads.service_view(adult.id, "reading_history", "en")
    assert view.status is Status.ON  # a child's wording never pauses anyone's consent
    assert view.notice.child_texts is not None
    assert view.notice.child_texts["summary"].endswith(" in simpler words for a child")
