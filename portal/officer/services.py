"""The privacy officer's use cases: publishing the catalog, the consent report (aggregate
only), whether the portal keeps its promises (retention, erasures, deletions downstream, the
scheduled jobs), the record of each scheduled job's runs, and the register of outside
requests."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from tortoise.functions import Count
from tortoise.transactions import in_transaction

from portal.catalog.policy import Catalog
from portal.catalog.publishing import PublishReport, publish_catalog
from portal.catalog.services import all_services
from portal.consent.services import pause_for_material_change
from portal.credentials.policy import KeyPurpose, keyed_hash
from portal.db import fetch_rows
from portal.erasure.services import StoreRetention, retention_report
from portal.errors import DomainError, OfficerCode
from portal.ledger.models import ConsentEvent, EventKind
from portal.officer.models import JobRun, OutsideRequest
from portal.officer.policy import (
    Cell,
    JobHealth,
    JobName,
    RequestDecision,
    RunOutcome,
    RunState,
    card_candidates,
    job_health,
    run_state,
    suppress_row,
    suppress_total,
    transparency_rows,
)
from portal.outbox import services as outbox
from portal.patrons.models import Patron
from portal.patrons.policy import normalise_card
from portal.staff import audit
from portal.staff.policy import AuditAction
from portal.staff.services import StaffIdentity

ERASURES_OVER = timedelta(days=30)
# A site may run `portal deliver --once` every minute: the history keeps a year and a bit.
KEEP_RUNS = timedelta(days=400)
RUNS_SHOWN = 10

# --- the consent report --------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceCounts:
    """One service: patrons with it on, off, never asked, paused (each suppressed)."""

    service: str
    on: Cell
    off: Cell
    never: Cell
    paused: Cell


# Counted in the database: one row per service and state, however many patrons.
_STATES_QUERY = (
    "SELECT service_id, CASE WHEN granted AND suspended_at IS NOT NULL THEN 'paused' "
    "WHEN granted THEN 'on' ELSE 'off' END AS state, COUNT(*) AS patrons "
    "FROM consent_state GROUP BY 1, 2"
)


async def publish(
    catalog: Catalog,
    source_text: str,
    *,
    now: datetime,
    based_on: int | None = None,
    staff: StaffIdentity | None = None,
) -> PublishReport:
    """Publish a catalog; a material change pauses the consents given to the old terms, and
    the staff member who published it (none from the command line) is in the audit trail,
    all in one transaction. The officer's page and `portal publish` both come here."""

    async def audited(report: PublishReport) -> None:
        if staff is None:
            return
        await audit.append(
            staff,
            AuditAction.CATALOG_PUBLISHED,
            now=now,
            detail={
                "source_hash": source_hash(source_text),
                "changes": {key: change.value for key, change in report.changes.items()},
                "consents_paused": report.consents_suspended,
            },
        )

    return await publish_catalog(
        catalog,
        source_text,
        now=now,
        based_on=based_on,
        pause_consents=pause_for_material_change,
        record=audited,
    )


async def consent_report() -> list[ServiceCounts]:
    """Counts only, per service; never a patron. Every patron is in exactly one column of
    each row, so the row is suppressed as a whole (portal.officer.policy.suppress_row)."""
    patrons = await Patron.all().count()
    counted: Counter[tuple[int, str]] = Counter()
    for row in await fetch_rows(_STATES_QUERY):
        counted[(row["service_id"], row["state"])] = int(row["patrons"])
    report = []
    for service in sorted(await all_services(), key=lambda item: item.position):
        on, off, paused = (counted[(service.id, column)] for column in ("on", "off", "paused"))
        never = max(patrons - on - off - paused, 0)
        cells = suppress_row([on, off, never, paused])
        report.append(ServiceCounts(service.key, *cells))
    return report


# --- promises kept -------------------------------------------------------------------------


@dataclass(frozen=True)
class JobSummary:
    job: str
    health: JobHealth
    last_success: datetime | None
    runs: list[RunView] = field(default_factory=list)


@dataclass(frozen=True)
class RunView:
    id: int
    job: str
    started_at: datetime
    finished_at: datetime | None
    state: RunState
    counts: dict[str, Any]
    failure: str | None


@dataclass(frozen=True)
class Promises:
    stores: list[StoreRetention]
    erasures: dict[str, Cell]  # by service, over ERASURES_OVER
    unconfirmed: dict[str, int]  # by connected system: deletions unconfirmed after a day
    jobs: list[JobSummary]


def _run_view(run: JobRun, now: datetime) -> RunView:
    return RunView(
        run.id,
        run.job,
        run.started_at,
        run.finished_at,
        run_state(RunOutcome(run.outcome), run.started_at, run.alive_at, now),
        run.counts,
        run.failure,
    )


async def job_summaries(now: datetime) -> list[JobSummary]:
    summaries = []
    for job in JobName:
        runs = [
            _run_view(run, now)
            for run in await JobRun.filter(job=job.value).order_by("-id").limit(RUNS_SHOWN)
        ]
        latest_ok = (
            await JobRun.filter(job=job.value, outcome=RunOutcome.SUCCEEDED).order_by("-id").first()
        )
        last_success = latest_ok.finished_at if latest_ok else None
        if runs and runs[0].state is RunState.RUNNING:
            # A worker running as a service: alive is as good as a run that ended well.
            alive = await JobRun.get(id=runs[0].id)
            moments = [m for m in (last_success, alive.alive_at or alive.started_at) if m]
            last_success = max(moments)
        health = job_health(last_success, runs[0].state if runs else None, now)
        summaries.append(JobSummary(job.value, health, last_success, runs))
    return summaries


async def promises(*, now: datetime, today: date) -> Promises:
    services = {service.id: service.key for service in await all_services()}
    erased: Counter[str] = Counter()
    for row in (
        await ConsentEvent.filter(kind=EventKind.ERASED, occurred_at__gte=now - ERASURES_OVER)
        .annotate(erasures=Count("id"))
        .group_by("service_id")
        .values("service_id", "erasures")
    ):
        if row["service_id"] in services:
            erased[services[row["service_id"]]] = int(row["erasures"])
    late = Counter(request.system for request in await outbox.unconfirmed(now=now))
    return Promises(
        stores=await retention_report(now=now, today=today),
        erasures={key: suppress_total(erased[key]) for key in services.values()},
        unconfirmed=dict(sorted(late.items())),
        jobs=await job_summaries(now),
    )


# --- recording the scheduled jobs ----------------------------------------------------------


@dataclass
class Run:
    """A run under way: the job adds its counts; `alive` marks a long-running one alive."""

    id: int
    counts: dict[str, Any] = field(default_factory=dict)
    failure: str | None = None

    def fail(self, reason: str) -> None:
        """The job stopped by itself without doing its work (e.g. exit code 2)."""
        self.failure = reason[:200]

    async def alive(self, now: datetime) -> None:
        await JobRun.filter(id=self.id).update(alive_at=now, counts=self.counts)


@asynccontextmanager
async def recorded(job: JobName, clock: Any) -> AsyncIterator[Run]:
    """Records a run of `job`: written before the work starts (outside any transaction of
    the job's, so it is committed whatever happens next), ended as succeeded or failed. A
    run killed on the way stays `running` and is shown as unfinished. `clock`: utcnow."""
    row = await JobRun.create(
        job=job.value, started_at=clock(), outcome=RunOutcome.RUNNING, counts={}
    )
    run = Run(row.id)
    try:
        yield run
    except BaseException as error:
        await JobRun.filter(id=row.id).update(
            finished_at=clock(),
            outcome=RunOutcome.FAILED,
            counts=run.counts,
            # Only the kind of failure: a database error's message can quote row values.
            failure=type(error).__name__[:200],
        )
        raise
    await JobRun.filter(id=row.id).update(
        finished_at=clock(),
        outcome=RunOutcome.FAILED if run.failure else RunOutcome.SUCCEEDED,
        counts=run.counts,
        failure=run.failure,
    )


async def purge_old_runs(now: datetime) -> int:
    """Scheduled (`portal purge-sessions`): runs that ended more than KEEP_RUNS ago."""
    deleted: int = await JobRun.filter(finished_at__lt=now - KEEP_RUNS).delete()
    return deleted


# --- the catalog from the browser ----------------------------------------------------------


def preview_token(secret: str, staff_id: int, based_on: int, text: str) -> str:
    """Binds a preview to exactly the text previewed, the publication it was compared with,
    and the officer who saw it: publishing checks all three."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    message = f"catalog-preview:{staff_id}:{based_on}:{digest}".encode()
    signature = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"{based_on}.{digest}.{signature}"


def read_preview_token(secret: str, staff_id: int, token: str, text: str) -> int | None:
    """The publication the preview was based on, if the token is this officer's for
    exactly this text; otherwise None."""
    based_on, _, _ = token.partition(".")
    if not based_on.isdigit():
        return None
    expected = preview_token(secret, staff_id, int(based_on), text)
    return int(based_on) if hmac.compare_digest(expected, token) else None


def source_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# --- the register of outside requests ------------------------------------------------------


@dataclass(frozen=True)
class NewOutsideRequest:
    received_on: date
    requesting_body: str
    body_name: str
    instrument: str
    reference: str
    asked: str
    decision: str
    disclosed: str
    card: str = ""  # the card the instrument names, as typed: kept only as a keyed hash
    entry_key: str | None = None  # the form's random key (forms.new_entry_key)


@dataclass(frozen=True)
class OutsideRequestView:
    id: int
    received_on: date
    requesting_body: str
    body_name: str
    instrument: str
    reference: str
    asked: str
    decision: str
    disclosed: str
    patron_key: str | None
    handled_by: str
    recorded_at: datetime


_INSERT_REQUEST = (
    "INSERT INTO outside_request (received_on, requesting_body, body_name, instrument, "
    "reference, asked, decision, disclosed, patron_key, handled_by_id, handled_by_name, "
    "recorded_at, entry_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (entry_key) DO NOTHING RETURNING id"
)


def _entry_key(new: NewOutsideRequest, patron_key: str | None) -> str | None:
    """The form's key and what was sent with it: the same form sent twice records once, and
    a form sent again after a change (Back, an edit, send) is a request of its own."""
    if new.entry_key is None:
        return None
    sent = [new.entry_key, new.received_on.isoformat(), new.requesting_body, new.body_name]
    sent += [new.instrument, new.reference, new.asked, new.decision, new.disclosed]
    sent += [patron_key or ""]
    return hashlib.sha256(json.dumps(sent).encode()).hexdigest()


async def _patron_reference(secret: str, card: str) -> str | None:
    """The patron the instrument names, as the audit trail's keyed hash; a card the portal
    does not know is kept as a keyed hash of the card itself. Never the number."""
    normalised = normalise_card(card) if card else None
    if normalised is None:
        return None
    patron = await Patron.get_or_none(card_lookup=keyed_hash(secret, KeyPurpose.CARD, normalised))
    if patron is not None:
        return audit.patron_key(secret, patron.id)
    return keyed_hash(secret, KeyPurpose.OUTSIDE_REQUEST_CARD, normalised)


async def record_outside_request(
    secret: str, new: NewOutsideRequest, staff: StaffIdentity, *, now: datetime
) -> int | None:
    """The new entry's id, recorded with its audit entry in one transaction; None if this
    form was recorded already. A unique key decides, so two sends at once record one.
    CARD_IN_TEXT, and nothing recorded, when a patron's card number is in the free text:
    the register keeps the card named only as a keyed hash, whoever records it."""
    await refuse_card_numbers(secret, new.body_name, new.reference, new.asked, new.disclosed)
    patron_key = await _patron_reference(secret, new.card)
    async with in_transaction():
        rows = await fetch_rows(
            _INSERT_REQUEST,
            new.received_on,
            new.requesting_body,
            new.body_name,
            new.instrument,
            new.reference,
            new.asked,
            new.decision,
            new.disclosed,
            patron_key,
            staff.staff_id,
            staff.display_name,
            now,
            _entry_key(new, patron_key),
        )
        if not rows:
            return None
        request_id: int = rows[0]["id"]
        await audit.append(
            staff,
            AuditAction.OUTSIDE_REQUEST_RECORDED,
            now=now,
            patron_key=patron_key,
            detail={"request": request_id},
        )
    return request_id


_LOOKUPS_PER_QUERY = 500


async def refuse_card_numbers(secret: str, *texts: str) -> None:
    """Raises CARD_IN_TEXT if any of the texts holds the number of a patron's card, which
    the register keeps only as a coded reference (in its own field)."""
    if await names_a_card(secret, texts):
        raise DomainError(OfficerCode.CARD_IN_TEXT)


async def names_a_card(secret: str, texts: Iterable[str]) -> bool:
    """Whether any of the texts holds the number of a patron's card. Only the cards the
    portal knows can be told apart from other references; every word that could be one is
    looked up, in a query per _LOOKUPS_PER_QUERY of them."""
    lookups = sorted(
        {
            keyed_hash(secret, KeyPurpose.CARD, candidate)
            for text in texts
            for candidate in card_candidates(text)
        }
    )
    for start in range(0, len(lookups), _LOOKUPS_PER_QUERY):
        if await Patron.filter(
            card_lookup__in=lookups[start : start + _LOOKUPS_PER_QUERY]
        ).exists():
            return True
    return False


class Decided(StrEnum):
    NOW = "now"
    ALREADY = "already"  # a double submit, or another officer first: nothing changes
    UNKNOWN = "unknown"


async def decide_outside_request(
    secret: str,
    request_id: int,
    decision: str,
    disclosed: str,
    staff: StaffIdentity,
    *,
    now: datetime,
) -> Decided:
    """A pending request decided later: its decision and what was disclosed, and in the
    same transaction the staff audit entry of who decided it and when. Only a pending
    request is decided, in one update, so that a decision is never silently replaced.
    CARD_IN_TEXT, and nothing decided, when a patron's card number is in what was disclosed."""
    await refuse_card_numbers(secret, disclosed)
    async with in_transaction():
        updated: int = await OutsideRequest.filter(
            id=request_id, decision=RequestDecision.PENDING
        ).update(decision=decision, disclosed=disclosed)
        if updated:
            await audit.append(
                staff,
                AuditAction.OUTSIDE_REQUEST_DECIDED,
                now=now,
                detail={"request": request_id, "decision": decision},
            )
            return Decided.NOW
    return Decided.ALREADY if await OutsideRequest.exists(id=request_id) else Decided.UNKNOWN


async def outside_requests(year: int | None = None) -> list[OutsideRequestView]:
    query = OutsideRequest.all()
    if year is not None:
        query = query.filter(
            received_on__gte=date(year, 1, 1), received_on__lt=date(year + 1, 1, 1)
        )
    return [
        OutsideRequestView(
            row.id,
            row.received_on,
            row.requesting_body,
            row.body_name,
            row.instrument,
            row.reference,
            row.asked,
            row.decision,
            row.disclosed,
            row.patron_key,
            row.handled_by_name,
            row.recorded_at,
        )
        for row in await query.order_by("-received_on", "-id")
    ]


async def transparency_summary(year: int) -> list[tuple[str, tuple[Cell, ...], Cell]]:
    """Per requesting body, the year's requests by decision (small cells suppressed)."""
    counts: Counter[tuple[str, str]] = Counter(
        (row.requesting_body, row.decision) for row in await outside_requests(year)
    )
    return transparency_rows(dict(counts))
