"""The registration desk's use cases on a card: a new cardholder (with a guardian when the
law needs one), cards from a file, looking up a card, unlocking sign-in, PIN resets and setup
slips, guardian links. The screen handed over to the patron is portal.desk.handovers.

Staff never set a PIN and never make a choice: on the handed-over screen the patron (or,
for a child below the guardian-consent age, the guardian checked in person) does, and the
ledger records it as made at the desk, with the staff member as witness. Every staff action
is appended to the staff audit trail in the same transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime

from tortoise.transactions import in_transaction

from portal.catalog.jurisdiction import AgeBand
from portal.catalog.services import (
    age_for_decision,
)
from portal.credentials import throttle
from portal.credentials.throttle import Guessing
from portal.errors import DeskCode, DomainError, PatronCode
from portal.guardians.models import GuardianLink
from portal.minors.services import end_link_at_desk, link_at_desk
from portal.patrons.ils import ask
from portal.patrons.importing import BadRow, ImportSummary, IssuedCode, import_patrons
from portal.patrons.models import Patron
from portal.patrons.policy import guess_subject, normalise_card
from portal.patrons.services import (
    NewPatron,
    PatronError,
    card_lookup,
    clear_pin,
    create_patron,
    issue_setup_code_for,
    lock_patron,
    register_card,
)
from portal.sip2.client import Sip2Client
from portal.staff import audit
from portal.staff.policy import AuditAction
from portal.staff.services import StaffIdentity


class DeskError(DomainError):
    """A DeskCode: identity_not_confirmed, guardian_card_required, reason_required, …"""


@dataclass(frozen=True)
class GuardianAtDesk:
    card: str
    new_card: bool  # the guardian gets a card in the same visit
    label: str  # how the guardian will recognise the child in their account
    identity_checked: bool  # staff confirm they checked identity and relationship
    locale: str | None = None


@dataclass(frozen=True)
class Onboarded:
    patron_id: int
    guardian_id: int | None
    guardian_is_new: bool
    band: AgeBand


async def onboard(
    secret: str,
    staff: StaffIdentity,
    card: str,
    *,
    born_on: date | None,
    locale: str | None,
    guardian: GuardianAtDesk | None,
    now: datetime,
    timezone: str,
    ils: Sip2Client | None = None,
) -> Onboarded:
    """A new card with every optional service off and no PIN. Below the guardian-consent
    age a guardian checked in person is linked in the same transaction; if anything is
    refused, nothing is created. When the library system checks cards and PINs (`ils`),
    it must know the card (and a guardian card made now) first; a birth date it holds is
    used when staff typed none."""
    if ils is not None:
        born_on = await _checked_with_library_system(
            ils, card, guardian.card if guardian and guardian.new_card else None, born_on
        )
    age = await age_for_decision(born_on, None, now=now, timezone=timezone)
    if age.band is AgeBand.CHILD and guardian is None:
        raise DeskError(DeskCode.GUARDIAN_CARD_REQUIRED)
    if guardian is not None and not guardian.identity_checked:
        raise DeskError(DeskCode.IDENTITY_NOT_CONFIRMED)
    async with in_transaction():
        patron_id = await register_card(secret, card, now=now, born_on=born_on, locale=locale)
        await _audit_patron(secret, staff, AuditAction.CARD_CREATED, patron_id, now)
        guardian_id = None
        if guardian is not None:
            if guardian.new_card:
                new_guardian = await register_card(secret, guardian.card, now=now, locale=locale)
                await _audit_patron(secret, staff, AuditAction.CARD_CREATED, new_guardian, now)
            made = await link_at_desk(
                secret,
                guardian.card,
                card,
                guardian.label,
                now=now,
                timezone=timezone,
                witness=staff.pseudonym,
            )
            guardian_id = made.guardian_id
            for party in (made.child_id, made.guardian_id):
                await _audit_patron(secret, staff, AuditAction.GUARDIAN_LINKED, party, now)
    return Onboarded(patron_id, guardian_id, guardian is not None and guardian.new_card, age.band)


async def _checked_with_library_system(
    ils: Sip2Client, card: str, guardian_card: str | None, born_on: date | None
) -> date | None:
    """Staff learn only whether the library system knows a card: no name, nothing else."""
    for number in (card, guardian_card):
        if number is None:
            continue
        normalised = normalise_card(number)
        if normalised is None:
            raise DeskError(PatronCode.CARD_FORMAT)
        try:
            answer = await ask(ils, normalised, None)
        except PatronError:
            raise DeskError(DeskCode.ILS_UNAVAILABLE) from None
        if not answer.valid_patron:
            raise DeskError(DeskCode.CARD_NOT_IN_ILS)
        if number == card and born_on is None:
            born_on = answer.born_on
    return born_on


async def _audit_patron(
    secret: str,
    staff: StaffIdentity,
    action: AuditAction,
    patron_id: int,
    now: datetime,
    *,
    reason: str | None = None,
) -> None:
    await audit.append(
        staff, action, now=now, patron_key=audit.patron_key(secret, patron_id), reason=reason
    )


async def create_card(
    secret: str,
    staff: StaffIdentity,
    card: str,
    *,
    now: datetime,
    setup_code_hours: int,
    born_on: date | None = None,
    jurisdiction: str | None = None,
) -> NewPatron:
    """The command line's new card: every optional service off, a one-time PIN setup code
    for the operator to hand over, and the audit line, in one transaction."""
    async with in_transaction():
        new = await create_patron(
            secret,
            card,
            now=now,
            setup_code_hours=setup_code_hours,
            born_on=born_on,
            jurisdiction=jurisdiction,
        )
        await _audit_patron(secret, staff, AuditAction.CARD_CREATED, new.patron_id, now)
    return new


async def import_cards(
    lines: Iterable[str],
    secret: str,
    staff: StaffIdentity,
    *,
    now: datetime,
    today: date,
    locales: Iterable[str],
    setup_code_hours: int,
    on_bad_row: Callable[[BadRow], None] | None = None,
    on_codes: Callable[[list[IssuedCode]], None] | None = None,
) -> ImportSummary:
    """A file of cards (portal.patrons.importing), committed batch by batch so that a run
    that stopped can be run again; the audit line counts what this run did."""
    summary = await import_patrons(
        lines,
        secret,
        now=now,
        today=today,
        locales=locales,
        setup_code_hours=setup_code_hours,
        on_bad_row=on_bad_row,
        on_codes=on_codes,
    )
    await audit.append(
        staff,
        AuditAction.PATRONS_IMPORTED,
        now=now,
        detail={
            "rows": summary.created,
            "known": summary.skipped_existing,
            "bad": summary.bad_rows,
            "codes": on_codes is not None,
        },
    )
    return summary


# Looking up a card and acting on it ---------------------------------------------------


@dataclass(frozen=True)
class CardLookup:
    """All staff learn about a card: never a choice, a consent record or library use."""

    patron_id: int
    has_pin: bool
    guardians: int
    locked: bool
    is_child: bool
    throttle_key: str
    # Held after its budget of wrong PINs: only a setup code or the desk lifts it.
    held: bool = False


async def look_up(
    secret: str,
    staff: StaffIdentity,
    card: str,
    *,
    limits: PinLimits,
    now: datetime,
    timezone: str,
) -> CardLookup:
    patron = await Patron.get_or_none(card_lookup=card_lookup(secret, card))
    if patron is None:
        raise PatronError(PatronCode.CARD_UNKNOWN)
    guardians = await GuardianLink.filter(child_id=patron.id, ended_at=None).count()
    standing = await throttle.standing(
        throttle.pin_limits(
            secret,
            guess_subject(card),
            attempts=limits.attempts,
            window_seconds=limits.window_seconds,
            per_day=limits.per_day,
            before_hold=limits.before_hold,
        ),
        now=now,
    )
    age = await age_for_decision(patron.born_on, None, now=now, timezone=timezone)
    await _audit_patron(secret, staff, AuditAction.CARD_LOOKED_UP, patron.id, now)
    return CardLookup(
        patron.id,
        patron.pin_hash is not None,
        guardians,
        standing.locked,
        age.band is AgeBand.CHILD,
        throttle.subject_key(secret, Guessing.SIGNIN, guess_subject(card)),
        held=standing.held,
    )


@dataclass(frozen=True)
class PinLimits:
    """The settings a card's standing is read against (portal.credentials.throttle)."""

    attempts: int
    window_seconds: int
    per_day: int
    before_hold: int


async def network_held(
    secret: str, client_host: str | None, *, attempts: int, window_seconds: int, now: datetime
) -> bool:
    """Whether sign-in from the desk's own network is held by failures from it. The desk
    cannot know a patron's network, but a library's public network is usually its own."""
    _, network = throttle.limits(
        throttle.throttle_keys(secret, Guessing.SIGNIN, "", client_host), attempts, window_seconds
    )
    return await throttle.network_held(network, now=now)


async def unlock_network(
    secret: str, staff: StaffIdentity, client_host: str | None, *, now: datetime
) -> None:
    """Staff clear the hold on their own network's sign-ins, in the audit trail."""
    async with in_transaction():
        cleared = await throttle.clear_key(
            throttle.network_key(secret, Guessing.SIGNIN, client_host)
        )
        await audit.append(
            staff, AuditAction.NETWORK_UNLOCKED, now=now, detail={"cleared": cleared}
        )


async def unlock(
    secret: str, staff: StaffIdentity, patron_id: int, throttle_key: str, *, now: datetime
) -> None:
    async with in_transaction():
        await throttle.clear_card(secret, throttle_key)
        await _audit_patron(secret, staff, AuditAction.SIGNIN_UNLOCKED, patron_id, now)


async def unlock_card(secret: str, staff: StaffIdentity, card: str, *, now: datetime) -> int:
    """The command line's unlock, by card number: the attempts cleared (counted for unknown
    cards too), with the audit line of a known card's patron in the same transaction."""
    patron = await Patron.get_or_none(card_lookup=card_lookup(secret, card))
    async with in_transaction():
        cleared = await throttle.unlock(secret, Guessing.SIGNIN, guess_subject(card))
        if patron is not None:
            await _audit_patron(secret, staff, AuditAction.SIGNIN_UNLOCKED, patron.id, now)
    return cleared


async def reset_pin(
    secret: str, staff: StaffIdentity, patron_id: int, throttle_key: str, *, now: datetime
) -> None:
    """The old PIN stops working and every session of the patron ends; the patron then sets
    a new one on the handed-over screen or with a printed slip. Sign-in is unlocked: staff
    have checked who the patron is."""
    async with in_transaction():
        await _reset_pin(secret, staff, patron_id, throttle_key, now=now)


async def _reset_pin(
    secret: str, staff: StaffIdentity, patron_id: int, throttle_key: str, *, now: datetime
) -> None:
    await clear_pin(patron_id, now=now)
    await throttle.clear_card(secret, throttle_key)
    await _audit_patron(secret, staff, AuditAction.PIN_RESET, patron_id, now)


async def reset_pin_by_card(
    secret: str, staff: StaffIdentity, card: str, *, now: datetime, setup_code_hours: int
) -> NewPatron:
    """The command line's reset: the desk's (reset_pin), found by card number, and the setup
    slip the operator hands over, in one transaction."""
    patron = await Patron.get_or_none(card_lookup=card_lookup(secret, card))
    if patron is None:
        raise PatronError(PatronCode.CARD_UNKNOWN)
    async with in_transaction():
        await _reset_pin(
            secret,
            staff,
            patron.id,
            throttle.subject_key(secret, Guessing.SIGNIN, guess_subject(card)),
            now=now,
        )
        new = await issue_setup_code_for(
            secret, patron.id, now=now, setup_code_hours=setup_code_hours
        )
        await _audit_patron(secret, staff, AuditAction.SETUP_SLIP_PRINTED, patron.id, now)
    return new


async def setup_slip(
    secret: str, staff: StaffIdentity, patron_id: int, *, now: datetime, setup_code_hours: int
) -> NewPatron:
    """A one-time code for the patron to take home; stored only as a keyed hash. Only for a
    card without a PIN (new, or just reset), as a hand-over."""
    async with in_transaction():
        patron = await lock_patron(patron_id)
        if patron is None or patron.pin_hash is not None:
            raise DeskError(DeskCode.PIN_EXISTS)
        new = await issue_setup_code_for(
            secret, patron_id, now=now, setup_code_hours=setup_code_hours
        )
        await _audit_patron(secret, staff, AuditAction.SETUP_SLIP_PRINTED, patron_id, now)
    return new


async def link_guardian(
    secret: str,
    staff: StaffIdentity,
    guardian_card: str,
    child_card: str,
    label: str,
    *,
    identity_checked: bool,
    now: datetime,
    timezone: str,
    witnessed: bool = True,
) -> None:
    """`witnessed`: False from the command line, where the ledger names no staff member as
    witness (the audit trail names the operator)."""
    if not identity_checked:
        raise DeskError(DeskCode.IDENTITY_NOT_CONFIRMED)
    async with in_transaction():
        made = await link_at_desk(
            secret,
            guardian_card,
            child_card,
            label,
            now=now,
            timezone=timezone,
            witness=staff.pseudonym if witnessed else None,
        )
        for party in (made.child_id, made.guardian_id):
            await _audit_patron(secret, staff, AuditAction.GUARDIAN_LINKED, party, now)


async def unlink_guardian(
    secret: str,
    staff: StaffIdentity,
    guardian_card: str,
    child_card: str,
    reason: str,
    *,
    identity_checked: bool,
    now: datetime,
    witnessed: bool = True,
) -> None:
    """Ending a link is recorded, never deleted; the guardian and the child see it.
    `witnessed`: as for link_guardian."""
    if not reason.strip():
        raise DeskError(DeskCode.REASON_REQUIRED)
    if not identity_checked:
        raise DeskError(DeskCode.IDENTITY_NOT_CONFIRMED)
    async with in_transaction():
        made = await end_link_at_desk(
            secret,
            guardian_card,
            child_card,
            now=now,
            witness=staff.pseudonym if witnessed else None,
        )
        for party in (made.child_id, made.guardian_id):
            await _audit_patron(
                secret, staff, AuditAction.GUARDIAN_UNLINKED, party, now, reason=reason.strip()
            )


async def patron_locale(patron_id: int) -> str | None:
    patron = await Patron.get_or_none(id=patron_id)
    return patron.locale if patron else None
