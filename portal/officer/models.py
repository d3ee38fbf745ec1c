"""What the privacy officer's pages keep: the history of the scheduled jobs, the register of
requests from outside bodies (law enforcement, courts, other agencies), and the consent
report's figures as released each month."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model

from portal.officer.policy import RunOutcome


class JobRun(Model):
    """One run of a scheduled job, written when it starts (in its own transaction) and
    completed when it ends: a run a crash interrupted stays `running` and is shown as not
    finished, never as a success. Kept 400 days after it ended (`portal purge-sessions`)."""

    id = fields.IntField(primary_key=True)
    job = fields.CharField(max_length=30)
    started_at = fields.DatetimeField()
    finished_at = fields.DatetimeField(null=True)
    # The delivery worker running as a service: its last sign of life.
    alive_at = fields.DatetimeField(null=True)
    outcome = fields.CharEnumField(RunOutcome, max_length=10)
    counts: dict[str, Any] = fields.JSONField()
    failure = fields.CharField(max_length=200, null=True)
    # Progress, written after each batch committed (portal.batches): rows (or patrons) looked
    # at so far, in how many batches, when the latest ended, and how many there were to look
    # at when the run started (None when they cannot be counted cheaply).
    done = fields.IntField(default=0)
    batches = fields.IntField(default=0)
    progress_at = fields.DatetimeField(null=True)
    total = fields.IntField(null=True)

    class Meta:
        table = "job_run"
        indexes = (("job", "started_at"),)


class OutsideRequest(Model):
    """A request for patron information from outside the library, as the privacy officer
    records it. The patron, when the legal instrument names one, only as a keyed hash (as
    the staff audit trail does); never a card number or a name. Kept for the life of the
    database: the library's record of what it was asked and what it disclosed."""

    id = fields.IntField(primary_key=True)
    received_on = fields.DateField()
    requesting_body = fields.CharField(max_length=30)  # a RequestingBody value
    body_name = fields.CharField(max_length=200)
    instrument = fields.CharField(max_length=30)  # an Instrument value
    reference = fields.CharField(max_length=200)
    asked = fields.TextField()
    decision = fields.CharField(max_length=30)  # a RequestDecision value
    disclosed = fields.TextField()
    patron_key = fields.CharField(max_length=64, null=True)
    handled_by: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "models.StaffMember", related_name=False, on_delete=fields.RESTRICT
    )
    handled_by_name = fields.CharField(max_length=100)
    recorded_at = fields.DatetimeField()
    # A hash of the random key the form was given when it was shown and of what was sent
    # with it: the same form sent twice (a double click, a resend after a timeout) records
    # one request. None for requests recorded before it existed.
    entry_key = fields.CharField(max_length=64, null=True, unique=True)

    handled_by_id: int

    class Meta:
        table = "outside_request"
        ordering = ("-received_on", "-id")


class ReportRelease(Model):
    """One service's row of the consent report for one month, as released: true counts plus
    noise (portal.officer.policy.Noise), never the true counts. Drawn the first time the
    report is read in the month and kept: every later reading that month shows these figures,
    so asking again releases nothing new. Kept for the life of the database (a deleted row
    would be drawn again, with new noise to average)."""

    id = fields.IntField(primary_key=True)
    period = fields.CharField(max_length=7)  # "2026-11", the library's calendar month
    service = fields.CharField(max_length=40)  # the catalog's key
    on = fields.IntField()
    off = fields.IntField()
    never = fields.IntField()
    paused = fields.IntField()
    # The month's privacy budget spent on the whole release ("1", "1/2") and the ± range of
    # each count at portal.officer.policy.CONFIDENCE.
    epsilon = fields.CharField(max_length=20)
    margin = fields.IntField()
    taken_at = fields.DatetimeField()

    class Meta:
        table = "report_release"
        unique_together = (("period", "service"),)
