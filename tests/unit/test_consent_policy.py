"""Pure consent rules: strictest defaults and what a stored choice means."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from portal.consent.policy import (
    Decision,
    Status,
    StoredChoice,
    already_decided,
    grace_period_over,
    holds_retained_data,
    status_of,
)


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
