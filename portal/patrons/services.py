"""Accounts, PINs and sign-in sessions. Staff create a card; only the patron sets its PIN."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from portal.batches import Progress, no_progress
from portal.credentials import throttle
from portal.credentials.policy import KeyPurpose, keyed_hash
from portal.credentials.services import (
    OneTimeCodes,
    SlidingSessions,
    hash_secret,
    verify_secret,
)
from portal.errors import DomainError, PatronCode
from portal.patrons.models import Patron, PinSetupCode, PortalSession
from portal.patrons.policy import check_new_pin, guess_subject, new_setup_code, normalise_card

SETUP_CODES = OneTimeCodes(PinSetupCode, KeyPurpose.PIN_SETUP, "patron_id", new_setup_code)

# Every page reads the session: one indexed query, identity only. Its idle timeout is
# written forward once a minute has passed (a staff session's: thirty seconds).
_SESSION_QUERY = (
    "SELECT s.id, s.expires_at, s.ends_at, s.patron_id, p.locale, p.born_on, p.jurisdiction, "
    "p.consent_version, "
    "p.shares_with_guardians, EXISTS (SELECT 1 FROM guardian_link g "
    "WHERE g.guardian_id = s.patron_id AND g.ended_at IS NULL) AS is_guardian "
    "FROM portal_session s JOIN patron p ON p.id = s.patron_id WHERE s.token_lookup = ?"
)
SESSIONS = SlidingSessions(
    PortalSession, KeyPurpose.SESSION, "patron_id", _SESSION_QUERY, renew_after=timedelta(minutes=1)
)


class PatronError(DomainError):
    """A PatronCode: card_format, card_exists, card_unknown, setup_code_invalid, …"""


@dataclass(frozen=True)
class NewPatron:
    patron_id: int
    setup_code: str
    expires_at: datetime


def card_lookup(secret: str, card_number: str) -> str:
    card = normalise_card(card_number)
    if card is None:
        raise PatronError(PatronCode.CARD_FORMAT)
    return keyed_hash(secret, KeyPurpose.CARD, card)


def patron_reference(secret: str, card: str) -> str:
    """What connected systems are told a patron is: HMAC-SHA256 of the normalised card under
    the patron reference key (portal.credentials.policy.reference_key), so that a library
    system computing it from its own cards holds that key only, never the portal's secret."""
    return keyed_hash(secret, KeyPurpose.PATRON_REFERENCE, card)


async def create_patron(
    secret: str,
    card_number: str,
    *,
    now: datetime,
    setup_code_hours: int,
    born_on: date | None = None,
    jurisdiction: str | None = None,
) -> NewPatron:
    async with in_transaction():
        patron_id = await register_card(
            secret, card_number, now=now, born_on=born_on, jurisdiction=jurisdiction
        )
        code, expires_at = await SETUP_CODES.issue(
            secret, patron_id, now=now, hours=setup_code_hours
        )
    return NewPatron(patron_id, code, expires_at)


async def register_card(
    secret: str,
    card_number: str,
    *,
    now: datetime,
    born_on: date | None = None,
    locale: str | None = None,
    jurisdiction: str | None = None,
) -> int:
    """A new account with every optional service off (no consent exists until the patron
    gives one) and no PIN; CARD_EXISTS, and nothing created, when the card is known."""
    card = normalise_card(card_number)
    if card is None:
        raise PatronError(PatronCode.CARD_FORMAT)
    lookup = keyed_hash(secret, KeyPurpose.CARD, card)
    try:
        async with in_transaction():
            patron = await Patron.create(
                card_lookup=lookup,
                reference=patron_reference(secret, card),
                born_on=born_on,
                locale=locale,
                jurisdiction=jurisdiction,
                created_at=now,
            )
    except IntegrityError:
        raise PatronError(PatronCode.CARD_EXISTS) from None
    return patron.id


async def issue_setup_code_for(
    secret: str, patron_id: int, *, now: datetime, setup_code_hours: int
) -> NewPatron:
    """A fresh one-time code for the patron (a printed setup slip); earlier codes stop
    working."""
    async with in_transaction():
        await Patron.get(id=patron_id)
        await SETUP_CODES.revoke(patron_id)
        code, expires_at = await SETUP_CODES.issue(
            secret, patron_id, now=now, hours=setup_code_hours
        )
    return NewPatron(patron_id, code, expires_at)


async def set_first_pin(patron_id: int, pin_hash: str) -> bool:
    """A PIN chosen on the desk's handed-over screen, for a card that has none (new, or just
    reset); False, and nothing changed, when it has one. Setup codes and sessions end.
    Call inside the caller's transaction."""
    changed: int = await Patron.filter(id=patron_id, pin_hash__isnull=True).update(
        pin_hash=pin_hash
    )
    if changed:
        await SETUP_CODES.revoke(patron_id)
        await SESSIONS.end_all(patron_id)
    return bool(changed)


async def clear_pin(patron_id: int, *, now: datetime) -> None:
    """Staff reset a forgotten or exposed PIN: it stops working, every session of the patron
    ends, and so do unused setup codes. The patron chooses the next one, and is told of the
    reset when they next sign in (someone else may have asked for it)."""
    async with in_transaction():
        await Patron.filter(id=patron_id).update(pin_hash=None, pin_reset_at=now)
        await SETUP_CODES.revoke(patron_id)
        await SESSIONS.end_all(patron_id)


async def pin_reset_notice(patron_id: int) -> datetime | None:
    """When staff reset the patron's PIN, until the patron has dismissed the notice."""
    patron = await Patron.get_or_none(id=patron_id).only("id", "pin_reset_at")
    return patron.pin_reset_at if patron else None


async def dismiss_pin_reset_notice(patron_id: int) -> None:
    await Patron.filter(id=patron_id).update(pin_reset_at=None)


async def issue_setup_code(
    secret: str, card_number: str, *, now: datetime, setup_code_hours: int
) -> NewPatron:
    """A fresh code for a patron who forgot their PIN or never used the first code."""
    patron = await Patron.get_or_none(card_lookup=card_lookup(secret, card_number))
    if patron is None:
        raise PatronError(PatronCode.CARD_UNKNOWN)
    async with in_transaction():
        await SETUP_CODES.revoke(patron.id)
        code, expires_at = await SETUP_CODES.issue(
            secret, patron.id, now=now, hours=setup_code_hours
        )
    return NewPatron(patron.id, code, expires_at)


async def set_pin_with_code(
    secret: str, card_number: str, code: str, pin: str, *, now: datetime
) -> int:
    check_new_pin(pin)
    lookup = card_lookup(secret, card_number)
    pin_hash = await hash_secret(pin)
    async with in_transaction():
        # One-time: the code is gone as soon as it has been used.
        patron_id = await SETUP_CODES.claim(secret, code, now=now, patron__card_lookup=lookup)
        if patron_id is None:
            raise PatronError(PatronCode.SETUP_CODE_INVALID)
        await Patron.filter(id=patron_id).update(pin_hash=pin_hash)
        await SESSIONS.end_all(patron_id)
        # The patron proved the card is theirs: its wrong PINs, and a hold, are forgotten.
        await throttle.clear_card(
            secret,
            throttle.subject_key(secret, throttle.Guessing.SIGNIN, guess_subject(card_number)),
        )
    return patron_id


async def authenticate(secret: str, card_number: str, pin: str) -> int:
    """The patron's id, or PatronError('signin_failed') whatever was wrong."""
    try:
        lookup = card_lookup(secret, card_number)
    except PatronError:
        lookup = None
    patron = await Patron.get_or_none(card_lookup=lookup) if lookup else None
    if not await verify_secret(patron.pin_hash if patron else None, pin) or patron is None:
        raise PatronError(PatronCode.SIGNIN_FAILED)
    return patron.id


async def card_known(secret: str, card_number: str) -> bool:
    """Whether the card is one the portal has an account for (made at the desk, imported,
    or on an earlier sign-in through the library system)."""
    try:
        lookup = card_lookup(secret, card_number)
    except PatronError:
        return False
    return await Patron.exists(card_lookup=lookup)


async def note_signin_hold(secret: str, card_number: str, *, now: datetime) -> None:
    """Sign-in with the card is held after too many wrong PINs: its patron, if it is a card
    the portal knows, finds when in their record."""
    try:
        lookup = card_lookup(secret, card_number)
    except PatronError:
        return
    await Patron.filter(card_lookup=lookup).update(signin_held_at=now)


async def signin_held_at(patron_id: int) -> datetime | None:
    """When sign-in with the patron's card was last held after too many wrong PINs."""
    patron = await Patron.get_or_none(id=patron_id).only("id", "signin_held_at")
    return patron.signin_held_at if patron else None


async def start_session(
    secret: str, patron_id: int, *, now: datetime, minutes: int, hours: int
) -> str:
    """A session that ends after `minutes` idle, and after `hours` however active."""
    return await SESSIONS.start(secret, patron_id, now=now, minutes=minutes, hours=hours)


@dataclass(frozen=True)
class Identity:
    """Who a request comes from: the patron and what every page needs to know of them."""

    patron_id: int
    locale: str | None
    born_on: date | None = None
    jurisdiction: str | None = None
    shares_with_guardians: bool = False
    is_guardian: bool = False
    consent_version: int = 0


async def session_identity(
    secret: str, token: str, *, now: datetime, minutes: int
) -> Identity | None:
    """The signed-in patron, sliding the idle timeout forward."""
    session = await SESSIONS.find(secret, token, now=now, minutes=minutes)
    if session is None:
        return None
    born_on = session["born_on"]
    return Identity(
        patron_id=session["patron_id"],
        locale=session["locale"],
        born_on=date.fromisoformat(born_on) if isinstance(born_on, str) else born_on,
        jurisdiction=session["jurisdiction"],
        shares_with_guardians=bool(session["shares_with_guardians"]),
        is_guardian=bool(session["is_guardian"]),
        consent_version=session["consent_version"],
    )


async def end_session(secret: str, token: str) -> None:
    await SESSIONS.end(secret, token)


async def purge_expired_sessions(now: datetime, progress: Progress = no_progress) -> int:
    sessions = await SESSIONS.purge_expired(now, progress)
    return sessions + await SETUP_CODES.purge_expired(now, progress)


async def set_locale(patron_id: int, locale: str) -> None:
    await Patron.filter(id=patron_id).update(locale=locale)


async def set_sharing(patron_id: int, *, shares: bool) -> None:
    await Patron.filter(id=patron_id).update(shares_with_guardians=shares)


async def consent_changed(patron_id: int) -> None:
    """Call in the transaction that changes a consent state of the patron."""
    await Patron.filter(id=patron_id).update(consent_version=F("consent_version") + 1)


async def consents_changed(patron_ids: list[int]) -> None:
    """`consent_changed` for a batch of patrons, in one statement (a job's batch)."""
    await Patron.filter(id__in=patron_ids).update(consent_version=F("consent_version") + 1)


async def lock_patrons(patron_ids: list[int]) -> list[int]:
    """`lock_patron` for a batch of patrons, lowest id first: two jobs' batches never wait
    on each other in a circle, and a decision takes one patron's lock only. Returns the
    patrons that exist."""
    # Whole rows: Tortoise drops FOR UPDATE from a `.values()` query, which would lock none.
    locked = await Patron.filter(id__in=patron_ids).order_by("id").select_for_update()
    return [patron.id for patron in locked]


async def lock_patron(patron_id: int) -> Patron | None:
    """Take the patron's row lock: every change to what a patron consented to or what is
    kept for them takes it first, so they never interleave. Call inside a transaction."""
    patron: Patron | None = await Patron.filter(id=patron_id).select_for_update().first()
    return patron


async def patron_for_card(secret: str, card_number: str) -> int:
    patron = await Patron.get_or_none(card_lookup=card_lookup(secret, card_number))
    if patron is None:
        raise PatronError(PatronCode.CARD_UNKNOWN)
    return patron.id


async def demo_patron(
    secret: str, card_number: str, *, now: datetime, setup_code_hours: int
) -> NewPatron | None:
    """Development mode's demo patron: made once, a new setup code while its PIN is unset;
    None once it has one."""
    existing = await has_pin(secret, card_number)
    if existing:
        return None
    make = issue_setup_code if existing is False else create_patron
    return await make(secret, card_number, now=now, setup_code_hours=setup_code_hours)


async def has_pin(secret: str, card_number: str) -> bool | None:
    """Whether the card's patron has set a PIN; None when there is no such card."""
    patron = await Patron.get_or_none(card_lookup=card_lookup(secret, card_number))
    return None if patron is None else patron.pin_hash is not None
