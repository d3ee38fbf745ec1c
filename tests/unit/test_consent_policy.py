"""Pure consent rules: strictest defaults and what a stored choice means."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest

from portal.catalog.jurisdiction import AgeBand, AgeContext
from portal.consent.policy import (
    Change,
    ConsentError,
    Decision,
    Party,
    Status,
    StoredChoice,
    already_decided,
    grace_period_over,
    holds_retained_data,
    plan_decision,
    status_of,
)
from portal.errors import ConsentCode
from portal.ledger.vocabulary import Audience


def choice(granted: bool, terms: int = 1, suspended: bool = False, ever: bool = False):
    return StoredChoice(
        granted=granted, terms_revision=terms, suspended=suspended, ever_granted=ever
    )


def test_no_stored_choice_is_off() -> None:
    assert status_of(None, 1) is Status.NEVER_ASKED


def test_consent_to_current_terms_is_on() -> None:
    assert status_of(choice(True), 1) is Status.ON


def test_consent_to_older_terms_needs_renewal_and_is_not_current() -> None:
    assert status_of(choice(True, terms=1), 2) is Status.NEEDS_RENEWAL


def test_suspended_consent_is_not_current() -> None:
    assert status_of(choice(True, suspended=True), 1) is Status.NEEDS_RENEWAL


def test_refusal_and_withdrawal_are_told_apart() -> None:
    assert status_of(choice(False), 1) is Status.REFUSED
    assert status_of(choice(False, ever=True), 1) is Status.WITHDRAWN


def test_only_on_or_paused_services_hold_data() -> None:
    assert holds_retained_data(Status.ON)
    assert holds_retained_data(Status.NEEDS_RENEWAL)
    assert not holds_retained_data(Status.REFUSED)
    assert not holds_retained_data(Status.NEVER_ASKED)


def test_already_decided_recognises_repeats() -> None:
    assert already_decided(Status.ON, Decision.YES)
    assert not already_decided(Status.NEEDS_RENEWAL, Decision.YES)
    assert already_decided(Status.WITHDRAWN, Decision.NO)
    assert not already_decided(Status.NEVER_ASKED, Decision.NO)


def test_grace_period_boundary() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert not grace_period_over(start, start + timedelta(days=30) - timedelta(seconds=1), 30)
    assert grace_period_over(start, start + timedelta(days=30), 30)


@dataclass(frozen=True)
class Stored:
    """A stored consent state, as plan_decision reads one."""

    granted: bool
    last_kind: str = "given"
    terms_revision: int = 1
    suspended_at: datetime | None = None
    granted_by: str | None = "patron"


ADULT = AgeContext(born_on=None, today=date(2026, 12, 7), band=AgeBand.ADULT)
CHILD = AgeContext(born_on=date(2018, 1, 1), today=date(2026, 12, 7), band=AgeBand.CHILD)
PAUSED = Stored(True, suspended_at=datetime(2026, 12, 1, tzinfo=UTC))


def plan(decision: Decision, party: Party, age: AgeContext, state: Stored | None, form: int):
    """Plan with the stored state at revision 3 (0 when never asked), terms at revision 1."""
    return plan_decision(
        decision=decision,
        party=party,
        age=age,
        minimum_age=None,
        state=state,
        terms_revision=1,
        expected_revision=form,
        current_revision=3 if state else 0,
        has_child_version=True,
    )


YES, NO, PATRON, GUARDIAN = Decision.YES, Decision.NO, Party.PATRON, Party.GUARDIAN
WITHDRAWN = Stored(False, "withdrawn")


@pytest.mark.parametrize(
    ("asked", "change", "audience"),
    [
        ((YES, PATRON, ADULT, None, 0), Change.GIVE, Audience.ADULT),
        ((NO, PATRON, ADULT, None, 0), Change.REFUSE, Audience.ADULT),
        ((YES, PATRON, ADULT, Stored(True), 3), None, Audience.ADULT),
        ((YES, PATRON, ADULT, Stored(True), 5), None, Audience.ADULT),
        ((YES, PATRON, ADULT, PAUSED, 3), Change.RENEW, Audience.ADULT),
        ((NO, PATRON, ADULT, Stored(True), 3), Change.WITHDRAW, Audience.ADULT),
        ((NO, PATRON, ADULT, PAUSED, 3), Change.WITHDRAW, Audience.ADULT),
        # A second no from an old form: nothing to do; from the current form: recorded again.
        ((NO, PATRON, ADULT, WITHDRAWN, 2), None, Audience.ADULT),
        ((NO, PATRON, ADULT, WITHDRAWN, 3), Change.REFUSE, Audience.ADULT),
        ((YES, GUARDIAN, CHILD, None, 0), Change.GIVE, Audience.ADULT),
        ((NO, PATRON, CHILD, Stored(True), 3), Change.WITHDRAW, Audience.CHILD),
    ],
)
def test_a_decision_is_planned_by_the_rules_alone(
    asked: tuple, change: Change | None, audience: Audience
) -> None:
    planned = plan(*asked)
    assert (planned.change, planned.audience) == (change, audience)


@pytest.mark.parametrize(
    ("asked", "code"),
    [
        # A stale form that would change something is refused, never applied.
        ((NO, PATRON, ADULT, Stored(True), 2), ConsentCode.STALE_FORM),
        ((YES, PATRON, ADULT, PAUSED, 2), ConsentCode.STALE_FORM),
        # The age rules come first: a child cannot say yes alone, a guardian not for an adult.
        ((YES, PATRON, CHILD, None, 0), ConsentCode.GUARDIAN_REQUIRED),
        ((NO, GUARDIAN, ADULT, Stored(True), 3), ConsentCode.NOT_GUARDIANS_CHOICE),
    ],
)
def test_a_decision_the_rules_refuse_changes_nothing(asked: tuple, code: ConsentCode) -> None:
    with pytest.raises(ConsentError) as refused:
        plan(*asked)
    assert refused.value.code is code
