"""Pure consent rules: what a patron's stored choice means today, and what a decision does.

Strictest by default (PRODUCT.md promise 1): no stored choice means off. A consent covers a
service only while it was given to the service's current terms (promise 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Decision(StrEnum):
    YES = "yes"
    NO = "no"


class Status(StrEnum):
    NEVER_ASKED = "never_asked"
    ON = "on"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"
    NEEDS_RENEWAL = "needs_renewal"


@dataclass(frozen=True)
class StoredChoice:
    granted: bool
    terms_revision: int
    suspended: bool
    ever_granted: bool


def status_of(choice: StoredChoice | None, current_terms_revision: int) -> Status:
    if choice is None:
        return Status.NEVER_ASKED
    if choice.granted:
        if choice.suspended or choice.terms_revision != current_terms_revision:
            return Status.NEEDS_RENEWAL
        return Status.ON
    return Status.WITHDRAWN if choice.ever_granted else Status.REFUSED


def is_current(choice: StoredChoice | None, current_terms_revision: int) -> bool:
    return status_of(choice, current_terms_revision) is Status.ON


def holds_retained_data(status: Status) -> bool:
    """A suspended consent keeps what it already covered until the patron answers."""
    return status in (Status.ON, Status.NEEDS_RENEWAL)


def already_decided(status: Status, decision: Decision) -> bool:
    """The outcome the patron asked for is already in place (e.g. a double submit)."""
    if decision is Decision.YES:
        return status is Status.ON
    return status in (Status.REFUSED, Status.WITHDRAWN)


def grace_period_over(suspended_at: datetime, now: datetime, grace_days: int) -> bool:
    return (now - suspended_at).total_seconds() >= grace_days * 86_400
