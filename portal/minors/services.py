"""Guardians and minors: linking, a guardian's review and consent, and coming of age.

What a guardian may ever read through these functions: the child's label, age band, the
library's notices, and consent states they are responsible for (or that a teenager shares).
Never the child's reading history, saved lists or any other library use.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from portal import batches
from portal.batches import Progress, delete_in_batches, no_progress
from portal.catalog.jurisdiction import AgeBand, AgeContext, age_context, born_on_or_before
from portal.catalog.services import (
    PublishedNotice,
    PublishedService,
    age_for_decision,
    current_notice,
    current_service,
    library_jurisdiction,
    published_catalog,
)
from portal.clock import local_date
from portal.consent.policy import (
    Decision,
    Status,
    SuspensionReason,
    given_by_guardian,
    state_status,
)
from portal.consent.reads import (
    MessageGrid,
    ServiceOverview,
    message_grid,
    message_grids,
    overview_of,
    states_of,
)
from portal.consent.services import (
    suspend_given_by,
    suspend_guardian_given,
    with_guardian_given,
)
from portal.contacts.services import contacts_of
from portal.credentials.policy import KeyPurpose, keyed_hash
from portal.decisions.services import MessageCell, Outcome, choose_messages, decide
from portal.errors import DomainError, MinorsCode, PatronCode
from portal.guardians.models import GuardianLink
from portal.guardians.services import LinkInfo, links_of
from portal.ledger.details import GuardianLinked, GuardianLinkEnded
from portal.ledger.models import EventKind
from portal.ledger.services import (
    PATRON_ONLINE,
    SYSTEM_JOB,
    ActingParty,
    guardian_at_desk,
    guardian_online,
    library_staff,
    record,
)
from portal.ledger.vocabulary import Audience, Method
from portal.minors.models import LinkCode
from portal.minors.policy import (
    LINK_CODE_HOURS,
    MAX_GUARDIANS,
    guardian_sees_choices,
    may_decide_for_child,
)
from portal.patrons.models import Patron
from portal.patrons.services import PatronError, card_lookup, lock_patron


class MinorsError(DomainError):
    """A MinorsCode: not_a_minor, guardian_not_adult, already_linked, link_code_invalid, …"""


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
    may_decide: bool  # this guardian's link was verified in person
    other_guardians: list[LinkInfo]
    sees_choices: bool = True  # False: a teenager's own choices, not shared
    # As the guardian's pages list them: each messaging service as one grid (in the full
    # notice's words, its states the child's only when `sees_choices`), others as they are.
    listed: list[ChildService | MessageGrid] = field(default_factory=list)


@dataclass(frozen=True)
class LinkMade:
    link_id: int
    guardian_id: int
    child_id: int


@dataclass(frozen=True)
class ComingOfAge:
    patrons: int  # those who had guardian links or guardian-given consents to hand over
    links_ended: int
    consents_suspended: int


async def _age_of(patron: Patron, now: datetime, timezone: str) -> AgeContext:
    return await age_for_decision(patron.born_on, patron.jurisdiction, now=now, timezone=timezone)


async def _link(
    guardian: Patron, child: Patron, label: str, party: ActingParty, *, now: datetime, tz: str
) -> int:
    if guardian.id == child.id:
        raise MinorsError(MinorsCode.NOT_A_MINOR)
    if (await _age_of(child, now, tz)).band is AgeBand.ADULT:
        raise MinorsError(MinorsCode.NOT_A_MINOR)
    if (await _age_of(guardian, now, tz)).band is not AgeBand.ADULT:
        raise MinorsError(MinorsCode.GUARDIAN_NOT_ADULT)
    await lock_patron(child.id)  # links to one child are counted one at a time
    existing = await GuardianLink.get_or_none(
        guardian_id=guardian.id, child_id=child.id, ended_at=None
    )
    if existing is not None:
        if party.method is Method.DESK_HANDOVER and not may_decide_for_child(existing.method):
            return await _verify_in_person(existing, party, now=now)
        raise MinorsError(MinorsCode.ALREADY_LINKED)
    if await GuardianLink.filter(child_id=child.id, ended_at=None).count() >= MAX_GUARDIANS:
        raise MinorsError(MinorsCode.TOO_MANY_GUARDIANS)
    link = await GuardianLink.create(
        guardian_id=guardian.id,
        child_id=child.id,
        label=label.strip()[:60] or "—",
        method=party.method.value,
        linked_at=now,
    )
    await record(
        child.id, EventKind.GUARDIAN_LINKED, party, now=now, detail=GuardianLinked(link=link.id)
    )
    return link.id


async def _verify_in_person(link: GuardianLink, party: ActingParty, *, now: datetime) -> int:
    """Staff check in person a link the guardian made with the child's code: the same link
    (its label, its date) now lets the guardian decide, and the child's record says so with
    the entry an in-person link writes, naming the witness. Ending it and linking again
    would pause nothing (a code link gives no consent) but would tell the child that a
    link ended."""
    link.method = party.method.value
    await link.save(update_fields=["method"])
    detail = GuardianLinked(link=link.id)
    await record(link.child_id, EventKind.GUARDIAN_LINKED, party, now=now, detail=detail)
    return link.id


async def link_at_desk(
    secret: str,
    guardian_card: str,
    child_card: str,
    label: str,
    *,
    now: datetime,
    timezone: str,
    witness: str | None = None,
) -> LinkMade:
    """Staff verified the relationship in person; the guardian is the one who acts.
    `witness`: the pseudonym of the staff member at the desk (None from the command line)."""
    async with in_transaction():
        guardian = await Patron.get_or_none(card_lookup=card_lookup(secret, guardian_card))
        child = await Patron.get_or_none(card_lookup=card_lookup(secret, child_card))
        if guardian is None or child is None:
            raise PatronError(PatronCode.CARD_UNKNOWN)
        party = guardian_at_desk(guardian.id, witness)
        link_id = await _link(guardian, child, label, party, now=now, tz=timezone)
        return LinkMade(link_id, guardian.id, child.id)


async def issue_link_code(
    secret: str, child_id: int, *, now: datetime, timezone: str
) -> tuple[str, datetime]:
    """A one-time code the minor gives to a parent or guardian."""
    child = await Patron.get(id=child_id)
    if (await _age_of(child, now, timezone)).band is AgeBand.ADULT:
        raise MinorsError(MinorsCode.NOT_A_MINOR)
    code = "-".join(f"{secrets.randbelow(10_000):04d}" for _ in range(3))
    expires_at = now + timedelta(hours=LINK_CODE_HOURS)
    async with in_transaction():
        await LinkCode.filter(child_id=child_id).delete()  # one code at a time
        await LinkCode.create(
            child_id=child_id,
            code_lookup=keyed_hash(secret, KeyPurpose.LINK_CODE, code),
            expires_at=expires_at,
        )
    return code, expires_at


async def redeem_link_code(
    secret: str, guardian_id: int, code: str, label: str, *, now: datetime, timezone: str
) -> int:
    """One-time, whatever happens next: the code is consumed in its own transaction before
    the link is attempted, so a refused link cannot leave it usable."""
    async with in_transaction():
        found = (
            await LinkCode.filter(
                code_lookup=keyed_hash(secret, KeyPurpose.LINK_CODE, code.strip())
            )
            .select_for_update()
            .first()
        )
        if found is None or found.expires_at <= now:
            raise MinorsError(MinorsCode.LINK_CODE_INVALID)
        await found.delete()
    async with in_transaction():
        guardian = await Patron.get(id=guardian_id)
        child = await Patron.get(id=found.child_id)
        return await _link(
            guardian, child, label, guardian_online(guardian_id), now=now, tz=timezone
        )


async def purge_expired_link_codes(now: datetime, progress: Progress = no_progress) -> int:
    return await delete_in_batches(LinkCode.filter(expires_at__lte=now), progress)


async def children(
    guardian_id: int,
    locale: str,
    *,
    now: datetime,
    timezone: str,
    only_service: str | None = None,
    only_group: str | None = None,
) -> list[ChildOverview]:
    """Each linked child with the library's services as they apply to that child
    (`only_service`: one service; `only_group`: one messaging service's choices)."""
    catalog = await published_catalog()
    links = await GuardianLink.filter(guardian_id=guardian_id, ended_at=None).order_by("id")
    child_rows = {p.id: p for p in await Patron.filter(id__in=[link.child_id for link in links])}
    states = await states_of(list(child_rows))
    # What a guardian may see depends on the age rules: read them from the database.
    library = await library_jurisdiction()
    today = local_date(now, timezone)
    result = []
    for link in links:
        child = child_rows[link.child_id]
        age = age_context(child.born_on, child.jurisdiction, library, today)
        visible = guardian_sees_choices(age.band, child.shares_with_guardians)
        services = []
        overviews: list[ServiceOverview] = []
        for service in catalog.services:
            notice = catalog.notice(service.id, locale)
            if notice is None or (only_service and service.key != only_service):
                continue
            group = service.choice.group if service.choice else None
            if only_group and group != only_group:
                continue
            state = states.get((child.id, service.id))
            # The guardian reads the full notice; a state they may not see is never read.
            overviews.append(
                replace(
                    overview_of(service, notice, state if visible else None, age),
                    audience=Audience.ADULT,
                )
            )
            services.append(
                ChildService(
                    service=service,
                    notice=notice,
                    offered=age.offers(service.minimum_age),
                    status=state_status(state, service.terms_revision) if visible else None,
                    guardian_may_decide=age.band is AgeBand.CHILD,
                    revision=state.revision if state else 0,
                    by_guardian=visible and given_by_guardian(state),
                )
            )
        by_key = {item.service.key: item for item in services}
        result.append(
            ChildOverview(
                link.id,
                link.label,
                age.band,
                services,
                may_decide=may_decide_for_child(link.method),
                other_guardians=await links_of(child.id, now=now, except_link=link.id),
                sees_choices=visible,
                listed=[
                    item if isinstance(item, MessageGrid) else by_key[item.service.key]
                    for item in message_grids(overviews)
                ],
            )
        )
    return result


async def end_own_link(guardian_id: int, link_id: int, *, now: datetime) -> None:
    """A guardian ends their own link; the child and the other guardians are told."""
    async with in_transaction():
        link = (
            await GuardianLink.filter(id=link_id, guardian_id=guardian_id, ended_at=None)
            .select_for_update()
            .first()
        )
        if link is None:
            raise MinorsError(MinorsCode.NOT_LINKED)
        await _end_link(link, "guardian_ended", guardian_online(guardian_id), now=now)


async def end_code_link_as_child(child_id: int, link_id: int, *, now: datetime) -> None:
    """A child (or teenager) ends a link an adult made with their code: a code is easily
    given to the wrong adult, and such a link decides nothing. A link staff checked in
    person is ended at the desk. A link already ended is left as it is."""
    async with in_transaction():
        link = (
            await GuardianLink.filter(id=link_id, child_id=child_id, ended_at=None)
            .select_for_update()
            .first()
        )
        if link is None:
            return
        if may_decide_for_child(link.method):
            raise MinorsError(MinorsCode.NOT_VERIFIED)
        await _end_link(link, "ended_by_child", PATRON_ONLINE, now=now)


async def end_link_at_desk(
    secret: str,
    guardian_card: str,
    child_card: str,
    *,
    now: datetime,
    witness: str | None = None,
) -> LinkMade:
    """Library staff end a link. The reason they were given goes to the staff audit trail
    (the caller's), not to the child's record."""
    async with in_transaction():
        guardian = await Patron.get_or_none(card_lookup=card_lookup(secret, guardian_card))
        child = await Patron.get_or_none(card_lookup=card_lookup(secret, child_card))
        if guardian is None or child is None:
            raise PatronError(PatronCode.CARD_UNKNOWN)
        link = (
            await GuardianLink.filter(guardian_id=guardian.id, child_id=child.id, ended_at=None)
            .select_for_update()
            .first()
        )
        if link is None:
            raise MinorsError(MinorsCode.NOT_LINKED)
        party = library_staff(witness)
        await _end_link(link, "ended_by_library", party, now=now)
        return LinkMade(link.id, guardian.id, child.id)


async def _end_link(link: GuardianLink, reason: str, party: ActingParty, *, now: datetime) -> None:
    """Call inside a transaction. The child's row lock orders this after (or before) any
    decision the guardian is making for the child; what they consented to is paused."""
    await lock_patron(link.child_id)
    if reason != SuspensionReason.CAME_OF_AGE:  # coming of age pauses all guardian consents
        await suspend_given_by(link.guardian_id, link.child_id, now)
    link.ended_at, link.end_reason = now, reason
    await link.save(update_fields=["ended_at", "end_reason"])
    detail = GuardianLinkEnded(link=link.id, reason=reason)
    await record(link.child_id, EventKind.GUARDIAN_LINK_ENDED, party, now=now, detail=detail)


async def notice_for_guardian(key: str, locale: str) -> PublishedNotice | None:
    """The current notice in the guardian's own language."""
    service = await current_service(key)
    return await current_notice(service, locale) if service else None


async def guardian_decide(
    guardian_id: int,
    link_id: int,
    key: str,
    decision: Decision,
    *,
    notice_version_id: int | None,
    expected_revision: int,
    locale: str,
    now: datetime,
    timezone: str,
) -> Outcome:
    link = await GuardianLink.get_or_none(id=link_id, guardian_id=guardian_id, ended_at=None)
    if link is None:
        raise MinorsError(MinorsCode.NOT_LINKED)
    if not may_decide_for_child(link.method):
        raise MinorsError(MinorsCode.NOT_VERIFIED)
    return await decide(
        link.child_id,
        key,
        decision,
        notice_version_id=notice_version_id,
        expected_revision=expected_revision,
        locale=locale,
        now=now,
        timezone=timezone,
        party=guardian_online(guardian_id),
    )


@dataclass(frozen=True)
class ChildMessages:
    """A messaging service for one child, as a guardian reads it: the grid in the full
    notice's words, read from the database (never a stale notice)."""

    grid: MessageGrid
    offered: bool  # at this child's age
    # The same choices as the child reads them (the child's version), for the child below
    # the guardian-consent age who has one; None otherwise.
    child_rows: list[tuple[str, str]] | None
    # The child's contact details, by channel: only for a guardian who may decide for them.
    contacts: dict[str, str]


async def messages_for_guardian(
    guardian_id: int, link_id: int, group: str, locale: str, *, now: datetime, timezone: str
) -> ChildMessages:
    link = await GuardianLink.get_or_none(id=link_id, guardian_id=guardian_id, ended_at=None)
    if link is None:
        raise MinorsError(MinorsCode.NOT_LINKED)
    child = await Patron.get(id=link.child_id)
    age = await _age_of(child, now, timezone)
    visible = guardian_sees_choices(age.band, child.shares_with_guardians)
    # Without an age, the grid is in the full notice's words and nothing in it is locked;
    # the page applies this child's age rules itself (who decides, what is offered). A
    # teenager's choices not shared are never read: patron 0 is nobody, so all read off.
    grid = await message_grid(child.id if visible else 0, group, locale)
    child_rows = None
    if age.band is AgeBand.CHILD and grid.first.notice.child_texts is not None:
        child_rows = []
        for row in grid.rows:
            texts = next(iter(row.cells.values())).notice.child_texts or {}
            child_rows.append((texts.get("kind_title", ""), texts.get("kind_says", "")))
    contacts: dict[str, str] = {}
    if age.band is AgeBand.CHILD and may_decide_for_child(link.method):
        contacts = (await contacts_of([child.id])).get(child.id, {})
    offered = all(age.offers(choice.service.minimum_age) for choice in grid.choices)
    return ChildMessages(grid, offered, child_rows, contacts)


async def guardian_choose_messages(
    guardian_id: int,
    link_id: int,
    group: str,
    cells: list[MessageCell],
    contacts: dict[str, str],
    *,
    locale: str,
    now: datetime,
    timezone: str,
    phone_region: str,
) -> list[str]:
    """A guardian verified in person saves a child's messaging grid, each pair under the
    rules of any service; the number or address they give is the child's, kept for the
    child and erased with the child's last choice on its channel."""
    link = await GuardianLink.get_or_none(id=link_id, guardian_id=guardian_id, ended_at=None)
    if link is None:
        raise MinorsError(MinorsCode.NOT_LINKED)
    if not may_decide_for_child(link.method):
        raise MinorsError(MinorsCode.NOT_VERIFIED)
    return await choose_messages(
        link.child_id,
        group,
        cells,
        contacts,
        locale=locale,
        now=now,
        timezone=timezone,
        party=guardian_online(guardian_id),
        phone_region=phone_region,
    )


def _not_yet_of_age(now: datetime, timezone: str, majority: int) -> QuerySet[Patron]:
    # Nobody younger than the lowest possible age of majority needs looking at.
    latest_birth_date = born_on_or_before(local_date(now, timezone), min(majority, 16))
    return Patron.filter(came_of_age_at=None, born_on__lte=latest_birth_date)


async def count_coming_of_age(*, now: datetime, timezone: str) -> int:
    """How many patrons `coming_of_age` looks at (its run's total)."""
    library = await library_jurisdiction()
    return await _not_yet_of_age(now, timezone, library.age_of_majority).count()


async def coming_of_age(
    *, now: datetime, timezone: str, progress: Progress = no_progress
) -> ComingOfAge:
    """Scheduled and idempotent: for each patron who has reached the age of majority, end
    guardian links and pause the consents a guardian gave until the patron confirms them.
    The candidates are read a batch at a time by id, each batch handed over in one short
    transaction (a first run over a whole consortium marks millions of adults)."""
    library = await library_jurisdiction()
    today = local_date(now, timezone)
    candidates = _not_yet_of_age(now, timezone, library.age_of_majority)
    report = ComingOfAge(0, 0, 0)
    after = 0
    while True:
        batch = await candidates.filter(id__gt=after).order_by("id").limit(batches.BATCH)
        adults = [
            candidate.id
            for candidate in batch
            if age_context(candidate.born_on, candidate.jurisdiction, library, today).band
            is AgeBand.ADULT
        ]
        if adults:
            async with in_transaction():
                done = await _hand_over(adults, now)
            report = ComingOfAge(
                report.patrons + done.patrons,
                report.links_ended + done.links_ended,
                report.consents_suspended + done.consents_suspended,
            )
        if batch:  # none left after a whole batch: nothing to record
            await progress(len(batch))
        if len(batch) < batches.BATCH:
            return report
        after = batch[-1].id


async def _hand_over(adults: list[int], now: datetime) -> ComingOfAge:
    """Inside the batch's transaction: the patrons' row locks, taken in id order (as every
    batch takes them, so two runs never deadlock), then the hand-over of those with
    something to hand over, and every one of them marked."""
    # The others: another run got there first.
    mine = Patron.filter(id__in=adults, came_of_age_at=None).order_by("id").select_for_update()
    locked = [patron.id for patron in await mine]
    links = await GuardianLink.filter(child_id__in=locked, ended_at=None).order_by("id")
    given = await with_guardian_given(locked)
    for link in links:
        await _end_link(link, SuspensionReason.CAME_OF_AGE.value, SYSTEM_JOB, now=now)
    suspended = 0
    for patron_id in sorted(given):
        suspended += await suspend_guardian_given(patron_id, now)
    # Marked even when there was nothing to hand over, so no run looks at them again.
    await Patron.filter(id__in=locked).update(came_of_age_at=now)
    return ComingOfAge(len({link.child_id for link in links} | given), len(links), suspended)
