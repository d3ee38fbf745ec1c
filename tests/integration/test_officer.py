"""The privacy officer's use cases on a real database (SQLite and PostgreSQL): the consent
report's counts, the record of scheduled jobs (a crash leaves a run unfinished, never a
success), promises kept, the catalog preview bound to what gets published, the register."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import date, timedelta
from random import Random

import pytest
from tortoise import Tortoise

from portal.catalog.models import Publication
from portal.catalog.parsing import parse_catalog
from portal.catalog.policy import CatalogError
from portal.catalog.publishing import (
    Change,
    PublishedMeanwhile,
    latest_publication,
    preview_publication,
)
from portal.consent.policy import Decision
from portal.errors import DomainError, OfficerCode
from portal.officer import publishing, register, services
from portal.officer.models import JobRun, ReportRelease
from portal.officer.policy import (
    REPORT_EPSILON,
    JobHealth,
    JobName,
    Noise,
    RunOutcome,
    RunState,
)
from portal.officer.publishing import publish as publish_catalog
from portal.staff import audit
from portal.staff.models import StaffAuditEvent
from portal.staff.policy import AuditAction, Role
from portal.staff.services import identity_of
from portal.stores.reading_history.models import HistoryEntry
from portal.stores.reading_history.services import Loan, record_loans
from portal.stores.registry import KEYS as STORE_KEYS
from tests.delivery import delivery_catalog
from tests.desk import make_staff, refuse_audit_lines
from tests.factories import (
    SECRET,
    catalog_text,
    decides,
    make_patron,
    now,
    publish,
    service_table,
    standard_catalog,
)


def today() -> date:
    return now().date()


def _counts(counts: list[tuple[str, tuple[int, int, int, int]]], key: str) -> tuple[int, ...]:
    return next(values for service, values in counts if service == key)


def _released(report: services.ConsentReport) -> dict[str, tuple[int, ...]]:
    return {
        row.service: tuple(cell.value for cell in (row.on, row.off, row.never, row.paused))
        for row in report.rows
    }


async def _report(*, day: date | None = None, seed: int = 0) -> services.ConsentReport:
    return await services.consent_report(now=now(), today=day or today(), rng=Random(seed))  # noqa: S311 - seeded: the same noise every run


async def test_the_report_counts_each_patron_once_per_service(db: str) -> None:
    await publish(standard_catalog())
    patrons = [await make_patron() for _ in range(32)]
    for patron in patrons[:12]:
        await decides(patron.id, "reading_history", Decision.YES)
    for patron in patrons[12:22]:
        await decides(patron.id, "reading_history", Decision.NO)
    counted = await services.true_counts()
    assert _counts(counted, "reading_history") == (12, 10, 10, 0)


async def test_the_report_shows_the_true_counts_with_the_mechanisms_noise(db: str) -> None:
    await publish(standard_catalog())
    patrons = [await make_patron() for _ in range(25)]
    for patron in patrons[:3]:
        await decides(patron.id, "saved_lists", Decision.YES)
    counted = await services.true_counts()
    report = await _report(seed=7)
    # The same seed draws the same noise, in the report's order: row by row, column by column.
    noise = Noise(REPORT_EPSILON, 2 * len(counted))
    draws = Random(7)  # noqa: S311 - seeded, as the report's
    expected = {
        key: tuple(count + noise.draw(draws) for count in values) for key, values in counted
    }
    assert _released(report) == expected
    assert expected != dict(counted)  # noise was added: no true count is shown as such
    assert report.margin == noise.margin() > 0
    stored = await ReportRelease.filter(period=report.period).values_list("on", flat=True)
    assert sorted(stored) == sorted(values[0] for values in expected.values())


async def test_a_material_change_shows_as_paused(db: str) -> None:
    await publish(standard_catalog())
    patrons = [await make_patron() for _ in range(11)]
    for patron in patrons:
        await decides(patron.id, "reading_history", Decision.YES)
    await publish(standard_catalog(retention_days=900))
    counted = await services.true_counts()
    on, _, _, paused = _counts(counted, "reading_history")
    assert (on, paused) == (0, 11)


async def test_two_reports_around_one_patrons_choice_do_not_give_it_away(db: str) -> None:
    """The attack of issue 19: a report, one patron's hand-over at the desk (the audit trail
    gives its time), a report again. The second is the same release as the first: nothing
    new is drawn, so there is nothing to subtract."""
    await publish(standard_catalog())
    patrons = [await make_patron() for _ in range(30)]
    for patron in patrons[:-1]:
        await decides(patron.id, "newsletter", Decision.YES)
    before = await _report(seed=1)
    await decides(patrons[-1].id, "newsletter", Decision.NO)
    after = await _report(seed=2)
    assert _released(after) == _released(before)
    assert after.taken_at == before.taken_at


async def test_two_officers_opening_the_first_report_of_a_month_see_one_release(
    db: str,
) -> None:
    await publish(standard_catalog())
    for _ in range(5):
        await make_patron()
    reports = await asyncio.gather(*(_report(seed=seed) for seed in range(4)))
    assert len({tuple(sorted(_released(report).items())) for report in reports}) == 1
    assert await ReportRelease.all().count() == len(reports[0].rows)


async def test_a_new_month_draws_new_figures_and_keeps_the_old(db: str) -> None:
    await publish(standard_catalog())
    for _ in range(5):
        await make_patron()
    this_month = await _report(day=date(2026, 11, 30), seed=1)
    next_month = await _report(day=date(2026, 12, 1), seed=2)
    assert (this_month.period, next_month.period) == ("2026-11", "2026-12")
    assert _released(next_month) != _released(this_month)
    again = await _report(day=date(2026, 11, 2), seed=3)
    assert _released(again) == _released(this_month)


async def test_a_service_published_after_the_months_figures_waits_for_next_month(
    db: str,
) -> None:
    await publish(standard_catalog())
    first = await _report()
    await publish(standard_catalog() + service_table("extra_service"))
    report = await _report(seed=5)
    assert _released(report) == _released(first)
    assert report.later == ["extra_service"]


async def test_a_job_run_is_recorded_with_its_counts(db: str) -> None:
    async with services.recorded(JobName.APPLY_RETENTION, now) as run:
        run.counts["rows_deleted"] = 4
    stored = await JobRun.get(job="apply-retention")
    assert stored.outcome is RunOutcome.SUCCEEDED
    assert stored.finished_at is not None
    assert stored.counts == {"rows_deleted": 4}


async def test_a_job_that_raises_is_recorded_as_failed(db: str) -> None:
    with pytest.raises(RuntimeError):
        async with services.recorded(JobName.EXPIRE_CONSENTS, now):
            raise RuntimeError("disk full")
    stored = await JobRun.get(job="expire-consents")
    assert stored.outcome is RunOutcome.FAILED
    assert stored.failure == "RuntimeError"  # the kind only: a message can quote row values


async def test_a_run_killed_on_the_way_shows_as_unfinished_and_warns(db: str) -> None:
    # What a SIGKILL leaves: the row written at the start, nothing after.
    await JobRun.create(
        job="compact-erased",
        started_at=now() - timedelta(hours=7),
        outcome=RunOutcome.RUNNING,
        counts={},
    )
    jobs = {job.job: job for job in await services.job_summaries(now())}
    assert jobs["compact-erased"].runs[0].state is RunState.UNFINISHED
    assert jobs["compact-erased"].health is JobHealth.FAILING


async def test_a_job_not_run_for_two_days_is_a_warning(db: str) -> None:
    three_days_ago = now() - timedelta(days=3)
    await JobRun.create(
        job="purge-sessions",
        started_at=three_days_ago,
        finished_at=three_days_ago,
        outcome=RunOutcome.SUCCEEDED,
        counts={},
    )
    async with services.recorded(JobName.COMING_OF_AGE, now):
        pass
    jobs = {job.job: job for job in await services.job_summaries(now())}
    assert jobs["purge-sessions"].health is JobHealth.STALE
    assert jobs["coming-of-age"].health is JobHealth.OK
    assert jobs["deliver"].health is JobHealth.STALE  # never ran


async def test_promises_kept_shows_overdue_items_and_late_deletions(db: str) -> None:
    await publish(delivery_catalog("https://ils.library.example/hooks"))
    patron = await make_patron()
    two_days_ago = now() - timedelta(days=2)
    await decides(patron.id, "reading_history", Decision.YES, at=two_days_ago)
    await decides(patron.id, "reading_history", Decision.NO, at=two_days_ago)
    other = await make_patron()
    await decides(other.id, "reading_history", Decision.YES)
    await record_loans(other.id, [Loan("Old", "A", today() - timedelta(days=10))], now=now())
    await HistoryEntry.filter(patron_id=other.id).update(borrowed_on=today() - timedelta(days=4000))
    kept = await services.promises(now=now(), today=today())
    store = next(item for item in kept.stores if item.store == "reading_history")
    assert store.retained.overdue == 1
    assert store.retained.oldest == today() - timedelta(days=4000)
    assert kept.unconfirmed == {"ils": 1}
    assert kept.erasures["reading_history"].suppressed  # one erasure: fewer than 10


async def test_the_preview_names_each_change_and_refuses_what_publishing_would(db: str) -> None:
    await publish(standard_catalog())
    text = standard_catalog(retention_days=900, wording=" (new)")
    previews = {
        p.key: p for p in await preview_publication(parse_catalog(text, ("en",), STORE_KEYS))
    }
    assert previews["reading_history"].change is Change.MATERIAL
    assert previews["saved_lists"].change is Change.UNCHANGED
    assert previews["reading_history"].current_texts["en"]["summary"].endswith("en")
    assert previews["reading_history"].new_texts["en"]["summary"].endswith("(new)")
    without_newsletter = catalog_text(
        service_table("reading_history", store="reading_history"),
        service_table("saved_lists", store="saved_lists"),
    )
    with pytest.raises(CatalogError, match="newsletter"):
        await preview_publication(parse_catalog(without_newsletter, ("en",), STORE_KEYS))


async def test_a_preview_publishes_once_and_never_over_a_newer_publication(db: str) -> None:
    await publish(standard_catalog())
    base = await latest_publication()
    assert base is not None
    text = standard_catalog(retention_days=900)
    catalog = parse_catalog(text, ("en",), STORE_KEYS)
    await publish_catalog(catalog, text, now=now(), based_on=base[0])
    with pytest.raises(PublishedMeanwhile) as twice:
        await publish_catalog(catalog, text, now=now(), based_on=base[0])
    assert twice.value.source_hash == publishing.source_hash(text)


async def test_a_publication_and_its_audit_line_stand_or_fall_together(db: str) -> None:
    await publish(standard_catalog())
    base = await latest_publication()
    assert base is not None
    officer = await identity_of((await make_staff(Role.PRIVACY_OFFICER)).staff_id)
    text = standard_catalog(retention_days=900)
    catalog = parse_catalog(text, ("en",), STORE_KEYS)
    await refuse_audit_lines(db)
    with pytest.raises(Exception, match="audit refused"):
        await publish_catalog(catalog, text, now=now(), based_on=base[0], staff=officer)
    assert await latest_publication() == base  # not published without its audit line
    on_table = "" if db.startswith("sqlite") else " ON staff_audit_event"
    await Tortoise.get_connection("default").execute_script(f"DROP TRIGGER refuse_audit{on_table}")
    await publish_catalog(catalog, text, now=now(), based_on=base[0], staff=officer)
    published = await StaffAuditEvent.filter(action=AuditAction.CATALOG_PUBLISHED).count()
    assert published == 1


def test_a_preview_token_binds_the_text_the_base_and_the_officer() -> None:
    token = publishing.preview_token("secret", 7, 3, "text")
    assert publishing.read_preview_token("secret", 7, token, "text") == 3
    assert publishing.read_preview_token("secret", 7, token, "text!") is None
    assert publishing.read_preview_token("secret", 8, token, "text") is None
    assert publishing.read_preview_token("secret", 7, "4" + token[1:], "text") is None


async def test_outside_requests_are_registered_and_summarised_by_year(db: str) -> None:
    officer = await identity_of((await make_staff(Role.PRIVACY_OFFICER)).staff_id)
    this_year = today().year
    for number in range(11):
        await register.record_outside_request(
            SECRET,
            register.NewOutsideRequest(
                received_on=date(this_year, 1, 2),
                requesting_body="law_enforcement",
                body_name="County sheriff",
                instrument="subpoena",
                reference=f"S-{number}",
                asked="Loans of one patron",
                decision="refused" if number else "disclosed",
                disclosed="",
            ),
            officer,
            now=now(),
        )
    listed = await register.outside_requests()
    assert len(listed) == 11
    assert listed[0].handled_by == officer.display_name
    rows = {
        body: (cells, total)
        for body, cells, total in await register.transparency_summary(this_year)
    }
    cells, total = rows["law_enforcement"]
    assert total.value == 11
    assert [cell.value for cell in cells].count(None) == 2  # the 1 disclosed, and its complement
    assert (await register.transparency_summary(this_year - 1))[0][2].value == 0


def _sent(entry_key: str | None, asked: str = "Loans of one patron") -> register.NewOutsideRequest:
    return register.NewOutsideRequest(
        received_on=today(),
        requesting_body="court",
        body_name="District court",
        instrument="court_order",
        reference="CV-1",
        asked=asked,
        decision="pending",
        disclosed="",
        entry_key=entry_key,
    )


async def test_a_form_sent_eight_times_at_once_records_one_request(db: str) -> None:
    officer = await identity_of((await make_staff(Role.PRIVACY_OFFICER)).staff_id)
    recorded = await asyncio.gather(
        *(
            register.record_outside_request(SECRET, _sent("k" * 24), officer, now=now())
            for _ in range(8)
        )
    )
    assert len([entry for entry in recorded if entry is not None]) == 1
    assert len(await register.outside_requests()) == 1
    trail = await StaffAuditEvent.filter(action=AuditAction.OUTSIDE_REQUEST_RECORDED).count()
    assert trail == 1


async def test_a_form_changed_and_sent_again_is_a_request_of_its_own(db: str) -> None:
    """Back, an edit, send: what was typed the second time is not lost."""
    officer = await identity_of((await make_staff(Role.PRIVACY_OFFICER)).staff_id)
    first = await register.record_outside_request(SECRET, _sent("k" * 24), officer, now=now())
    edited = _sent("k" * 24, asked="Loans of one patron since March")
    second = await register.record_outside_request(SECRET, edited, officer, now=now())
    assert None not in (first, second)
    assert first != second


async def test_forms_without_a_key_are_recorded_each_time_they_are_sent(db: str) -> None:
    """A page shown before the register's forms had keys."""
    officer = await identity_of((await make_staff(Role.PRIVACY_OFFICER)).staff_id)
    for _ in range(2):
        assert await register.record_outside_request(SECRET, _sent(None), officer, now=now())
    assert len(await register.outside_requests()) == 2


async def test_the_register_refuses_a_card_number_in_its_free_text_whoever_records_it(
    db: str,
) -> None:
    officer = await identity_of((await make_staff(Role.PRIVACY_OFFICER)).staff_id)
    patron = await make_patron()
    with pytest.raises(DomainError) as refused:
        await register.record_outside_request(
            SECRET, _sent(None, asked=f"Loans of card {patron.card}"), officer, now=now()
        )
    assert refused.value.code == OfficerCode.CARD_IN_TEXT
    assert await register.outside_requests() == []


@pytest.mark.parametrize(
    "between", ["\u200b", "\u00ad", "_", ",", "\u00b7"], ids=["zwsp", "shy", "_", ",", "dot"]
)
async def test_the_register_refuses_a_card_split_by_invisible_or_unusual_characters(
    db: str, between: str
) -> None:
    officer = await identity_of((await make_staff(Role.PRIVACY_OFFICER)).staff_id)
    patron = await make_patron()
    split = between.join(patron.card[i : i + 4] for i in range(0, len(patron.card), 4))
    with pytest.raises(DomainError) as refused:
        await register.record_outside_request(
            SECRET, _sent(None, asked=f"Loans of card {split}"), officer, now=now()
        )
    assert refused.value.code == OfficerCode.CARD_IN_TEXT
    assert await register.outside_requests() == []


async def test_a_decision_refuses_a_card_number_in_what_was_disclosed(db: str) -> None:
    officer = await identity_of((await make_staff(Role.PRIVACY_OFFICER)).staff_id)
    patron = await make_patron()
    request_id = await register.record_outside_request(SECRET, _sent(None), officer, now=now())
    assert request_id is not None
    with pytest.raises(DomainError) as refused:
        await register.decide_outside_request(
            SECRET, request_id, "disclosed", f"loans of {patron.card}", officer, now=now()
        )
    assert refused.value.code == OfficerCode.CARD_IN_TEXT
    assert (await register.outside_requests())[0].decision == "pending"


async def test_the_register_keeps_the_card_named_only_as_a_keyed_hash(db: str) -> None:
    officer = await identity_of((await make_staff(Role.PRIVACY_OFFICER)).staff_id)
    patron = await make_patron()
    named = replace(_sent("a" * 24), card=patron.card)
    unknown = replace(_sent("b" * 24), card="2999 0000 0001")
    await register.record_outside_request(SECRET, named, officer, now=now())
    await register.record_outside_request(SECRET, unknown, officer, now=now())
    keys = {entry.reference: entry.patron_key for entry in await register.outside_requests()}
    stored = sorted(key or "" for key in keys.values())
    assert audit.patron_key(SECRET, patron.id) in stored
    assert all(key and "2999" not in key and patron.card not in key for key in stored)


async def test_two_officers_deciding_one_request_at_once_decide_it_once(db: str) -> None:
    officer = await identity_of((await make_staff(Role.PRIVACY_OFFICER)).staff_id)
    request_id = await register.record_outside_request(
        SECRET,
        register.NewOutsideRequest(
            received_on=today(),
            requesting_body="law_enforcement",
            body_name="County sheriff",
            instrument="subpoena",
            reference="S-1",
            asked="Loans of one patron",
            decision="pending",
            disclosed="",
        ),
        officer,
        now=now(),
    )
    assert request_id is not None
    outcomes = await asyncio.gather(
        register.decide_outside_request(SECRET, request_id, "refused", "", officer, now=now()),
        register.decide_outside_request(
            SECRET, request_id, "disclosed", "the loans", officer, now=now()
        ),
    )
    assert sorted(outcomes) == [register.Decided.ALREADY, register.Decided.NOW]
    decided = await StaffAuditEvent.filter(action=AuditAction.OUTSIDE_REQUEST_DECIDED).count()
    assert decided == 1
    stored = (await register.outside_requests())[0]
    first = outcomes.index(register.Decided.NOW)
    assert (stored.decision, stored.disclosed) == [("refused", ""), ("disclosed", "the loans")][
        first
    ]
    assert await register.decide_outside_request(
        SECRET, request_id + 1, "refused", "", officer, now=now()
    ) is (register.Decided.UNKNOWN)


async def test_two_officers_publishing_at_once_publish_once(db: str) -> None:
    await publish(standard_catalog())
    base = await latest_publication()
    assert base is not None
    texts = [standard_catalog(retention_days=900), standard_catalog(retention_days=1200)]
    outcomes = await asyncio.gather(
        *(
            publish_catalog(
                parse_catalog(text, ("en",), STORE_KEYS), text, now=now(), based_on=base[0]
            )
            for text in texts
        ),
        return_exceptions=True,
    )
    assert sorted(type(outcome).__name__ for outcome in outcomes) == [
        "PublishReport",
        "PublishedMeanwhile",
    ]
    assert await Publication.all().count() == 2


async def test_two_officers_making_the_very_first_publication_at_once_publish_once(
    db: str,
) -> None:
    """No publication yet, so no row to lock: the services' unique keys decide, and the
    second officer is told someone published first, never shown a server error."""
    texts = [standard_catalog(retention_days=900), standard_catalog(retention_days=1200)]
    outcomes = await asyncio.gather(
        *(
            publish_catalog(parse_catalog(text, ("en",), STORE_KEYS), text, now=now(), based_on=0)
            for text in texts
        ),
        return_exceptions=True,
    )
    assert sorted(type(outcome).__name__ for outcome in outcomes) == [
        "PublishReport",
        "PublishedMeanwhile",
    ]
    assert await Publication.all().count() == 1


async def test_job_runs_are_kept_four_hundred_days(db: str) -> None:
    for days in (401, 399):
        ended = now() - timedelta(days=days)
        await JobRun.create(
            job="purge-sessions",
            started_at=ended,
            finished_at=ended,
            outcome=RunOutcome.SUCCEEDED,
            counts={},
        )
    assert await services.purge_old_runs(now()) == 1
    assert await JobRun.all().count() == 1
