"""Pure consent rules: what a patron's stored choice means today, what a decision does, and
who may take it at which age.

Strictest by default (docs/PROMISES.md promise 1): no stored choice means off. A consent covers a
service only while it was given to the service's current terms (promise 2). Below the
guardian-consent age only a guardian can turn a service on; anyone may always turn it off.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from portal.catalog.jurisdiction import AgeBand, AgeContext
from portal.errors import ConsentCode, DomainError
from portal.ledger.vocabulary import Actor, Audience, EventKind


class ConsentError(DomainError):
    """A ConsentCode: unknown_service, stale_notice, no_current_consent, the age rules' …"""


class Decision(StrEnum):
    YES = "yes"
    NO = "no"


class Status(StrEnum):
    NEVER_ASKED = "never_asked"
    ON = "on"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"
    NEEDS_RENEWAL = "needs_renewal"


class Party(StrEnum):
    PATRON = "patron"
    GUARDIAN = "guardian"


class SuspensionReason(StrEnum):
    """Why a consent in force was paused; each has its own grace period before it expires."""

    MATERIAL_CHANGE = "material_change"
    CAME_OF_AGE = "came_of_age"
    GUARDIAN_UNLINKED = "guardian_unlinked"  # the guardian who consented is no longer linked


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


class RecordedState(Protocol):
    """A consent state as stored (a row being changed, or one read for a page): what the
    status rules look at."""

    @property
    def granted(self) -> bool: ...
    @property
    def granted_by(self) -> str | None: ...
    @property
    def last_kind(self) -> str: ...
    @property
    def terms_revision(self) -> int: ...
    @property
    def suspended_at(self) -> datetime | None: ...


def stored_choice(state: RecordedState | None) -> StoredChoice | None:
    if state is None:
        return None
    return StoredChoice(
        granted=state.granted,
        terms_revision=state.terms_revision,
        suspended=state.suspended_at is not None,
        ever_granted=state.last_kind in (EventKind.WITHDRAWN, EventKind.EXPIRED),
    )


def state_status(state: RecordedState | None, current_terms_revision: int) -> Status:
    """Where a stored consent stands against the service's current terms."""
    return status_of(stored_choice(state), current_terms_revision)


def given_by_guardian(state: RecordedState | None) -> bool:
    return bool(state and state.granted and state.granted_by == Actor.GUARDIAN)


class CheckAnswer(StrEnum):
    """What a library system is told about one patron and one service: only whether it may
    use the service now, never why or since when."""

    ON = "on"
    OFF = "off"
    NEVER_ASKED = "never_asked"
    PAUSED = "paused"  # on, but waiting for the patron to confirm a changed notice
    NOT_OFFERED = "not_offered"  # not offered at the patron's age


def check_answer(
    *, granted: bool | None, suspended: bool, current_terms: bool, offered: bool
) -> CheckAnswer:
    """`granted` is None when the patron has never answered."""
    if not offered:
        return CheckAnswer.NOT_OFFERED
    if granted is None:
        return CheckAnswer.NEVER_ASKED
    if not granted:
        return CheckAnswer.OFF
    return CheckAnswer.PAUSED if suspended or not current_terms else CheckAnswer.ON


def already_decided(status: Status, decision: Decision) -> bool:
    """The outcome the patron asked for is already in place (e.g. a double submit)."""
    if decision is Decision.YES:
        return status is Status.ON
    return status in (Status.REFUSED, Status.WITHDRAWN)


def grace_period_over(suspended_at: datetime, now: datetime, grace_days: int) -> bool:
    return (now - suspended_at).total_seconds() >= grace_days * 86_400


def refusal_reason(
    *, band: AgeBand, party: Party, saying_yes: bool, offered: bool
) -> ConsentCode | None:
    """Why this decision may not be taken; None when it may."""
    if party is Party.GUARDIAN and band is not AgeBand.CHILD:
        return ConsentCode.NOT_GUARDIANS_CHOICE  # a teenager or adult decides alone
    if not saying_yes:
        return None  # turning a service off is always allowed, and always wins
    if not offered:
        return ConsentCode.NOT_OFFERED
    if party is Party.GUARDIAN or band is not AgeBand.CHILD:
        return None
    return ConsentCode.GUARDIAN_REQUIRED


def holds_retained_data(status: Status) -> bool:
    """A suspended consent keeps what it already covered until the patron answers."""
    return status in (Status.ON, Status.NEEDS_RENEWAL)


def audience_for(*, band: AgeBand, party: Party, has_child_version: bool) -> Audience:
    """Which text of a notice a person reads: a child below the guardian-consent age reads
    the child's version when there is one; a guardian always reads the full notice (and is
    shown the child's version beside it); a teenager reads the full notice, as adults do."""
    if party is Party.PATRON and band is AgeBand.CHILD and has_child_version:
        return Audience.CHILD
    return Audience.ADULT


class Change(StrEnum):
    """What a decision does to the stored consent."""

    GIVE = "given"  # a first yes, or a yes after a no
    RENEW = "renewed"  # a yes to changed terms, or after a pause
    WITHDRAW = "withdrawn"  # a no to a consent that covers retained data: erase it
    REFUSE = "refused"  # a no where nothing is kept


@dataclass(frozen=True)
class DecisionPlan:
    status: Status  # where the consent stood before the decision
    change: Change | None  # None: the outcome asked for is already in place
    audience: Audience  # which text of the notice the decider read


def plan_decision(
    *,
    decision: Decision,
    party: Party,
    age: AgeContext,
    minimum_age: int | None,
    state: RecordedState | None,
    terms_revision: int,
    expected_revision: int,
    current_revision: int,
    has_child_version: bool,
) -> DecisionPlan:
    """Every rule a decision meets, in one place: who may take it at this age, whether the
    form is stale, and what it changes. Raises ConsentError when it may not be taken.

    `expected_revision` is the state revision the form was rendered with: a replayed or
    concurrent form that no longer matches is refused unless its outcome is already in place
    (a second no to a consent already off, a yes to one already on)."""
    reason = refusal_reason(
        band=age.band,
        party=party,
        saying_yes=decision is Decision.YES,
        offered=age.offers(minimum_age),
    )
    if reason is not None:
        raise ConsentError(reason)
    status = state_status(state, terms_revision)
    audience = audience_for(band=age.band, party=party, has_child_version=has_child_version)
    if already_decided(status, decision) and (
        expected_revision != current_revision or decision is Decision.YES
    ):
        return DecisionPlan(status, None, audience)
    if expected_revision != current_revision:
        raise ConsentError(ConsentCode.STALE_FORM)
    if decision is Decision.YES:
        change = Change.RENEW if status is Status.NEEDS_RENEWAL else Change.GIVE
    else:
        change = Change.WITHDRAW if holds_retained_data(status) else Change.REFUSE
    return DecisionPlan(status, change, audience)
