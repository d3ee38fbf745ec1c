"""The privacy officer's use cases: the consent report (aggregate only, released with
differential privacy once a month), whether the portal keeps its promises (retention,
erasures, deletions downstream, the scheduled jobs), and the record of each scheduled job's
runs. Publishing the catalog is portal.officer.publishing;
the register of outside requests portal.officer.register."""

from __future__ import annotations

import random
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.functions import Count
from tortoise.transactions import in_transaction

from portal.batches import Progress, delete_in_batches, no_progress
from portal.catalog.services import all_services
from portal.db import fetch_rows
from portal.erasure.services import StoreRetention, retention_report
from portal.ledger.models import ConsentEvent, EventKind
from portal.officer.models import JobRun, ReportRelease
from portal.officer.policy import (
    REPORT_EPSILON,
    Cell,
    Estimate,
    JobHealth,
    JobName,
    Noise,
    RunOutcome,
    RunProgress,
    RunState,
    job_health,
    job_progress,
    report_period,
    report_sensitivity,
    run_state,
    suppress_total,
)
from portal.outbox import services as outbox
from portal.patrons.models import Patron

ERASURES_OVER = timedelta(days=30)
# A site may run `portal deliver --once` every minute: the history keeps a year and a bit.
KEEP_RUNS = timedelta(days=400)
RUNS_SHOWN = 10

# --- the consent report --------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceCounts:
    """One service: patrons with it on, off, never asked, paused (each an estimate)."""

    service: str
    on: Estimate
    off: Estimate
    never: Estimate
    paused: Estimate


@dataclass(frozen=True)
class ConsentReport:
    """The month's released figures: what they spent, their ± range, and the services
    published after they were drawn (in next month's figures)."""

    period: str
    taken_at: datetime
    epsilon: Fraction
    margin: int
    rows: list[ServiceCounts]
    later: list[str]


# Counted in the database: one row per service and state, however many patrons.
_STATES_QUERY = (
    "SELECT service_id, CASE WHEN granted AND suspended_at IS NOT NULL THEN 'paused' "
    "WHEN granted THEN 'on' ELSE 'off' END AS state, COUNT(*) AS patrons "
    "FROM consent_state GROUP BY 1, 2"
)


async def true_counts() -> list[tuple[str, tuple[int, int, int, int]]]:
    """Per service in the catalog's order: patrons on, off, never asked, paused. Every patron
    is in exactly one column of each row. Never shown: consent_report releases these only
    with noise."""
    patrons = await Patron.all().count()
    counted: Counter[tuple[int, str]] = Counter()
    for row in await fetch_rows(_STATES_QUERY):
        counted[(row["service_id"], row["state"])] = int(row["patrons"])
    counts = []
    for service in sorted(await all_services(), key=lambda item: item.position):
        on, off, paused = (counted[(service.id, column)] for column in ("on", "off", "paused"))
        never = max(patrons - on - off - paused, 0)
        counts.append((service.key, (on, off, never, paused)))
    return counts


async def consent_report(
    *, now: datetime, today: date, rng: random.Random | None = None
) -> ConsentReport:
    """The month's figures: drawn with differential privacy the first time the report is
    read in the month (the library's calendar), the same figures every later time. Two
    reports a few minutes apart are the same release, so their difference says nothing; a
    new month's figures have new noise, and the budget is spent again (REPORT_EPSILON a
    month). `rng`: a seeded one in tests; the system's secure source otherwise."""
    period = report_period(today)
    if not await ReportRelease.filter(period=period).exists():
        await _release(period, now, rng or secrets.SystemRandom())
    released = await ReportRelease.filter(period=period).order_by("id")
    shown = {row.service for row in released}
    first = released[0] if released else None  # none: no service is published yet
    return ConsentReport(
        period=period,
        taken_at=first.taken_at if first else now,
        epsilon=Fraction(first.epsilon) if first else REPORT_EPSILON,
        margin=first.margin if first else 0,
        rows=[
            ServiceCounts(
                row.service, *(Estimate(n) for n in (row.on, row.off, row.never, row.paused))
            )
            for row in released
        ],
        later=[
            service.key
            for service in sorted(await all_services(), key=lambda item: item.position)
            if service.key not in shown
        ],
    )


async def _release(period: str, now: datetime, rng: random.Random) -> None:
    counts = await true_counts()
    if not counts:
        return
    # One patron moves one unit out of one column and into another in every row: the noise
    # covers all the rows together, so the month's budget is spent once for the whole report.
    noise = Noise(REPORT_EPSILON, report_sensitivity(len(counts)))
    rows = [
        ReportRelease(
            period=period,
            service=key,
            **{
                column: count + noise.draw(rng)
                for column, count in zip(("on", "off", "never", "paused"), values, strict=True)
            },
            epsilon=str(REPORT_EPSILON),
            margin=noise.margin(),
            taken_at=now,
        )
        for key, values in counts
    ]
    try:
        async with in_transaction():
            await ReportRelease.bulk_create(rows)
    except IntegrityError:
        pass  # another officer's reading drew the month's figures first: theirs are shown


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
    progress: RunProgress


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
        job_progress(
            done=run.done, total=run.total, started_at=run.started_at, progress_at=run.progress_at
        ),
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
    """A run under way: the job adds its counts; `alive` marks a long-running one alive;
    `batch_done` records its progress after each batch."""

    id: int
    clock: Any
    counts: dict[str, Any] = field(default_factory=dict)
    failure: str | None = None
    done: int = 0
    batches: int = 0

    async def counted(self, total: int | None) -> None:
        """How many the job has to look at, counted before it starts (None: not cheaply)."""
        await JobRun.filter(id=self.id).update(total=total)

    async def batch_done(self, rows: int) -> None:
        """After each batch committed (portal.batches.Progress): one short write of its own,
        outside the job's transactions, so the page shows it while the job runs."""
        self.done += rows
        self.batches += 1
        await JobRun.filter(id=self.id).update(
            done=self.done, batches=self.batches, progress_at=self.clock()
        )

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
    run = Run(row.id, clock)
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


async def purge_old_runs(now: datetime, progress: Progress = no_progress) -> int:
    """Scheduled (`portal purge-sessions`): runs that ended more than KEEP_RUNS ago."""
    return await delete_in_batches(JobRun.filter(finished_at__lt=now - KEEP_RUNS), progress)
