"""Guardians and minors: linking, a guardian's review and consent, and coming of age.

What a guardian may ever read through these functions: the child's label, age band, the
library's notices, and consent states they are responsible for (or that a teenager shares).
Never the child's reading history, saved lists or any other library use.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from portal.catalog.models import NoticeVersion, Service
from portal.catalog.services import (
    PublishedNotice,
    PublishedService,
    library_jurisdiction,
    published_catalog,
)
from portal.consent import ledger
from portal.consent.ledger import SYSTEM_JOB, ActingParty, guardian_online
from portal.consent.models import Actor, Channel, ConsentState, EventKind, Method
from portal.consent.policy import Decision, Status
from portal.consent.services import Outcome, decide
from portal.consent.state import status_for
from portal.consent.suspension import CAME_OF_AGE, suspend
from portal.errors import DomainError
from portal.minors.models import GuardianLink, LinkCode
from portal.minors.policy import (
    AgeBand,
    AgeContext,
    age_context,
    guardian_sees_choices,
    local_date,
)
from portal.patrons.models import Patron
from portal.patrons.policy import keyed_hash
from portal.patrons.services import card_lookup

LINK_CODE_HOURS = 72


class MinorsError(DomainError):
    """card_unknown, not_a_minor, guardian_not_adult, already_linked, link_code_invalid,
    not_linked."""


@dataclass(frozen=True)
class ChildService:
    service: PublishedService
    notice: PublishedNotice
    offered: bool
    status: Status | None  # None: the choice is the teenager's own and not shared
    guardian_may_decide: bool
    revision: int
    by_guardian: bool  # on because a parent or guardian agreed


@dataclass(frozen=True)
class ChildOverview:
    link_id: int
    label: str
    band: AgeBand
    services: list[ChildService]


@dataclass(frozen=True)
class ComingOfAge:
    patrons: int  # those who had guardian links or guardian-given consents to hand over
    links_ended: int
    consents_suspended: int


async def _age_of(patron: Patron, now: datetime, timezone: str) -> AgeContext:
    return age_context(
        patron.born_on,
        patron.jurisdiction,
        await library_jurisdiction(),
        local_date(now, timezone),
    )


async def _link(
    guardian: Patron, child: Patron, label: str, party: ActingParty, *, now: datetime, tz: str
) -> int:
    if guardian.id == child.id:
        raise MinorsError("not_a_minor")
    if (await _age_of(child, now, tz)).band is AgeBand.ADULT:
        raise MinorsError("not_a_minor")
    if (await _age_of(guardian, now, tz)).band is not AgeBand.ADULT:
        raise MinorsError("guardian_not_adult")
    if await GuardianLink.exists(guardian_id=guardian.id, child_id=child.id, ended_at=None):
        raise MinorsError("already_linked")
    link = await GuardianLink.create(
        guardian_id=guardian.id,
        child_id=child.id,
        label=label.strip()[:60] or "—",
        method=party.method.value,
        linked_at=now,
    )
    await ledger.record(
        child.id, EventKind.GUARDIAN_LINKED, party, now=now, detail={"link": link.id}
    )
    return link.id


async def link_at_desk(
    secret: str, guardian_card: str, child_card: str, label: str, *, now: datetime, timezone: str
) -> int:
    """Staff verified the relationship in person; the guardian is the one who acts."""
    async with in_transaction():
        guardian = await Patron.get_or_none(card_lookup=card_lookup(secret, guardian_card))
        child = await Patron.get_or_none(card_lookup=card_lookup(secret, child_card))
        if guardian is None or child is None:
            raise MinorsError("card_unknown")
        party = ActingParty(Method.DESK_HANDOVER, Actor.GUARDIAN, Channel.CLI, guardian.id)
        return await _link(guardian, child, label, party, now=now, tz=timezone)


async def issue_link_code(
    secret: str, child_id: int, *, now: datetime, timezone: str
) -> tuple[str, datetime]:
    """A one-time code the minor gives to a parent or guardian."""
    child = await Patron.get(id=child_id)
    if (await _age_of(child, now, timezone)).band is AgeBand.ADULT:
        raise MinorsError("not_a_minor")
    code = "-".join(f"{secrets.randbelow(10_000):04d}" for _ in range(3))
    expires_at = now + timedelta(hours=LINK_CODE_HOURS)
    async with in_transaction():
        await LinkCode.filter(child_id=child_id).delete()  # one code at a time
        await LinkCode.create(
            child_id=child_id, code_lookup=keyed_hash(secret, "link", code), expires_at=expires_at
        )
    return code, expires_at


async def redeem_link_code(
    secret: str, guardian_id: int, code: str, label: str, *, now: datetime, timezone: str
) -> int:
    async with in_transaction():
        found = (
            await LinkCode.filter(code_lookup=keyed_hash(secret, "link", code.strip()))
            .select_for_update()
            .first()
        )
        if found is None or found.expires_at <= now:
            raise MinorsError("link_code_invalid")
        await found.delete()  # one-time, whatever happens next
        guardian = await Patron.get(id=guardian_id)
        child = await Patron.get(id=found.child_id)
        return await _link(
            guardian, child, label, guardian_online(guardian_id), now=now, tz=timezone
        )


async def purge_expired_link_codes(now: datetime) -> int:
    deleted: int = await LinkCode.filter(expires_at__lte=now).delete()
    return deleted


async def is_guardian(patron_id: int) -> bool:
    return await GuardianLink.exists(guardian_id=patron_id, ended_at=None)


async def guardian_count(child_id: int) -> int:
    count: int = await GuardianLink.filter(child_id=child_id, ended_at=None).count()
    return count


async def children(
    guardian_id: int, locale: str, *, now: datetime, timezone: str, only_service: str | None = None
) -> list[ChildOverview]:
    """Each linked child with the library's services as they apply to that child."""
    catalog = await published_catalog()
    links = await GuardianLink.filter(guardian_id=guardian_id, ended_at=None).order_by("id")
    child_rows = {p.id: p for p in await Patron.filter(id__in=[link.child_id for link in links])}
    states = {
        (state.patron_id, state.service_id): state
        for state in await ConsentState.filter(patron_id__in=list(child_rows))
    }
    result = []
    for link in links:
        child = child_rows[link.child_id]
        age = await _age_of(child, now, timezone)
        visible = guardian_sees_choices(age.band, child.shares_with_guardians)
        services = []
        for service in catalog.services:
            notice = catalog.notice(service.id, locale)
            if notice is None or (only_service and service.key != only_service):
                continue
            state = states.get((child.id, service.id))
            offered = age.offers(service.minimum_age)
            services.append(
                ChildService(
                    service=service,
                    notice=notice,
                    offered=offered,
                    status=status_for(state, service) if visible else None,
                    guardian_may_decide=age.band is AgeBand.CHILD,
                    revision=state.revision if state else 0,
                    by_guardian=bool(
                        visible and state and state.granted and state.granted_by == Actor.GUARDIAN
                    ),
                )
            )
        result.append(ChildOverview(link.id, link.label, age.band, services))
    return result


async def notice_for_guardian(key: str, locale: str) -> NoticeVersion | None:
    """The current notice in the guardian's own language."""
    service = await Service.get_or_none(key=key)
    if service is None:
        return None
    return await NoticeVersion.get_or_none(
        service_id=service.id, revision=service.revision, locale=locale
    )


async def guardian_decide(
    guardian_id: int,
    link_id: int,
    key: str,
    decision: Decision,
    *,
    notice_version_id: int | None,
    expected_revision: int,
    now: datetime,
    timezone: str,
) -> Outcome:
    link = await GuardianLink.get_or_none(id=link_id, guardian_id=guardian_id, ended_at=None)
    if link is None:
        raise MinorsError("not_linked")
    return await decide(
        link.child_id,
        key,
        decision,
        notice_version_id=notice_version_id,
        expected_revision=expected_revision,
        now=now,
        timezone=timezone,
        party=guardian_online(guardian_id),
    )


async def set_sharing(patron_id: int, *, shares: bool) -> None:
    await Patron.filter(id=patron_id).update(shares_with_guardians=shares)


async def coming_of_age(*, now: datetime, timezone: str) -> ComingOfAge:
    """Scheduled and idempotent: for each patron who has reached the age of majority, end
    guardian links and pause the consents a guardian gave until the patron confirms them."""
    library = await library_jurisdiction()
    today = local_date(now, timezone)
    # Nobody younger than the lowest possible age of majority needs looking at.
    youngest = today.replace(year=today.year - min(library.age_of_majority, 16))
    candidates = await Patron.filter(came_of_age_at=None, born_on__lte=youngest)
    patrons = links_ended = suspended = 0
    for candidate in candidates:
        age = age_context(candidate.born_on, candidate.jurisdiction, library, today)
        if age.band is not AgeBand.ADULT:
            continue
        async with in_transaction():
            patron = await Patron.filter(id=candidate.id).select_for_update().first()
            if patron is None or patron.came_of_age_at is not None:
                continue  # another run got here first
            ended_before, suspended_before = links_ended, suspended
            for link in await GuardianLink.filter(child_id=patron.id, ended_at=None):
                link.ended_at, link.end_reason = now, CAME_OF_AGE
                await link.save(update_fields=["ended_at", "end_reason"])
                await ledger.record(
                    patron.id,
                    EventKind.GUARDIAN_LINK_ENDED,
                    SYSTEM_JOB,
                    now=now,
                    detail={"link": link.id, "reason": CAME_OF_AGE},
                )
                links_ended += 1
            suspended += await _suspend_guardian_consents(patron.id, now)
            # Marked even when there was nothing to hand over, so no run looks at them again.
            patron.came_of_age_at = now
            await patron.save(update_fields=["came_of_age_at"])
            if (links_ended, suspended) != (ended_before, suspended_before):
                patrons += 1
    return ComingOfAge(patrons, links_ended, suspended)


async def _suspend_guardian_consents(patron_id: int, now: datetime) -> int:
    states = await ConsentState.filter(
        patron_id=patron_id, granted=True, granted_by=Actor.GUARDIAN.value
    ).select_for_update()
    services = {s.id: s for s in await Service.filter(id__in=[s.service_id for s in states])}
    for state in states:
        await suspend(state, services[state.service_id], CAME_OF_AGE, now)
    return len(states)
