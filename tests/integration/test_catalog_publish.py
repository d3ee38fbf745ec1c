"""Publishing the catalog: immutable notice versions, material changes pause consents,
bad input publishes nothing."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from portal.catalog import publishing
from portal.catalog import services as catalog_services
from portal.catalog.models import NoticeVersion, Publication, Service
from portal.catalog.policy import CatalogError, NoticeText, Terms, content_hash
from portal.catalog.publishing import Change
from portal.catalog.services import (
    current_notice,
    forget_published_catalog,
    published_catalog,
)
from portal.consent import reads
from portal.consent.policy import ConsentError, Decision, Status
from portal.decisions import services as decisions
from portal.i18n import KNOWN_LOCALES
from portal.ledger.models import ConsentEvent, EventKind
from portal.locale_codes import VARIANT_OF
from portal.stores.reading_history import services as reading_history
from portal.stores.reading_history.models import HistoryEntry
from tests.factories import (
    catalog_text,
    decides,
    make_patron,
    now,
    publish,
    service_table,
    standard_catalog,
)

pytestmark = pytest.mark.usefixtures("db")
ROOT = Path(__file__).resolve().parents[2]


def history_catalog(**changes: object) -> str:
    return catalog_text(
        service_table("reading_history", store="reading_history", **changes),  # type: ignore[arg-type]
        service_table("newsletter"),
    )


async def opt_in_with_history(entries: int = 2) -> int:
    patron = await make_patron()
    await decides(patron.id, "reading_history", Decision.YES)
    await reading_history.record_loans(
        patron.id, [reading_history.Loan("Dune", "Herbert", date(2026, 3, 1))] * entries, now=now()
    )
    return patron.id


async def status(patron_id: int) -> Status:
    return (await reads.service_view(patron_id, "reading_history", "en")).status


async def test_first_publish_creates_one_notice_version_per_locale() -> None:
    report = await publish(standard_catalog(("en", "es")), ("en", "es"))
    assert set(report.changes.values()) == {Change.NEW}
    assert await NoticeVersion.filter(service__key="newsletter").count() == 2
    assert await Publication.all().count() == 1


async def test_republishing_the_same_catalog_changes_nothing() -> None:
    await publish(standard_catalog())
    report = await publish(standard_catalog())
    assert set(report.changes.values()) == {Change.UNCHANGED}
    assert await NoticeVersion.all().count() == 3


async def test_rewording_keeps_consents_and_adds_a_version() -> None:
    await publish(history_catalog())
    patron_id = await opt_in_with_history()
    report = await publish(history_catalog(wording=" Now clearer."))
    assert report.changes["reading_history"] is Change.WORDING
    assert report.consents_suspended == 0
    assert await status(patron_id) is Status.ON
    assert await NoticeVersion.filter(service__key="reading_history").count() == 2


async def test_material_change_pauses_the_service_and_refuses_new_data() -> None:
    await publish(history_catalog())
    patron_id = await opt_in_with_history()
    report = await publish(history_catalog(recipients=("library", "Analytics Co.")))
    assert report.changes["reading_history"] is Change.MATERIAL
    assert report.consents_suspended == 1
    assert await status(patron_id) is Status.NEEDS_RENEWAL
    with pytest.raises(ConsentError):
        await reading_history.record_loans(
            patron_id, [reading_history.Loan("New", "", date(2026, 4, 1))], now=now()
        )
    suspended = await ConsentEvent.get(patron_id=patron_id, kind=EventKind.SUSPENDED)
    assert suspended.detail["reason"] == "material_change"


async def test_saying_no_to_a_materially_changed_notice_erases_what_was_kept() -> None:
    await publish(history_catalog())
    patron_id = await opt_in_with_history(3)
    await publish(history_catalog(retention_days=3650))
    outcome = await decides(patron_id, "reading_history", Decision.NO)
    assert outcome.erased == 3
    assert await HistoryEntry.filter(patron_id=patron_id).count() == 0


async def test_saying_yes_to_the_new_notice_renews() -> None:
    await publish(history_catalog())
    patron_id = await opt_in_with_history()
    await publish(history_catalog(purposes=("own_use", "recommendations")))
    await decides(patron_id, "reading_history", Decision.YES)
    assert await status(patron_id) is Status.ON
    renewed = await ConsentEvent.filter(patron_id=patron_id).order_by("-id").first()
    assert renewed is not None
    assert renewed.kind == EventKind.RENEWED
    assert renewed.purposes == ["own_use", "recommendations"]
    assert await HistoryEntry.filter(patron_id=patron_id).count() == 2


async def test_unanswered_material_change_expires_after_the_grace_period() -> None:
    await publish(history_catalog())
    patron_id = await opt_in_with_history(2)
    await publish(history_catalog(data_categories=("titles", "ratings")))
    assert (
        await decisions.expire_unanswered(now=now(), material_grace_days=30, majority_grace_days=30)
        == 0
    )
    expired = await decisions.expire_unanswered(
        now=now() + timedelta(days=31), material_grace_days=30, majority_grace_days=1
    )
    assert expired == 1
    assert await status(patron_id) is Status.WITHDRAWN
    assert await HistoryEntry.filter(patron_id=patron_id).count() == 0
    kinds = [e.kind for e in await ConsentEvent.filter(patron_id=patron_id)]
    assert kinds[-2:] == [EventKind.EXPIRED, EventKind.ERASED]


async def test_a_publish_refused_midway_leaves_nothing_of_itself() -> None:
    await publish(history_catalog())
    patron = await make_patron()
    await decides(patron.id, "reading_history", Decision.YES)
    # Parses cleanly. Reading history comes first and changes materially (its consents are
    # paused and new notices written) before the newsletter's store change is refused.
    midway = catalog_text(
        service_table(
            "reading_history", store="reading_history", recipients=("library", "Analytics Co.")
        ),
        service_table("newsletter", store="saved_lists"),
    )
    with pytest.raises(CatalogError, match="store cannot change"):
        await publish(midway)
    assert await NoticeVersion.all().count() == 2
    assert await Publication.all().count() == 1
    service = await Service.get(key="reading_history")
    assert (service.revision, service.terms_revision) == (1, 1)
    view = await reads.service_view(patron.id, "reading_history", "en")
    assert view.status is Status.ON
    kinds = [event.kind for event in await ConsentEvent.filter(patron_id=patron.id)]
    assert kinds == [EventKind.GIVEN]


async def test_removing_a_published_service_is_refused_and_nothing_changes() -> None:
    await publish(history_catalog())
    only_history = catalog_text(
        service_table("reading_history", store="reading_history", wording=" New.")
    )
    with pytest.raises(CatalogError) as raised:
        await publish(only_history)
    assert "service 'newsletter' is published" in raised.value.problems[0]
    assert await NoticeVersion.all().count() == 2


async def test_demo_catalog_publishes_in_every_enabled_locale() -> None:
    text = (ROOT / "deploy" / "catalog.toml").read_text(encoding="utf-8")
    report = await publish(text, tuple(KNOWN_LOCALES))
    # Seven services; messages is ten kinds by three channels, and titles in messages.
    assert len(report.changes) == 6 + 10 * 3 + 1
    # Hong Kong Chinese reads the Traditional Chinese notices: no versions of its own.
    languages = [code for code in KNOWN_LOCALES if code not in VARIANT_OF]
    assert await NoticeVersion.all().count() == 37 * len(languages)


async def test_each_process_reads_the_catalog_again_only_after_a_new_publication(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The snapshot is a cache: every few seconds it asks whether anything was published
    (by this process or another) and reads the catalog again only when something was."""
    await publish(standard_catalog())
    clock = [1000.0]
    monkeypatch.setattr(catalog_services, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    first = await catalog_services.published_catalog()
    clock[0] += 60
    assert await catalog_services.published_catalog() is first
    # Another process publishes: nothing tells this one, whose snapshot stays until it asks.
    monkeypatch.setattr(publishing, "forget_published_catalog", lambda: None)
    await publish(standard_catalog().replace("Test Library", "Renamed Library"))
    clock[0] += 1
    assert (await catalog_services.published_catalog()).library_name == "Test Library"
    clock[0] += 60
    assert (await catalog_services.published_catalog()).library_name == "Renamed Library"


async def test_notice_versions_published_as_tl_keep_working_as_fil() -> None:
    # Before the rename, Filipino notices were published under "tl"; their rows (and content
    # hashes, which include the code) stay exactly as written.
    text = standard_catalog(("en", "fil"))
    await publish(text, ("en", "fil"))
    for row in await NoticeVersion.filter(locale="fil"):
        notice = NoticeText(**row.texts)
        hash_as_written = content_hash("tl", Terms.from_dict(row.terms), notice)
        await NoticeVersion.filter(id=row.id).update(locale="tl", content_hash=hash_as_written)
    forget_published_catalog()
    service = (await published_catalog()).services[0]
    shown = (await published_catalog()).notice(service.id, "fil")
    assert shown is not None
    assert shown.locale == "fil"
    assert (await current_notice(service, "fil")) is not None
    # Publishing the same texts as [service.notice.fil] is no change: no new revision.
    report = await publish(text, ("en", "fil"))
    assert set(report.changes.values()) == {Change.UNCHANGED}
    assert await NoticeVersion.filter(locale="fil").count() == 0


async def test_requests_that_find_the_snapshot_stale_ask_the_database_once(monkeypatch) -> None:
    """At 32 concurrent checks every request that found it stale asked at once, each on a
    pooled connection of its own: the slowest checks of a PostgreSQL run waited behind them."""
    await publish(standard_catalog())
    forget_published_catalog()
    first = await published_catalog()
    asked = []
    original = Publication.all

    def counted_all(*args, **kwargs):  # type: ignore[no-untyped-def]
        asked.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(Publication, "all", counted_all)
    # The snapshot's few seconds are up.
    monkeypatch.setattr(catalog_services, "_SNAPSHOT_TTL_SECONDS", 0.0)
    snapshots = await asyncio.gather(*(published_catalog() for _ in range(32)))
    assert len(asked) == 1
    assert all(snapshot is first for snapshot in snapshots)  # nothing was published since
