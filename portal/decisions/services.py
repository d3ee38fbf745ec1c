"""Decisions: a patron's, a guardian's or a job's yes and no. Each writes its ledger event,
and a withdrawal erases every row the service kept and asks each connected system holding
its data to delete it too (the outbox), in one transaction (docs/PROMISES.md promises 4 and 5).
The age rules for minors apply to every decision (consent.policy)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tortoise.transactions import in_transaction

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
    ConsentError,
    Decision,
    Party,
    Status,
    SuspensionReason,
    already_decided,
    audience_for,
    grace_period_over,
    holds_retained_data,
    refusal_reason,
)
from portal.consent.reads import ServiceOverview, overview_of, status_for
from portal.consent.services import (
    Step,
    locked_granted_states,
    locked_state,
    record_step,
    relock,
    set_choice,
    suspended_states,
)
from portal.db import scrub_after_erasure
from portal.errors import ConsentCode, DomainError, MinorsCode
from portal.guardians.services import has_verified_link
from portal.ledger.details import Erased
from portal.ledger.models import Actor, EventKind
from portal.ledger.services import PATRON_ONLINE, SYSTEM_JOB, ActingParty
from portal.outbox.policy import DeletionReason
from portal.outbox.services import notify_consent_given, request_deletions
from portal.patrons.services import lock_patron
from portal.stores.registry import erase


@dataclass(frozen=True)
class Outcome:
    status: Status
    changed: bool
    erased: int
    # The service as it stands after the decision, for the page that follows; None when its
    # notice is not published in the page's language (the decision stands all the same).
    view: ServiceOverview | None


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
    async with in_transaction():
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
        reason = refusal_reason(
            band=age.band,
            party=Party.GUARDIAN if party.actor is Actor.GUARDIAN else Party.PATRON,
            saying_yes=decision is Decision.YES,
            offered=age.offers(service.minimum_age),
        )
        if reason is not None:
            raise ConsentError(reason)
        state = await locked_state(patron_id, service.id)
        status = status_for(state, service)
        current_revision = state.revision if state else 0
        changed, erased = True, 0
        if already_decided(status, decision) and (
            expected_revision != current_revision or decision is Decision.YES
        ):
            changed = False
        elif expected_revision != current_revision:
            raise ConsentError(ConsentCode.STALE_FORM)
        else:
            party_kind = Party.GUARDIAN if party.actor is Actor.GUARDIAN else Party.PATRON
            audience = audience_for(
                band=age.band,
                party=party_kind,
                has_child_version=notice is not None and notice.child_texts is not None,
            )
            step = Step(patron_id, service, now, party, audience)
            if decision is Decision.YES:
                kind = EventKind.RENEWED if status is Status.NEEDS_RENEWAL else EventKind.GIVEN
                state = await set_choice(step, state, kind, notice, granted=True)
                await notify_consent_given(patron_id, service, now=now)
            elif holds_retained_data(status):
                state, erased = await _withdraw(step, state, notice)
            else:
                state = await set_choice(step, state, EventKind.REFUSED, notice, granted=False)
    if erased:
        await scrub_after_erasure()
    # Read after the commit: a page that cannot be shown never undoes a decision.
    shown = await current_notice(service, locale)
    return Outcome(
        status=status_for(state, service),
        changed=changed,
        erased=erased,
        view=overview_of(service, shown, state, age) if shown else None,
    )


async def turn_everything_off(patron_id: int, *, now: datetime, party: ActingParty) -> int:
    """Withdraw every consent in force at once; returns how many services were turned off."""
    async with in_transaction():
        await lock_patron(patron_id)
        states = await locked_granted_states(patron_id)
        services = await services_by_id([state.service_id for state in states])
        for state in states:
            await _withdraw(Step(patron_id, services[state.service_id], now, party), state, None)
    await scrub_after_erasure()
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
        async with in_transaction():
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
            await _withdraw(step, state, None, kind=EventKind.EXPIRED, reason=reason)
            expired += 1
    if expired:
        await scrub_after_erasure()
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
    if notice.locale != locale:
        if decision is Decision.NO:
            return None  # turning off never depends on which notice was on screen
        raise ConsentError(ConsentCode.NOTICE_REQUIRED)
    return notice


async def _withdraw(
    step: Step,
    state: ConsentState | None,
    notice: PublishedNotice | None,
    *,
    kind: EventKind = EventKind.WITHDRAWN,
    reason: DeletionReason = DeletionReason.WITHDRAWN,
) -> tuple[ConsentState, int]:
    """End the consent, erase what the portal kept and ask every connected system holding
    the service's data to delete it, in the caller's transaction; returns the new state and
    the rows erased here."""
    ended = await set_choice(step, state, kind, notice, granted=False)
    erased = 0
    if step.service.store is not None:
        erased = await erase(step.patron_id, step.service.store)
        await record_step(step, EventKind.ERASED, None, detail=Erased(rows_deleted=erased))
    await request_deletions(step.patron_id, step.service, reason, now=step.now, party=step.party)
    return ended, erased
