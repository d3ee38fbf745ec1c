"""The screen handed over to the patron at the desk, as use cases: begun by staff for a card
without a PIN, where it stands, the patron's PIN and answers, handed back, its result for
staff, and the daily purge. The pages are portal.desk.handover.

Staff never set a PIN and never make a choice: on the handed-over screen the patron (or,
for a child below the guardian-consent age, the guardian checked in person) does, and the
ledger records it as made at the desk, with the staff member as witness. Starting and
handing back are appended to the staff audit trail in the same transaction.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from portal.batches import Progress, delete_in_batches, no_progress
from portal.catalog.jurisdiction import AgeBand
from portal.catalog.services import (
    PublishedNotice,
    PublishedService,
    age_for_decision,
    current_notice,
    published_catalog,
)
from portal.consent.models import ConsentState
from portal.consent.policy import ConsentError, Decision
from portal.consent.reads import MessageGrid, message_grid
from portal.credentials.policy import KeyPurpose as Hashed
from portal.credentials.policy import keyed_hash
from portal.credentials.services import hash_secret
from portal.decisions.services import MessageCell, Outcome, choose_messages, decide
from portal.desk.models import Handover
from portal.desk.policy import Purpose, Step, handover_step
from portal.desk.services import DeskError
from portal.errors import DeskCode
from portal.guardians.models import GuardianLink
from portal.ledger.services import ActingParty, guardian_at_desk, patron_at_desk
from portal.patrons.models import Patron, PortalSession
from portal.patrons.policy import check_new_pin
from portal.patrons.services import lock_patron, set_first_pin
from portal.staff import audit
from portal.staff.policy import AuditAction
from portal.staff.services import StaffIdentity, end_session, identity_of


@dataclass(frozen=True)
class HandoverView:
    id: int
    staff_id: int
    patron_id: int
    guardian_id: int | None
    guardian_decides: bool
    purpose: Purpose
    step: Step
    service: PublishedService | None  # the notice to show, at the NOTICE step
    notice: PublishedNotice | None  # its text in the screen's language
    position: int  # as stored: notices withdrawn meanwhile are passed over when read
    number: int  # which notice of how many
    total: int
    idle_minutes: int
    # When a guardian decides for a child: the name they gave the child when linking, for
    # the heading (as on /guardian pages). The portal keeps no other name.
    child_label: str | None = None
    # A messaging service's step: its choices, shown as a grid under its one notice.
    grid: MessageGrid | None = None


@dataclass(frozen=True)
class Handed:
    token: str
    locale: str | None


async def begin_handover(
    secret: str,
    staff: StaffIdentity,
    patron_id: int,
    *,
    guardian_id: int | None,
    guardian_is_new: bool,
    purpose: Purpose | None,
    now: datetime,
    idle_minutes: int,
    timezone: str,
    staff_token: str | None,
    pin_chosen_here: bool = True,
) -> Handed:
    """The token for the hand-over cookie, and the screen's language. Only a card without a
    PIN (new, or just reset) is handed over: staff can never use the screen to give an
    account a PIN of their own.
    The staff session (`staff_token`) ends in the same transaction: until staff sign in
    again, nothing of the desk is reachable from this screen, and a screen is never handed
    over with staff still signed in.
    `pin_chosen_here` False: the library system holds the patrons' PINs, so the screen
    skips choosing one and opens on the notices; only a new card is handed over then."""
    if not pin_chosen_here and purpose is not Purpose.NEW_CARD:
        raise DeskError(DeskCode.PIN_AT_LIBRARY_SYSTEM)
    if purpose not in (Purpose.NEW_CARD, Purpose.PIN_RESET):
        raise DeskError(DeskCode.HANDOVER_ENDED)
    token = secrets.token_urlsafe(32)
    async with in_transaction():
        patron = await lock_patron(patron_id)  # one hand-over per card at a time
        if patron is None or patron.pin_hash is not None:
            raise DeskError(DeskCode.PIN_EXISTS)
        if not pin_chosen_here and await _in_use(patron_id):
            # No PIN to guard the card here: the screen goes to a new card's first visit
            # only, never again once the patron has had one, signed in or decided.
            raise DeskError(DeskCode.HANDOVER_ENDED)
        guardian = await Patron.get_or_none(id=guardian_id) if guardian_id else None
        age = await age_for_decision(
            patron.born_on, patron.jurisdiction, now=now, timezone=timezone
        )
        # Below the guardian-consent age the guardian present decides; from it, the minor.
        guardian_decides = guardian is not None and age.band is AgeBand.CHILD
        keys: list[str] = []
        if purpose is Purpose.NEW_CARD and (guardian_decides or age.band is not AgeBand.CHILD):
            catalog = await published_catalog()
            # A messaging service is one step: its notice, then its grid.
            keys = list(
                dict.fromkeys(s.group for s in catalog.services if age.offers(s.minimum_age))
            )
        await Handover.filter(patron_id=patron_id, finished_at=None).update(finished_at=now)
        await Handover.create(
            token_lookup=keyed_hash(secret, Hashed.HANDOVER, token),
            staff_id=staff.staff_id,
            patron_id=patron_id,
            guardian_id=guardian.id if guardian else None,
            guardian_decides=guardian_decides,
            purpose=purpose,
            pin_set=not pin_chosen_here,
            guardian_needs_pin=pin_chosen_here
            and bool(guardian and guardian_is_new and guardian.pin_hash is None),
            service_keys=keys,
            started_at=now,
            expires_at=now + timedelta(minutes=idle_minutes),
        )
        await audit.append(
            staff,
            AuditAction.HANDOVER_STARTED,
            now=now,
            patron_key=audit.patron_key(secret, patron_id),
        )
        if staff_token:
            await end_session(secret, staff_token)
    # Whoever decides reads the notices in their own language.
    reader = guardian if guardian_decides and guardian is not None else patron
    return Handed(token, reader.locale or patron.locale)


async def _in_use(patron_id: int) -> bool:
    return (
        await Handover.exists(patron_id=patron_id)
        or await PortalSession.exists(patron_id=patron_id)
        or await ConsentState.exists(patron_id=patron_id)
    )


async def _open_handover(secret: str, token: str, now: datetime) -> Handover | None:
    """The hand-over while it is open: not handed back, not idle past its deadline. A read:
    one left idle simply stops being found (handover_result tells staff it cleared itself)."""
    handover = await Handover.get_or_none(token_lookup=keyed_hash(secret, Hashed.HANDOVER, token))
    if handover is None or handover.finished_at is not None or handover.expires_at <= now:
        return None
    return handover


async def current_handover(
    secret: str, token: str, *, now: datetime, idle_minutes: int, locale: str
) -> HandoverView | None:
    """Where the handed-over screen stands; None once it was handed back or sat idle. A
    read, for every request: a notice withdrawn since the hand-over began, or not published
    in `locale`, is passed over here, and the next answer moves the stored position past it."""
    handover = await _open_handover(secret, token, now)
    if handover is None:
        return None
    published = (await published_catalog()).services
    catalog = {service.key: service for service in published}
    groups = {service.group for service in published if service.choice is not None}
    keys = handover.service_keys
    step = handover_step(
        pin_set=handover.pin_set,
        guardian_needs_pin=handover.guardian_needs_pin,
        position=handover.position,
        notices=len(keys),
    )
    service, notice, grid = None, None, None
    position = handover.position
    if step is Step.NOTICE:
        # A notice withdrawn since, or not published in this language, is passed over here
        # (a read); the next answer moves the stored position past it.
        step = Step.DONE
        for position in range(handover.position, len(keys)):
            if keys[position] in groups:
                # Whoever decides here reads every kind's notice: no age rule hides a box
                # (the services were chosen for the patron's age when the screen was handed
                # over, and a guardian present decides for a child).
                grid = await _grid(handover.patron_id, keys[position], locale)
                if grid is not None:
                    service, notice, step = grid.first.service, grid.first.notice, Step.NOTICE
                    break
                continue
            service = catalog.get(keys[position])
            notice = await current_notice(service, locale) if service else None
            if notice is not None:
                step = Step.NOTICE
                break
        else:
            position, service = len(keys), None
    return HandoverView(
        handover.id,
        handover.staff_id,
        handover.patron_id,
        handover.guardian_id,
        handover.guardian_decides,
        Purpose(handover.purpose),
        step,
        service,
        notice,
        handover.position,
        position + 1,
        len(keys),
        idle_minutes,
        await _child_label(handover) if step is Step.NOTICE else None,
        grid,
    )


async def _grid(patron_id: int, group: str, locale: str) -> MessageGrid | None:
    try:
        return await message_grid(patron_id, group, locale)
    except ConsentError:
        return None  # withdrawn since, or not in this language: passed over


async def _child_label(handover: Handover) -> str | None:
    if not handover.guardian_decides or handover.guardian_id is None:
        return None
    link = (
        await GuardianLink.filter(
            guardian_id=handover.guardian_id, child_id=handover.patron_id, ended_at=None
        )
        .order_by("-id")
        .first()
    )
    return link.label if link else None


async def keep_open(view: HandoverView, *, now: datetime) -> None:
    """The patron acted: the screen's idle deadline starts again (WCAG 2.2.1)."""
    await Handover.filter(id=view.id, finished_at=None, expires_at__gt=now).update(
        expires_at=now + timedelta(minutes=view.idle_minutes)
    )


async def choose_pin(view: HandoverView, pin: str, *, now: datetime) -> None:
    """The patron's own PIN (or, at the GUARDIAN_PIN step, the new guardian's): set only on
    a card that has none, and only while the screen is still handed over."""
    check_new_pin(pin)
    pin_hash = await hash_secret(pin)
    open_now = Handover.filter(id=view.id, finished_at=None, expires_at__gt=now)
    async with in_transaction():
        if view.step is Step.GUARDIAN_PIN and view.guardian_id is not None:
            moved = await open_now.filter(guardian_needs_pin=True).update(guardian_needs_pin=False)
            target = view.guardian_id
        elif view.step is Step.PIN:
            moved = await open_now.filter(pin_set=False).update(pin_set=True)
            target = view.patron_id
        else:
            moved, target = 0, 0
        if not moved:
            raise DeskError(DeskCode.HANDOVER_ENDED)
        if not await set_first_pin(target, pin_hash):
            raise DeskError(DeskCode.PIN_EXISTS)  # rolls the step back too


async def decide_at_desk(
    view: HandoverView,
    service_key: str,
    decision: Decision,
    *,
    notice_version_id: int | None,
    expected_revision: int,
    locale: str,
    now: datetime,
    timezone: str,
) -> Outcome | None:
    """The patron's (or, for a child, the present guardian's) answer to the notice on
    screen; the screen then moves to the next notice. None when the form answered another
    notice than the one the screen is at (a repeated or stale form): nothing is decided."""
    if view.step is not Step.NOTICE or view.service is None or view.service.key != service_key:
        return None
    party = await _desk_party(view)
    outcome = await decide(
        view.patron_id,
        view.service.key,
        decision,
        notice_version_id=notice_version_id,
        expected_revision=expected_revision,
        locale=locale,
        now=now,
        timezone=timezone,
        party=party,
    )
    await _next_notice(view)
    return outcome


async def choose_messages_at_desk(
    view: HandoverView,
    group: str,
    cells: list[MessageCell],
    contacts: dict[str, str],
    *,
    locale: str,
    now: datetime,
    timezone: str,
    phone_region: str,
) -> bool:
    """The patron's (or the present guardian's) messages, saved from the grid on screen; the
    screen then moves on. False when the form was for another step than the screen's."""
    if view.step is not Step.NOTICE or view.grid is None or view.grid.group != group:
        return False
    await choose_messages(
        view.patron_id,
        group,
        cells,
        contacts,
        locale=locale,
        now=now,
        timezone=timezone,
        party=await _desk_party(view),
        phone_region=phone_region,
    )
    await _next_notice(view)
    return True


async def _desk_party(view: HandoverView) -> ActingParty:
    witness = (await identity_of(view.staff_id)).pseudonym
    if view.guardian_decides and view.guardian_id is not None:
        return guardian_at_desk(view.guardian_id, witness)
    return patron_at_desk(witness)


async def _next_notice(view: HandoverView) -> None:
    """On past the notice answered (and any passed over before it), from where the screen
    stood only: a repeated request does not skip two."""
    await Handover.filter(id=view.id, position=view.position).update(position=view.number)


async def decide_later(view: HandoverView) -> None:
    """Everything not yet answered stays off; the patron can choose online at any time."""
    await Handover.filter(id=view.id).update(position=view.total)


@dataclass(frozen=True)
class HandoverResult:
    """What staff see when the screen comes back: whether the card is ready. Never which
    services were chosen."""

    purpose: Purpose
    patron_id: int
    guardian_id: int | None
    pin_set: bool
    guardian_pin_missing: bool
    handed_back: bool  # False: the screen sat idle and cleared itself
    locale: str | None  # for the welcome sheet


async def hand_back(secret: str, token: str, *, now: datetime) -> None:
    handover = await _open_handover(secret, token, now)
    if handover is None:
        return
    async with in_transaction():
        ended = await Handover.filter(id=handover.id, finished_at=None).update(finished_at=now)
        if ended:
            staff = await identity_of(handover.staff_id)
            await audit.append(
                staff,
                AuditAction.HANDOVER_FINISHED,
                now=now,
                patron_key=audit.patron_key(secret, handover.patron_id),
            )


async def handover_result(secret: str, token: str) -> HandoverResult | None:
    """For staff signed in again at the same screen: the outcome (the page shows it once,
    dropping the hand-over's cookie). A read: the row goes with the daily purge."""
    handover = await Handover.get_or_none(token_lookup=keyed_hash(secret, Hashed.HANDOVER, token))
    if handover is None:
        return None
    finished = handover.finished_at
    patron = await Patron.get(id=handover.patron_id)
    return HandoverResult(
        Purpose(handover.purpose),
        handover.patron_id,
        handover.guardian_id,
        handover.pin_set,
        handover.guardian_needs_pin,
        finished is not None and finished < handover.expires_at,
        patron.locale,
    )


async def purge_handovers(now: datetime, progress: Progress = no_progress) -> int:
    """Hand-overs nobody came back for, a day on."""
    stale = Handover.filter(started_at__lte=now - timedelta(days=1))
    return await delete_in_batches(stale, progress)
