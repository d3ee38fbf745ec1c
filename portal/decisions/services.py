"""Decisions: a patron's, a guardian's or a job's yes and no. Each writes its ledger event,
and a withdrawal erases every row the service kept and asks each connected system holding
its data to delete it too (the outbox), in one transaction (docs/PROMISES.md promises 4
and 5); portal.erasure does the erasing. The age rules for minors apply to every decision
(consent.policy)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from portal import batches
from portal.batches import Progress, no_progress
from portal.catalog.jurisdiction import AgeBand, AgeContext
from portal.catalog.publishing import Replaced
from portal.catalog.services import (
    PublishedNotice,
    PublishedService,
    age_for_decision,
    all_services,
    channel_choices,
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
    carry_state,
    end_all,
    locked_granted_states,
    locked_state,
    relock,
    set_choice,
    suspended_states,
)
from portal.contacts.policy import ContactError
from portal.contacts.services import contact_of, keep_contact
from portal.db import Erasure, erasing
from portal.erasure.services import ErasureOutcome, erase_service_data, erase_services_data
from portal.errors import ConsentCode, DomainError, MessagesCode, MinorsCode
from portal.guardians.services import has_verified_link
from portal.ledger.models import Actor, EventKind
from portal.ledger.services import PATRON_ONLINE, SYSTEM_JOB, ActingParty
from portal.locale_codes import fallbacks
from portal.outbox.policy import DeletionReason
from portal.outbox.services import forget_contacts_on, notify_consent_given, notify_contact_changed
from portal.patrons.services import lock_patron, lock_patrons


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
    contact: str | None = None,
    phone_region: str = "US",
) -> Outcome:
    """Record a yes or no to a service's notice; a no to a consent in force withdraws it.

    `expected_revision` is the state revision the form was rendered with: a replayed or
    concurrent form that no longer matches is refused unless its outcome is already in place.
    `timezone` says where birthdays happen; `locale` is the language of the page that follows.
    `contact`: for a yes to a message choice, the number or address its channel's messages
    go to (read as dialled from `phone_region`); needed when none is kept for the channel
    yet, and kept (or replaced) in the same transaction as the consent.
    """
    async with erasing() as erasure:
        made = await _decide(
            erasure,
            patron_id,
            key,
            decision,
            notice_version_id=notice_version_id,
            expected_revision=expected_revision,
            locale=locale,
            now=now,
            timezone=timezone,
            party=party,
            contact=contact,
            phone_region=phone_region,
        )
    service, state, age = made.service, made.state, made.age
    erased, deletions = made.erased, made.deletions
    # Read after the commit: a page that cannot be shown never undoes a decision.
    shown = await current_notice(service, locale)
    return Outcome(
        status=state_status(state, service.terms_revision),
        changed=made.changed,
        erased=erased,
        view=overview_of(service, shown, state, age) if shown else None,
        deletions=deletions,
    )


@dataclass(frozen=True)
class _Made:
    service: PublishedService
    state: ConsentState | None
    age: AgeContext
    changed: bool
    erased: int
    deletions: list[SystemDeletion] | None


async def _decide(
    erasure: Erasure,
    patron_id: int,
    key: str,
    decision: Decision,
    *,
    notice_version_id: int | None,
    expected_revision: int,
    locale: str,
    now: datetime,
    timezone: str,
    party: ActingParty,
    contact: str | None,
    phone_region: str,
) -> _Made:
    """One decision in the caller's erasing transaction (`decide` says what each does)."""
    patron = await lock_patron(patron_id)
    service = await current_service(key)
    if patron is None or service is None:
        raise ConsentError(ConsentCode.UNKNOWN_SERVICE)
    if party.guardian_id is not None and not await has_verified_link(party.guardian_id, patron_id):
        raise DomainError(MinorsCode.NOT_VERIFIED)  # ended or never checked in person
    notice = await _notice_for_decision(service, decision, notice_version_id, locale)
    age = await age_for_decision(patron.born_on, patron.jurisdiction, now=now, timezone=timezone)
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
        kept = await _contact_for(erasure, patron_id, service, contact, phone_region, now)
        kind = EventKind.RENEWED if plan.change is Change.RENEW else EventKind.GIVEN
        state = await set_choice(step, state, kind, notice, granted=True)
        await notify_consent_given(patron_id, service, now=now, contact=kept)
    elif plan.change is Change.WITHDRAW:
        state, done = await _withdraw(erasure, step, state, notice)
        erased = done.rows
        deletions = [SystemDeletion(asked.system, asked.name, now, None) for asked in done.asked]
    elif plan.change is Change.REFUSE:
        state = await set_choice(step, state, EventKind.REFUSED, notice, granted=False)
    return _Made(service, state, age, plan.change is not None, erased, deletions)


@dataclass(frozen=True)
class MessageCell:
    """One cell of a messaging grid as the form sent it: the choice, whether it is ticked,
    and the notice version and state revision it was shown with."""

    key: str
    ticked: bool
    notice_version_id: int | None
    expected_revision: int


async def choose_messages(
    patron_id: int,
    group: str,
    cells: list[MessageCell],
    contacts: dict[str, str],
    *,
    locale: str,
    now: datetime,
    timezone: str,
    party: ActingParty = PATRON_ONLINE,
    phone_region: str = "US",
) -> list[str]:
    """A messaging grid saved: each ticked choice that is not on is turned on, each choice
    on that is no longer ticked is turned off (a paused one left unticked waits for its
    answer), each a decision of its own with its ledger event; `contacts` (by channel) gives
    the number or address for a channel's first choice, or changes it. All or nothing: one
    refused decision (a contact that cannot be used, a guardian needed) changes nothing.
    Returns the keys of the choices changed."""
    changed: list[str] = []
    async with erasing() as erasure:
        patron = await lock_patron(patron_id)
        if patron is None:
            raise ConsentError(ConsentCode.UNKNOWN_SERVICE)
        age = await age_for_decision(
            patron.born_on, patron.jurisdiction, now=now, timezone=timezone
        )
        if party.actor is Actor.GUARDIAN:
            # Before any cell or contact is read: a guardian acts only for a child below the
            # guardian-consent age, through a link checked in person (a teenager's choices
            # and number are theirs alone, not even to be probed).
            if party.guardian_id is None or not await has_verified_link(
                party.guardian_id, patron_id
            ):
                raise DomainError(MinorsCode.NOT_VERIFIED)
            if age.band is not AgeBand.CHILD:
                raise ConsentError(ConsentCode.NOT_GUARDIANS_CHOICE)
        elif _gives(contacts) and age.band is AgeBand.CHILD:
            # Below the guardian-consent age, where a message goes is given by the guardian
            # who turns it on (a child's number is collected with a parent's consent).
            raise ConsentError(ConsentCode.GUARDIAN_REQUIRED)
        own = {
            service.id: service
            for service in await all_services()
            if service.choice is not None and service.choice.group == group
        }
        by_key = {service.key: service for service in own.values()}
        if any(cell.key not in by_key for cell in cells):
            raise ConsentError(ConsentCode.UNKNOWN_SERVICE)
        states = {
            state.service_id: state
            for state in await ConsentState.filter(
                patron_id=patron_id, service_id__in=list(own)
            ).select_for_update()
        }
        # Ticks first, then unticks: a tick moved from one kind to another on the same
        # channel keeps the number that channel already has.
        for cell in sorted(cells, key=lambda cell: not cell.ticked):
            service = by_key[cell.key]
            state = states.get(service.id)
            status = state_status(state, service.terms_revision)
            if cell.ticked and status is not Status.ON:
                decision = Decision.YES
            elif not cell.ticked and status is Status.ON:
                decision = Decision.NO
            else:
                continue
            channel = service.choice.channel if service.choice else None
            await _decide(
                erasure,
                patron_id,
                cell.key,
                decision,
                notice_version_id=cell.notice_version_id,
                expected_revision=cell.expected_revision,
                locale=locale,
                now=now,
                timezone=timezone,
                party=party,
                contact=contacts.get(channel or ""),
                phone_region=phone_region,
            )
            changed.append(cell.key)
        for channel, raw in contacts.items():
            if raw.strip():
                await _change_contact_in(
                    erasure, patron_id, channel, raw, region=phone_region, now=now
                )
    return changed


def _gives(contacts: dict[str, str]) -> bool:
    return any(raw.strip() for raw in contacts.values())


async def _contact_for(  # noqa: PLR0917 - the one caller names them all
    erasure: Erasure,
    patron_id: int,
    service: PublishedService,
    given: str | None,
    region: str,
    now: datetime,
) -> str | None:
    """The contact detail a message choice's messages go to: the one given now (kept), or
    the one kept for its channel. A choice needs one; other services have none."""
    channel = service.choice.channel if service.choice else None
    if channel is None:
        return None
    if given is not None and given.strip():
        # A new number or address typed with a new tick is a change for every choice on
        # the channel already on: their systems are told too.
        return (
            await _change_contact_in(
                erasure, patron_id, channel, given, region=region, now=now, first=True
            )
            or ""
        )
    kept = await contact_of(patron_id, channel)
    if kept is None:
        raise ContactError(MessagesCode.CONTACT_REQUIRED)
    return kept


async def change_contact(
    patron_id: int, channel: str, raw: str, *, region: str, now: datetime
) -> str:
    """A patron changes the number or address a channel's messages go to, choices untouched:
    only while a message choice on that channel is on (a detail with no purpose is never
    kept). Each system holding it for a choice that is on is told, in the same transaction."""
    async with erasing() as erasure:
        await lock_patron(patron_id)
        value = await _change_contact_in(erasure, patron_id, channel, raw, region=region, now=now)
    if value is None:
        raise ContactError(MessagesCode.CONTACT_UNUSED)
    return value


async def _change_contact_in(
    erasure: Erasure,
    patron_id: int,
    channel: str,
    raw: str,
    *,
    region: str,
    now: datetime,
    first: bool = False,
) -> str | None:
    """In the caller's transaction: the detail kept, or None (nothing kept) when no choice
    on the channel is on, of any messaging service (`first`: one is being turned on now).
    Each system holding the old detail for a choice that is on is told of the new one."""
    choices = {choice.id: choice for choice in await channel_choices(channel)}
    on = await ConsentState.filter(patron_id=patron_id, service_id__in=list(choices), granted=True)
    if not on and not first:
        return None
    before = await contact_of(patron_id, channel)
    value = await keep_contact(erasure, patron_id, channel, raw, region=region, now=now)
    if before is not None and value != before:
        # The number replaced is erased as any other: out of the requests that carried it.
        erasure.deleted(await forget_contacts_on(patron_id, channel))
        systems: dict[str, int] = {}
        for state in on:
            for system in choices[state.service_id].systems:
                systems.setdefault(system, state.service_id)
        await notify_contact_changed(patron_id, channel, value, list(systems.items()), now=now)
    return value


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


async def count_unanswered() -> int:
    """How many paused consents `expire_unanswered` looks at (its run's total)."""
    return await suspended_states().count()


async def expire_unanswered(
    *,
    now: datetime,
    material_grace_days: int,
    majority_grace_days: int,
    progress: Progress = no_progress,
) -> int:
    """Suspended consents not confirmed within their grace period end, and what they covered
    is erased: a patron who does not answer has said no. The paused consents are read a
    batch at a time by id, and those whose grace is over end together in one erasing
    transaction per batch (each with its events and requests as a withdrawal writes them):
    a run killed half-way has ended whole batches, and the next finds the rest."""
    grace: dict[str, int] = {
        SuspensionReason.MATERIAL_CHANGE: material_grace_days,
        SuspensionReason.CAME_OF_AGE: majority_grace_days,
    }

    def due(state: ConsentState) -> bool:
        # An unknown reason gets the material-change grace rather than stopping the job.
        days = grace.get(state.suspension_reason or "", material_grace_days)
        return state.suspended_at is not None and grace_period_over(state.suspended_at, now, days)

    expired = 0
    after = 0
    while True:
        batch = await suspended_states().filter(id__gt=after).order_by("id").limit(batches.BATCH)
        candidates = [state for state in batch if due(state)]
        if candidates:
            expired += await _expire_batch(candidates, due, now)
        if batch:  # none left after a whole batch: nothing to record
            await progress(len(batch))
        if len(batch) < batches.BATCH:
            return expired
        after = batch[-1].id


async def _expire_batch(
    candidates: list[ConsentState], due: Callable[[ConsentState], bool], now: datetime
) -> int:
    """End the candidates still unanswered, read again under their patrons' locks and their
    own: a patron who said yes (or no) in the last second keeps their answer."""
    async with erasing() as erasure:
        await lock_patrons(sorted({candidate.patron_id for candidate in candidates}))
        fresh = await (
            ConsentState.filter(id__in=[candidate.id for candidate in candidates])
            .order_by("id")
            .select_for_update()
        )
        ending = [state for state in fresh if state.granted and due(state)]
        services = await services_by_id(sorted({state.service_id for state in ending}))
        await end_all(ending, services, EventKind.EXPIRED, now=now, party=SYSTEM_JOB)
        groups: dict[tuple[int, DeletionReason], list[int]] = {}
        for state in ending:
            reason = (
                DeletionReason.CAME_OF_AGE
                if state.suspension_reason == SuspensionReason.CAME_OF_AGE
                else DeletionReason.EXPIRED
            )
            groups.setdefault((state.service_id, reason), []).append(state.patron_id)
        for (service_id, reason), patrons in groups.items():
            await erase_services_data(
                erasure, patrons, services[service_id], reason, now=now, party=SYSTEM_JOB
            )
    return len(ending)


async def carry_over(replaced: Replaced, now: datetime) -> int:
    """A messaging service replaced a service of one channel (publishing, in its
    transaction): each consent in force to it becomes exactly the message choices its notice
    named, and nothing more; each side's ledger event says so. The choices keep the notice
    the patron agreed to. If the messaging service's terms go further than the old ones, the
    choices wait, paused, for the patron's yes, as after any material change. A paused
    consent to the old service cannot be answered any more: it ends as unanswered, and what
    it covered is erased. Returns the patrons whose consent was carried."""
    old = (await services_by_id([replaced.service_id]))[replaced.service_id]
    choices = await services_by_id(list(replaced.choices))
    # A replaced service keeps nothing in the portal (publishing refuses one with a store):
    # ending a paused consent only asks connected systems to delete, so nothing is scrubbed,
    # and the publication's own transaction holds it all.
    erasure = Erasure()
    carried = 0
    for candidate in await ConsentState.filter(service_id=old.id, granted=True):
        await lock_patron(candidate.patron_id)
        state = await relock(candidate)
        if state is None or not state.granted:
            continue
        step = Step(state.patron_id, old, now, SYSTEM_JOB)
        if state.suspended_at is not None or state.terms_revision != old.terms_revision:
            await _withdraw(
                erasure, step, state, None, kind=EventKind.EXPIRED, reason=DeletionReason.EXPIRED
            )
            continue
        moved = await carry_state(
            step, state, [choices[service_id] for service_id in replaced.choices]
        )
        for service in moved:
            # The systems learn each choice now in force, and which service it came from
            # (the gateway holds the number under that one).
            await notify_consent_given(state.patron_id, service, now=now, carried_from=old.key)
        carried += 1
    return carried


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
