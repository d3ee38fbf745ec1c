"""Consent decisions. Each one writes its ledger event, and on withdrawal erases the
service's retained data, in one transaction (PRODUCT.md promises 4 and 5)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tortoise.transactions import in_transaction

from portal.catalog.models import NoticeVersion, Service
from portal.catalog.services import (
    PublishedNotice,
    PublishedService,
    library_jurisdiction,
    published_catalog,
)
from portal.consent.ledger import PATRON_ONLINE, SYSTEM_JOB, ActingParty, record
from portal.consent.models import Actor, ConsentEvent, ConsentState, EventKind
from portal.consent.policy import (
    Decision,
    Status,
    already_decided,
    grace_period_over,
    holds_retained_data,
)
from portal.consent.state import StateRow, state_rows, status_for
from portal.consent.suspension import CAME_OF_AGE, MATERIAL_CHANGE
from portal.erasure.services import erase_store
from portal.errors import DomainError
from portal.minors.policy import (
    AgeBand,
    AgeContext,
    Party,
    band_of,
    is_offered,
    local_date,
    refusal_reason,
    resolve_jurisdiction,
)
from portal.patrons.models import Patron


class ConsentError(DomainError):
    """unknown_service, stale_notice, stale_form, notice_required, notice_locale, and the age
    rules' guardian_required, not_offered, not_guardians_choice."""


@dataclass(frozen=True)
class ServiceOverview:
    service: Service | PublishedService
    notice: NoticeVersion | PublishedNotice
    status: Status
    since: datetime | None
    revision: int
    offered: bool = True  # False: not offered at the patron's age
    needs_guardian: bool = False  # only a guardian can turn it on


@dataclass(frozen=True)
class Outcome:
    status: Status
    changed: bool
    erased: int


async def overview(
    patron_id: int,
    locale: str,
    *,
    age: AgeContext | None = None,
    states: dict[int, StateRow] | None = None,
) -> list[ServiceOverview]:
    """Every published service with this patron's status, notices in `locale`. The published
    catalog comes from memory; `states`, when the caller has already read them, save a query."""
    catalog = await published_catalog()
    if states is None:
        states = await state_rows(patron_id)
    result = []
    for service in catalog.services:
        notice = catalog.notice(service.id, locale)
        if notice is None:
            continue  # publishing guarantees every enabled locale; a disabled one shows nothing
        result.append(_overview_of(service, notice, states.get(service.id), age))
    return result


async def service_view(
    patron_id: int, key: str, locale: str, *, age: AgeContext | None = None
) -> ServiceOverview:
    service = await Service.get_or_none(key=key)
    if service is None:
        raise ConsentError("unknown_service")
    notice = await NoticeVersion.get_or_none(
        service_id=service.id, revision=service.revision, locale=locale
    )
    if notice is None:
        raise ConsentError("notice_locale")
    state = await ConsentState.get_or_none(patron_id=patron_id, service_id=service.id)
    return _overview_of(service, notice, state, age)


def _overview_of(
    service: Service | PublishedService,
    notice: NoticeVersion | PublishedNotice,
    state: ConsentState | StateRow | None,
    age: AgeContext | None,
) -> ServiceOverview:
    return ServiceOverview(
        service=service,
        notice=notice,
        status=status_for(state, service),
        since=state.updated_at if state else None,
        revision=state.revision if state else 0,
        offered=age.offers(service.minimum_age) if age else True,
        needs_guardian=age is not None and age.band is AgeBand.CHILD,
    )


async def decide(
    patron_id: int,
    key: str,
    decision: Decision,
    *,
    notice_version_id: int | None,
    expected_revision: int,
    now: datetime,
    timezone: str,
    party: ActingParty = PATRON_ONLINE,
) -> Outcome:
    """Record a yes or no to a service's notice; a no to a consent in force withdraws it.

    `expected_revision` is the state revision the form was rendered with: a replayed or
    concurrent form that no longer matches is refused unless its outcome is already in place.
    The age rules for minors apply (minors.policy); `timezone` says where birthdays happen.
    """
    async with in_transaction():
        patron = await Patron.filter(id=patron_id).select_for_update().first()
        service = await Service.get_or_none(key=key)
        if patron is None or service is None:
            raise ConsentError("unknown_service")
        notice = await _notice_for_decision(service, decision, notice_version_id)
        await _check_age_rules(patron, service, decision, party, now=now, timezone=timezone)
        state = (
            await ConsentState.filter(patron_id=patron_id, service_id=service.id)
            .select_for_update()
            .first()
        )
        status = status_for(state, service)
        current_revision = state.revision if state else 0
        if already_decided(status, decision) and (
            expected_revision != current_revision or decision is Decision.YES
        ):
            return Outcome(status=status, changed=False, erased=0)
        if expected_revision != current_revision:
            raise ConsentError("stale_form")
        step = _Step(patron_id, service, now, party)
        if decision is Decision.YES:
            kind = EventKind.RENEWED if status is Status.NEEDS_RENEWAL else EventKind.GIVEN
            await _apply(step, state, kind, notice, granted=True)
            return Outcome(status=Status.ON, changed=True, erased=0)
        if holds_retained_data(status):
            erased = await _withdraw(step, state, notice)
            return Outcome(status=Status.WITHDRAWN, changed=True, erased=erased)
        await _apply(step, state, EventKind.REFUSED, notice, granted=False)
        return Outcome(status=Status.REFUSED, changed=True, erased=0)


async def turn_everything_off(patron_id: int, *, now: datetime, party: ActingParty) -> int:
    """Withdraw every consent in force at once; returns how many services were turned off."""
    turned_off = 0
    async with in_transaction():
        await Patron.filter(id=patron_id).select_for_update().first()
        states = await ConsentState.filter(patron_id=patron_id, granted=True).select_for_update()
        services = {s.id: s for s in await Service.filter(id__in=[s.service_id for s in states])}
        for state in states:
            await _withdraw(_Step(patron_id, services[state.service_id], now, party), state, None)
            turned_off += 1
    return turned_off


async def expire_unanswered(
    *, now: datetime, material_grace_days: int, majority_grace_days: int
) -> int:
    """Suspended consents not confirmed within their grace period end, and what they covered
    is erased: a patron who does not answer has said no."""
    grace = {MATERIAL_CHANGE: material_grace_days, CAME_OF_AGE: majority_grace_days}
    expired = 0
    candidates = await ConsentState.filter(granted=True, suspended_at__isnull=False)
    for candidate in candidates:
        suspended_at = candidate.suspended_at
        days = grace.get(candidate.suspension_reason or MATERIAL_CHANGE, material_grace_days)
        if suspended_at is None or not grace_period_over(suspended_at, now, days):
            continue
        async with in_transaction():
            await Patron.filter(id=candidate.patron_id).select_for_update().first()
            state = await ConsentState.filter(id=candidate.id).select_for_update().first()
            if state is None or not state.granted or state.suspended_at is None:
                continue  # the patron answered meanwhile
            service = await Service.get(id=state.service_id)
            step = _Step(state.patron_id, service, now, SYSTEM_JOB)
            await _withdraw(step, state, None, kind=EventKind.EXPIRED)
            expired += 1
    return expired


async def ledger(patron_id: int) -> list[ConsentEvent]:
    return await ConsentEvent.filter(patron_id=patron_id).select_related("service")


async def _check_age_rules(
    patron: Patron,
    service: Service,
    decision: Decision,
    party: ActingParty,
    *,
    now: datetime,
    timezone: str,
) -> None:
    today = local_date(now, timezone)
    policy = resolve_jurisdiction(patron.jurisdiction, await library_jurisdiction())
    reason = refusal_reason(
        band=band_of(patron.born_on, today, policy),
        party=Party.GUARDIAN if party.actor is Actor.GUARDIAN else Party.PATRON,
        saying_yes=decision is Decision.YES,
        offered=is_offered(service.minimum_age, patron.born_on, today),
    )
    if reason is not None:
        raise ConsentError(reason)


async def _notice_for_decision(
    service: Service, decision: Decision, notice_version_id: int | None
) -> NoticeVersion | None:
    if notice_version_id is None:
        if decision is Decision.YES:
            raise ConsentError("notice_required")  # nobody can agree to a notice unseen
        return None
    notice = await NoticeVersion.get_or_none(id=notice_version_id, service_id=service.id)
    if notice is None:
        raise ConsentError("unknown_service")
    if notice.revision != service.revision:
        raise ConsentError("stale_notice")
    return notice


@dataclass(frozen=True)
class _Step:
    """One patron's change to one service, at one moment, by one party."""

    patron_id: int
    service: Service
    now: datetime
    party: ActingParty


async def _apply(
    step: _Step,
    state: ConsentState | None,
    kind: EventKind,
    notice: NoticeVersion | None,
    *,
    granted: bool,
) -> None:
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
    await _record(step, kind, notice)


async def _withdraw(
    step: _Step,
    state: ConsentState | None,
    notice: NoticeVersion | None,
    *,
    kind: EventKind = EventKind.WITHDRAWN,
) -> int:
    await _apply(step, state, kind, notice, granted=False)
    store = step.service.store
    if store is None:
        return 0
    erased = await erase_store(step.patron_id, store)
    await _record(step, EventKind.ERASED, None, detail={"rows_deleted": erased})
    return erased


async def _record(
    step: _Step,
    kind: EventKind,
    notice: NoticeVersion | None,
    *,
    detail: dict[str, object] | None = None,
) -> None:
    await record(
        step.patron_id,
        kind,
        step.party,
        now=step.now,
        service=step.service,
        notice=notice,
        detail=detail,
    )
