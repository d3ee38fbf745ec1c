"""Decisions: a patron's, a guardian's or a job's yes and no. Each writes its ledger event,
and a withdrawal erases every row the service kept and asks each connected system holding
its data to delete it too (the outbox), in one transaction (docs/PROMISES.md promises 4
and 5); portal.erasure does the erasing. The age rules for minors apply to every decision
(consent.policy)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from portal.catalog.services import (
    PublishedNotice,
    PublishedService,
    age_for_decision,
    current_notice,
    current_service,
    notice_version,
    services_by_id,
)
from portal.consent.models import ConsentState
from portal.consent.policy import (
    Change,
    ConsentError,
    Decision,
    Party,
    Status,
    SuspensionReason,
    grace_period_over,
    plan_decision,
    state_status,
)
from portal.consent.reads import ServiceOverview, SystemDeletion, overview_of
from portal.consent.services import (
    Step,
    locked_granted_states,
    locked_state,
    relock,
    set_choice,
    suspended_states,
)
from portal.db import Erasure, erasing
from portal.erasure.services import ErasureOutcome, erase_service_data
from portal.errors import ConsentCode, DomainError, MinorsCode
from portal.guardians.services import has_verified_link
from portal.ledger.models import Actor, EventKind
from portal.ledger.services import PATRON_ONLINE, SYSTEM_JOB, ActingParty
from portal.locale_codes import fallbacks
from portal.outbox.policy import DeletionReason
from portal.outbox.services import notify_consent_given
from portal.patrons.services import lock_patron


@dataclass(frozen=True)
class Outcome:
    status: Status
    changed: bool
    erased: int
    # The service as it stands after the decision, for the page that follows; None when its
    # notice is not published in the page's language (the decision stands all the same).
    view: ServiceOverview | None
    # A withdrawal just made: where each connected system's deletion stands (just asked);
    # None when this decision asked none (the page then reads where earlier ones stand).
    deletions: list[SystemDeletion] | None = None


async def decide(
    patron_id: int,
    key: str,
    decision: Decision,
    *,
    notice_version_id: int | None,
    expected_revision: int,
    locale: str,
    now: datetime,
    timezone: str,
    party: ActingParty = PATRON_ONLINE,
) -> Outcome:
    """Record a yes or no to a service's notice; a no to a consent in force withdraws it.

    `expected_revision` is the state revision the form was rendered with: a replayed or
    concurrent form that no longer matches is refused unless its outcome is already in place.
    `timezone` says where birthdays happen; `locale` is the language of the page that follows.
    """
    async with erasing() as erasure:
        patron = await lock_patron(patron_id)
        service = await current_service(key)
        if patron is None or service is None:
            raise ConsentError(ConsentCode.UNKNOWN_SERVICE)
        if party.guardian_id is not None and not await has_verified_link(
            party.guardian_id, patron_id
        ):
            raise DomainError(MinorsCode.NOT_VERIFIED)  # ended or never checked in person
        notice = await _notice_for_decision(service, decision, notice_version_id, locale)
        age = await age_for_decision(
            patron.born_on, patron.jurisdiction, now=now, timezone=timezone
        )
        state = await locked_state(patron_id, service.id)
        plan = plan_decision(
            decision=decision,
            party=Party.GUARDIAN if party.actor is Actor.GUARDIAN else Party.PATRON,
            age=age,
            minimum_age=service.minimum_age,
            state=state,
            terms_revision=service.terms_revision,
            expected_revision=expected_revision,
            current_revision=state.revision if state else 0,
            has_child_version=notice is not None and notice.child_texts is not None,
        )
        erased, deletions = 0, None
        step = Step(patron_id, service, now, party, plan.audience)
        if plan.change in (Change.GIVE, Change.RENEW):
            kind = EventKind.RENEWED if plan.change is Change.RENEW else EventKind.GIVEN
            state = await set_choice(step, state, kind, notice, granted=True)
            await notify_consent_given(patron_id, service, now=now)
        elif plan.change is Change.WITHDRAW:
            state, done = await _withdraw(erasure, step, state, notice)
            erased = done.rows
            deletions = [
                SystemDeletion(asked.system, asked.name, now, None) for asked in done.asked
            ]
        elif plan.change is Change.REFUSE:
            state = await set_choice(step, state, EventKind.REFUSED, notice, granted=False)
    # Read after the commit: a page that cannot be shown never undoes a decision.
    shown = await current_notice(service, locale)
    return Outcome(
        status=state_status(state, service.terms_revision),
        changed=plan.change is not None,
        erased=erased,
        view=overview_of(service, shown, state, age) if shown else None,
        deletions=deletions,
    )


async def turn_everything_off(patron_id: int, *, now: datetime, party: ActingParty) -> int:
    """Withdraw every consent in force at once; returns how many services were turned off."""
    async with erasing() as erasure:
        await lock_patron(patron_id)
        states = await locked_granted_states(patron_id)
        services = await services_by_id([state.service_id for state in states])
        for state in states:
            step = Step(patron_id, services[state.service_id], now, party)
            await _withdraw(erasure, step, state, None)
    return len(states)


async def expire_unanswered(
    *, now: datetime, material_grace_days: int, majority_grace_days: int
) -> int:
    """Suspended consents not confirmed within their grace period end, and what they covered
    is erased: a patron who does not answer has said no."""
    grace: dict[str, int] = {
        SuspensionReason.MATERIAL_CHANGE: material_grace_days,
        SuspensionReason.CAME_OF_AGE: majority_grace_days,
    }
    expired = 0
    for candidate in await suspended_states():
        # An unknown reason gets the material-change grace rather than stopping the job.
        days = grace.get(candidate.suspension_reason or "", material_grace_days)
        suspended_at = candidate.suspended_at
        if suspended_at is None or not grace_period_over(suspended_at, now, days):
            continue
        async with erasing() as erasure:
            await lock_patron(candidate.patron_id)
            state = await relock(candidate)
            if state is None or not state.granted or state.suspended_at is None:
                continue  # the patron answered meanwhile
            service = (await services_by_id([state.service_id]))[state.service_id]
            step = Step(state.patron_id, service, now, SYSTEM_JOB)
            reason = (
                DeletionReason.CAME_OF_AGE
                if state.suspension_reason == SuspensionReason.CAME_OF_AGE
                else DeletionReason.EXPIRED
            )
            await _withdraw(erasure, step, state, None, kind=EventKind.EXPIRED, reason=reason)
            expired += 1
    return expired


async def _notice_for_decision(
    service: PublishedService, decision: Decision, notice_version_id: int | None, locale: str
) -> PublishedNotice | None:
    """The notice the form says was shown. It must be the current version, and in the
    language of the page it was posted from: the ledger records the language shown."""
    if notice_version_id is None:
        if decision is Decision.YES:
            raise ConsentError(ConsentCode.NOTICE_REQUIRED)  # nobody can agree to a notice unseen
        return None
    notice = await notice_version(notice_version_id, service)
    if notice is None:
        raise ConsentError(ConsentCode.UNKNOWN_SERVICE)
    if notice.revision != service.revision:
        raise ConsentError(ConsentCode.STALE_NOTICE)
    if notice.locale not in fallbacks(locale):  # a variant's page shows its language's
        if decision is Decision.NO:
            return None  # turning off never depends on which notice was on screen
        raise ConsentError(ConsentCode.NOTICE_REQUIRED)
    return notice


async def _withdraw(
    erasure: Erasure,
    step: Step,
    state: ConsentState | None,
    notice: PublishedNotice | None,
    *,
    kind: EventKind = EventKind.WITHDRAWN,
    reason: DeletionReason = DeletionReason.WITHDRAWN,
) -> tuple[ConsentState, ErasureOutcome]:
    """End the consent, then erase what the portal kept and ask every connected system
    holding the service's data to delete it, in the caller's erasing transaction; returns
    the new state and what was erased and asked."""
    ended = await set_choice(step, state, kind, notice, granted=False)
    done = await erase_service_data(
        erasure, step.patron_id, step.service, reason, now=step.now, party=step.party
    )
    return ended, done
