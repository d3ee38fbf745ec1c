"""Changing consent state: the building blocks every decision, job and store uses, each
writing its ledger event in the caller's transaction (docs/PROMISES.md promise 5). A decision and
a write of new retained data take the patron's row lock first (`lock_patron`), so they never
interleave (promises 2 and 4); jobs that only pause or delete lock the rows they change."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from tortoise.expressions import F
from tortoise.queryset import QuerySet

from portal.catalog.policy import Terms, is_material_change
from portal.catalog.services import PublishedNotice, PublishedService, services_by_id
from portal.consent.models import ConsentState
from portal.consent.policy import ConsentError, Status, SuspensionReason
from portal.consent.reads import status_of_store
from portal.errors import ConsentCode
from portal.ledger.details import CarriedOver, EventDetail, Suspended
from portal.ledger.models import Actor, ConsentEvent, EventKind
from portal.ledger.services import SYSTEM_JOB, ActingParty, NoticeShown, event, record, record_all
from portal.ledger.vocabulary import Audience
from portal.patrons.services import consent_changed, consents_changed, lock_patron


async def require_current_consent(patron_id: int, store: str) -> None:
    """Refuse retained data at the door (promise 2): call inside the transaction that writes
    it. Holds the patron's row lock until that transaction ends."""
    await lock_patron(patron_id)
    _, status = await status_of_store(patron_id, store)
    if status is not Status.ON:
        raise ConsentError(ConsentCode.NO_CURRENT_CONSENT)


@dataclass(frozen=True)
class Step:
    """One patron's change to one service, at one moment, by one party."""

    patron_id: int
    service: PublishedService
    now: datetime
    party: ActingParty
    audience: Audience = Audience.ADULT  # which text of the notice was on screen


async def locked_state(patron_id: int, service_id: int) -> ConsentState | None:
    state: ConsentState | None = (
        await ConsentState.filter(patron_id=patron_id, service_id=service_id)
        .select_for_update()
        .first()
    )
    return state


async def locked_granted_states(patron_id: int) -> list[ConsentState]:
    states: list[ConsentState] = await ConsentState.filter(
        patron_id=patron_id, granted=True
    ).select_for_update()
    return states


def suspended_states() -> QuerySet[ConsentState]:
    """Consents in force but paused: candidates for expiry (a job takes them a batch at a
    time, by id)."""
    return ConsentState.filter(granted=True, suspended_at__isnull=False)


async def relock(state: ConsentState) -> ConsentState | None:
    """The same state read again under its row lock (a job may race the patron)."""
    fresh: ConsentState | None = await ConsentState.filter(id=state.id).select_for_update().first()
    return fresh


async def set_choice(
    step: Step,
    state: ConsentState | None,
    kind: EventKind,
    notice: PublishedNotice | None,
    *,
    granted: bool,
) -> ConsentState:
    """Write the patron's new choice and its ledger event; returns the state as written."""
    service = step.service
    terms_revision = notice.terms_revision if notice else service.terms_revision
    if state is None:
        state = ConsentState(patron_id=step.patron_id, service_id=service.id, revision=0)
    state.granted = granted
    state.granted_by = step.party.actor.value if granted else None
    state.last_kind = kind
    state.notice_version_id = notice.id if notice else state.notice_version_id
    state.terms_revision = terms_revision if granted else state.terms_revision or terms_revision
    state.suspended_at = None
    state.suspension_reason = None
    state.revision += 1
    state.updated_at = step.now
    await state.save()
    await consent_changed(step.patron_id)
    await record_step(step, kind, notice)
    return state


async def end_all(
    states: list[ConsentState],
    services: Mapping[int, PublishedService],
    kind: EventKind,
    *,
    now: datetime,
    party: ActingParty,
) -> None:
    """`set_choice(…, None, granted=False)` for a batch of consents in force whose row locks
    (and their patrons') the caller holds: the same columns written and the same event
    each, recorded in the consents' order, in a statement or two rather than three each."""
    if not states:
        return
    await ConsentState.filter(id__in=[state.id for state in states]).update(
        granted=False,
        granted_by=None,
        last_kind=kind,
        suspended_at=None,
        suspension_reason=None,
        revision=F("revision") + 1,
        updated_at=now,
    )
    for state in states:
        if not state.terms_revision:  # as set_choice: a state without one takes the service's
            terms_revision = services[state.service_id].terms_revision
            await ConsentState.filter(id=state.id).update(terms_revision=terms_revision)
    await consents_changed(sorted({state.patron_id for state in states}))
    await record_all(
        [
            event(
                state.patron_id,
                kind,
                party,
                now=now,
                service_id=state.service_id,
                purposes=services[state.service_id].terms["purposes"],
            )
            for state in states
        ]
    )


async def carry_state(
    step: Step, state: ConsentState, to: list[PublishedService]
) -> list[PublishedService]:
    """`state`, a consent in force to a service a messaging service replaced, becomes a
    consent to each message choice in `to` (same notice version, same party), and ends on
    the old service without erasing anything: the data is used under the choices now. A
    choice whose terms go beyond the old service's is paused for the patron's answer; one
    the patron already decided about keeps their decision. Returns the choices carried."""
    old = step.service
    choice = to[0].choice
    carried = []
    for service in to:
        given = await locked_state(step.patron_id, service.id)
        if given is not None:
            continue  # the patron has decided about this choice already: theirs stands
        carried.append(service)
        given = ConsentState(patron_id=step.patron_id, service_id=service.id, revision=0)
        given.granted = True
        given.granted_by = state.granted_by
        given.last_kind = EventKind.CARRIED_OVER
        given.notice_version_id = state.notice_version_id
        given.terms_revision = service.terms_revision
        given.suspended_at = None
        given.suspension_reason = None
        given.revision += 1
        given.updated_at = step.now
        await given.save()
        await record(
            step.patron_id,
            EventKind.CARRIED_OVER,
            SYSTEM_JOB,
            now=step.now,
            service_id=service.id,
            purposes=old.terms["purposes"],
            notice_version_id=state.notice_version_id,
            detail=CarriedOver(from_service=old.key),
        )
        if is_material_change(Terms.from_dict(old.terms), Terms.from_dict(service.terms)):
            await suspend(given, service, SuspensionReason.MATERIAL_CHANGE, step.now)
    state.granted = False
    state.granted_by = None
    state.last_kind = EventKind.CARRIED_OVER
    state.revision += 1
    state.updated_at = step.now
    await state.save()
    await consent_changed(step.patron_id)
    await record(
        step.patron_id,
        EventKind.CARRIED_OVER,
        SYSTEM_JOB,
        now=step.now,
        service_id=old.id,
        purposes=old.terms["purposes"],
        notice_version_id=state.notice_version_id,
        detail=CarriedOver(
            to_service=choice.group if choice else "",
            channel=(choice.channel or "") if choice else "",
            kinds=",".join(s.choice.kind or "" for s in carried if s.choice),
        ),
    )
    return carried


async def record_step(
    step: Step,
    kind: EventKind,
    notice: PublishedNotice | None,
    *,
    detail: EventDetail | None = None,
) -> None:
    terms = notice.terms if notice else step.service.terms
    await record(
        step.patron_id,
        kind,
        step.party,
        now=step.now,
        service_id=step.service.id,
        purposes=terms["purposes"],
        notice=shown(notice, step.audience) if notice else None,
        detail=detail,
    )


def shown(notice: PublishedNotice, audience: Audience) -> NoticeShown:
    """The ledger's reference to the text on screen: a child's version has its own hash."""
    if audience is Audience.CHILD and notice.child_hash is not None:
        return NoticeShown(notice.id, notice.child_hash, notice.locale, Audience.CHILD.value)
    return NoticeShown(notice.id, notice.content_hash, notice.locale, Audience.ADULT.value)


async def suspend(
    state: ConsentState, service: PublishedService, reason: SuspensionReason, now: datetime
) -> None:
    """Pause a consent in force: the service is off, nothing new is retained, and what was
    kept waits for the patron's answer or the end of the grace period. Call inside the
    transaction that holds the state's row lock."""
    state.suspended_at, state.suspension_reason = now, reason.value
    state.revision += 1
    state.updated_at = now
    await state.save(update_fields=["suspended_at", "suspension_reason", "revision", "updated_at"])
    await consent_changed(state.patron_id)
    await record(
        state.patron_id,
        EventKind.SUSPENDED,
        SYSTEM_JOB,
        now=now,
        service_id=service.id,
        purposes=service.terms["purposes"],
        notice_version_id=state.notice_version_id,
        detail=Suspended(reason=reason.value, terms_revision=service.terms_revision),
    )


async def suspend_service(service_id: int, reason: SuspensionReason, now: datetime) -> int:
    """Every consent in force for a service no longer covers it (a material change)."""
    service = (await services_by_id([service_id]))[service_id]
    affected = await ConsentState.filter(
        service_id=service_id, granted=True, suspended_at__isnull=True
    ).select_for_update()
    for state in affected:
        await suspend(state, service, reason, now)
    return len(affected)


async def pause_for_material_change(service_id: int, now: datetime) -> int:
    """A catalog publication changed the service's terms materially: every consent in force
    is paused until the patron says yes to the new notice."""
    return await suspend_service(service_id, SuspensionReason.MATERIAL_CHANGE, now)


async def suspend_given_by(guardian_id: int, patron_id: int, now: datetime) -> int:
    """The consents this guardian gave for the patron, once their link ends: paused until a
    guardian still linked (or the patron, when old enough) answers again."""
    states = await ConsentState.filter(
        patron_id=patron_id, granted=True, granted_by=Actor.GUARDIAN.value
    ).select_for_update()
    services = await services_by_id([state.service_id for state in states])
    paused = 0
    for state in states:
        given = (
            await ConsentEvent.filter(
                patron_id=patron_id,
                service_id=state.service_id,
                kind__in=(EventKind.GIVEN, EventKind.RENEWED),
            )
            .order_by("-id")
            .first()
        )
        if given is not None and given.acting_guardian_id == guardian_id:
            await suspend(
                state, services[state.service_id], SuspensionReason.GUARDIAN_UNLINKED, now
            )
            paused += 1
    return paused


async def with_guardian_given(patron_ids: list[int]) -> set[int]:
    """Of these patrons, those with a consent in force that a guardian gave."""
    given = ConsentState.filter(
        patron_id__in=patron_ids, granted=True, granted_by=Actor.GUARDIAN.value
    )
    return {int(row["patron_id"]) for row in await given.values("patron_id")}


async def suspend_guardian_given(patron_id: int, now: datetime) -> int:
    """The consents a guardian gave need the patron's own answer once they come of age."""
    states = await ConsentState.filter(
        patron_id=patron_id, granted=True, granted_by=Actor.GUARDIAN.value
    ).select_for_update()
    services = await services_by_id([state.service_id for state in states])
    for state in states:
        await suspend(state, services[state.service_id], SuspensionReason.CAME_OF_AGE, now)
    return len(states)
