"""Accounts, PINs and sign-in sessions. Staff create a card; only the patron sets its PIN."""

from __future__ import annotations

import asyncio
import secrets
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from tortoise.exceptions import IntegrityError
from tortoise.expressions import F
from tortoise.transactions import in_transaction

from portal.db import as_datetime, as_optional_datetime, fetch_rows
from portal.errors import DomainError, PatronCode
from portal.patrons.models import Patron, PinSetupCode, PortalSession
from portal.patrons.policy import check_new_pin, keyed_hash, new_setup_code, normalise_card

T = TypeVar("T")
_hasher = PasswordHasher()
# Each Argon2 hash takes 64 MiB and a core's worth of time: a burst of sign-ins waits its
# turn rather than exhausting the server's memory. Per process, one set per event loop.
ARGON2_AT_ONCE = 2
_argon2_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


async def _argon2(work: Callable[..., T], *args: str) -> T:
    loop = asyncio.get_running_loop()
    slots = _argon2_slots.setdefault(loop, asyncio.Semaphore(ARGON2_AT_ONCE))
    async with slots:
        return await asyncio.to_thread(work, *args)


# Verified against when the card is unknown, so a wrong card costs as long as a wrong PIN.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(8))


async def hash_secret(value: str) -> str:
    """An Argon2 hash of a PIN or a staff password, within the process's Argon2 slots."""
    return await _argon2(_hasher.hash, value)


async def verify_secret(stored: str | None, value: str) -> bool:
    """Whether `value` matches; an absent hash costs as long as a wrong one."""
    try:
        await _argon2(_hasher.verify, stored or _DUMMY_HASH, value)
    except (VerificationError, InvalidHashError):
        return False
    return stored is not None


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
    return keyed_hash(secret, "card", card)


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
        patron = await Patron.get(id=patron_id)
        code, expires_at = await _issue_setup_code(secret, patron, now, setup_code_hours)
    return NewPatron(patron.id, code, expires_at)


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
    lookup = card_lookup(secret, card_number)
    try:
        async with in_transaction():
            patron = await Patron.create(
                card_lookup=lookup,
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
        patron = await Patron.get(id=patron_id)
        await PinSetupCode.filter(patron_id=patron_id).delete()
        code, expires_at = await _issue_setup_code(secret, patron, now, setup_code_hours)
    return NewPatron(patron_id, code, expires_at)


async def set_first_pin(patron_id: int, pin_hash: str) -> bool:
    """A PIN chosen on the desk's handed-over screen, for a card that has none (new, or just
    reset); False, and nothing changed, when it has one. Setup codes and sessions end.
    Call inside the caller's transaction."""
    changed: int = await Patron.filter(id=patron_id, pin_hash__isnull=True).update(
        pin_hash=pin_hash
    )
    if changed:
        await PinSetupCode.filter(patron_id=patron_id).delete()
        await PortalSession.filter(patron_id=patron_id).delete()
    return bool(changed)


async def clear_pin(patron_id: int) -> None:
    """Staff reset a forgotten or exposed PIN: it stops working, every session of the patron
    ends, and so do unused setup codes. The patron chooses the next one."""
    async with in_transaction():
        await Patron.filter(id=patron_id).update(pin_hash=None)
        await PinSetupCode.filter(patron_id=patron_id).delete()
        await PortalSession.filter(patron_id=patron_id).delete()


async def issue_setup_code(
    secret: str, card_number: str, *, now: datetime, setup_code_hours: int
) -> NewPatron:
    """A fresh code for a patron who forgot their PIN or never used the first code."""
    patron = await Patron.get_or_none(card_lookup=card_lookup(secret, card_number))
    if patron is None:
        raise PatronError(PatronCode.CARD_UNKNOWN)
    async with in_transaction():
        await PinSetupCode.filter(patron_id=patron.id).delete()
        code, expires_at = await _issue_setup_code(secret, patron, now, setup_code_hours)
    return NewPatron(patron.id, code, expires_at)


async def _issue_setup_code(
    secret: str, patron: Patron, now: datetime, hours: int
) -> tuple[str, datetime]:
    code = new_setup_code()
    expires_at = now + timedelta(hours=hours)
    await PinSetupCode.create(
        patron=patron, code_lookup=keyed_hash(secret, "setup", code), expires_at=expires_at
    )
    return code, expires_at


async def set_pin_with_code(
    secret: str, card_number: str, code: str, pin: str, *, now: datetime
) -> int:
    check_new_pin(pin)
    lookup = card_lookup(secret, card_number)
    pin_hash = await _argon2(_hasher.hash, pin)
    async with in_transaction():
        setup = (
            await PinSetupCode.filter(
                code_lookup=keyed_hash(secret, "setup", code.strip()),
                patron__card_lookup=lookup,
            )
            .select_for_update()
            .first()
        )
        if setup is None or setup.expires_at <= now:
            raise PatronError(PatronCode.SETUP_CODE_INVALID)
        await Patron.filter(id=setup.patron_id).update(pin_hash=pin_hash)
        # One-time: the code is gone as soon as it has been used.
        await PinSetupCode.filter(patron_id=setup.patron_id).delete()
        await PortalSession.filter(patron_id=setup.patron_id).delete()
    return setup.patron_id


async def authenticate(secret: str, card_number: str, pin: str) -> int:
    """The patron's id, or PatronError('signin_failed') whatever was wrong."""
    try:
        lookup = card_lookup(secret, card_number)
    except PatronError:
        lookup = None
    patron = await Patron.get_or_none(card_lookup=lookup) if lookup else None
    stored = patron.pin_hash if patron and patron.pin_hash else _DUMMY_HASH
    try:
        await _argon2(_hasher.verify, stored, pin)
    except (VerificationError, InvalidHashError):
        raise PatronError(PatronCode.SIGNIN_FAILED) from None
    if patron is None or patron.pin_hash is None:
        raise PatronError(PatronCode.SIGNIN_FAILED)
    return patron.id


async def start_session(
    secret: str, patron_id: int, *, now: datetime, minutes: int, hours: int
) -> str:
    """A session that ends after `minutes` idle, and after `hours` however active."""
    token = secrets.token_urlsafe(32)
    await PortalSession.create(
        token_lookup=keyed_hash(secret, "session", token),
        patron_id=patron_id,
        expires_at=now + timedelta(minutes=minutes),
        ends_at=now + timedelta(hours=hours),
    )
    return token


# Every page reads the session: one indexed query, identity only.
_SESSION_QUERY = (
    "SELECT s.id, s.expires_at, s.ends_at, s.patron_id, p.locale, p.born_on, p.jurisdiction, "
    "p.consent_version, "
    "p.shares_with_guardians, EXISTS (SELECT 1 FROM guardian_link g "
    "WHERE g.guardian_id = s.patron_id AND g.ended_at IS NULL) AS is_guardian "
    "FROM portal_session s JOIN patron p ON p.id = s.patron_id WHERE s.token_lookup = ?"
)


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
    rows = await fetch_rows(_SESSION_QUERY, keyed_hash(secret, "session", token))
    if not rows:
        return None
    session = rows[0]
    expires_at = as_datetime(session["expires_at"])
    ends_at = as_optional_datetime(session["ends_at"]) or expires_at
    if expires_at <= now or ends_at <= now:
        await PortalSession.filter(id=session["id"]).delete()
        return None
    renewed = min(now + timedelta(minutes=minutes), ends_at)
    # Only write when a noticeable part of the timeout has passed, keeping reads cheap.
    if renewed - expires_at > timedelta(minutes=1):
        await PortalSession.filter(id=session["id"]).update(expires_at=renewed)
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
    await PortalSession.filter(token_lookup=keyed_hash(secret, "session", token)).delete()


async def purge_expired_sessions(now: datetime) -> int:
    deleted: int = await PortalSession.filter(expires_at__lte=now).delete()
    expired_codes: int = await PinSetupCode.filter(expires_at__lte=now).delete()
    return deleted + expired_codes


async def set_locale(patron_id: int, locale: str) -> None:
    await Patron.filter(id=patron_id).update(locale=locale)


async def set_sharing(patron_id: int, *, shares: bool) -> None:
    await Patron.filter(id=patron_id).update(shares_with_guardians=shares)


async def consent_changed(patron_id: int) -> None:
    """Call in the transaction that changes a consent state of the patron."""
    await Patron.filter(id=patron_id).update(consent_version=F("consent_version") + 1)


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
