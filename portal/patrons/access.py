"""Who is signed in as a patron, and where they stand in the age rules today: what a
patron's page asks of its request. The session itself is found once per request by
`visitor` (handed to portal.web.visit.VisitMiddleware by the app)."""

from __future__ import annotations

import asyncio

from starlette.exceptions import HTTPException
from starlette.requests import Request

from portal import i18n
from portal.catalog.jurisdiction import AgeBand, AgeContext
from portal.catalog.services import age_today
from portal.clock import utcnow
from portal.credentials import throttle
from portal.errors import PatronCode
from portal.patrons.policy import guess_subject
from portal.patrons.services import Identity, card_known, note_signin_hold, session_identity
from portal.settings import Settings
from portal.sip2.client import Sip2Client
from portal.web.requests import settings_of
from portal.web.visit import Visitor


async def visitor(settings: Settings, token: str) -> Visitor | None:
    """The patron a session cookie belongs to, sliding its idle timeout; a child below the
    guardian-consent age reads every page in the child's register (the same age rule that
    shows them a privacy notice's child version)."""
    now = utcnow()
    patron = await session_identity(
        settings.secret_key, token, now=now, minutes=settings.session_minutes
    )
    if patron is None:
        return None
    age = await age_today(patron.born_on, patron.jurisdiction, now=now, timezone=settings.timezone)
    register = i18n.CHILD if age.band is AgeBand.CHILD else None
    return Visitor(patron, patron.locale, register)


def signed_in_patron(request: Request) -> Identity | None:
    patron: Identity | None = request.state.patron
    return patron


def library_system(request: Request) -> Sip2Client | None:
    """The library system's SIP2 connections when it checks cards and PINs, else None."""
    ils: Sip2Client | None = request.app.state.ils
    return ils


def require_patron(request: Request) -> Identity:
    patron = signed_in_patron(request)
    if patron is None:
        raise HTTPException(status_code=401)
    return patron


async def visitor_age(request: Request, patron: Identity) -> AgeContext:
    """Where the signed-in patron stands in the age rules today, in the library's time zone."""
    return await age_today(
        patron.born_on, patron.jurisdiction, now=utcnow(), timezone=settings_of(request).timezone
    )


async def count_guess(
    request: Request, guessing: throttle.Guessing, subject: str
) -> throttle.Reservation | None:
    """Count a guess at `subject` (a link code's guardian, a staff account, …), normalised as
    its lookup normalises it, before it is checked; None when the subject or the client's
    network is over the limit. Earlier failures slow the check down a little more each time."""
    settings = settings_of(request)
    subject_limit, network = throttle.limits(
        throttle.throttle_keys(settings.secret_key, guessing, subject, _client_host(request)),
        settings.signin_attempts,
        settings.signin_window_seconds,
    )
    return await _reserve((subject_limit,), network)


async def count_network_guess(
    request: Request, guessing: throttle.Guessing
) -> throttle.Reservation | None:
    """Count a guess by the client's network alone: what is guessed at cannot be guessed
    (an API client's 256-bit secret), so only the network that keeps trying is held, never
    the one whose name it tries."""
    settings = settings_of(request)
    _, network = throttle.limits(
        throttle.throttle_keys(settings.secret_key, guessing, "", _client_host(request)),
        settings.signin_attempts,
        settings.signin_window_seconds,
    )
    return await _reserve((), network)


async def count_pin_guess(
    request: Request, card: str, *, setup_code: bool = False
) -> throttle.Reservation | None:
    """Count a guess at a card's PIN (or, with `setup_code`, at its one-time setup code)
    before it is checked, whoever checks it (the portal, or the library system over SIP2):
    the card's window, its day's budget and, for a PIN, its budget before a hold
    (portal.credentials.throttle), then the client's network, which a known card with a
    clean record passes even when it is held. A setup code (twelve digits) is no PIN guess:
    a held card's patron uses theirs to lift the hold, so the hold does not gate it."""
    settings = settings_of(request)
    window, day, hold = throttle.pin_limits(
        settings.secret_key,
        guess_subject(card),
        attempts=settings.signin_attempts,
        window_seconds=settings.signin_window_seconds,
        per_day=settings.pin_guesses_per_day,
        before_hold=settings.pin_guesses_before_hold,
    )
    _, network = throttle.limits(
        throttle.throttle_keys(
            settings.secret_key, throttle.Guessing.SIGNIN, "", _client_host(request)
        ),
        settings.signin_attempts,
        settings.signin_window_seconds,
    )
    known = await card_known(settings.secret_key, card)
    card_limits = (window,) if setup_code else (window, day, hold)
    return await _reserve(card_limits, network, known=known)


async def pin_guess_failed(request: Request, card: str, reservation: throttle.Reservation) -> None:
    """After a wrong PIN: when it was the last the card's budget allowed, the card is held
    from now on, and its patron (if the card is theirs) finds that in their record."""
    if reservation.last_before_hold:
        await note_signin_hold(settings_of(request).secret_key, card, now=utcnow())


async def refusal(request: Request, card: str) -> PatronCode:
    """Why a guess at the card was refused: its hold (only the patron's setup code or the
    desk lifts it), its day's budget, or a wait (the card's window, or its network's)."""
    settings = settings_of(request)
    limits = throttle.pin_limits(
        settings.secret_key,
        guess_subject(card),
        attempts=settings.signin_attempts,
        window_seconds=settings.signin_window_seconds,
        per_day=settings.pin_guesses_per_day,
        before_hold=settings.pin_guesses_before_hold,
    )
    window, day, hold = limits
    if (await throttle.standing((hold,), now=utcnow())).held:
        return PatronCode.SIGNIN_HELD
    if (await throttle.standing((window,), now=utcnow())).waiting:
        return PatronCode.SIGNIN_THROTTLED
    if (await throttle.standing((day,), now=utcnow())).waiting:
        return PatronCode.SIGNIN_DAY_SPENT
    return PatronCode.SIGNIN_THROTTLED


def _client_host(request: Request) -> str | None:
    return request.client.host if request.client else None


async def _reserve(
    card: tuple[throttle.Limit, ...], network: throttle.Limit, *, known: bool = False
) -> throttle.Reservation | None:
    reservation = await throttle.reserve(card, network, now=utcnow(), known=known)
    if reservation is not None:
        await asyncio.sleep(throttle.delay_seconds(reservation.earlier))
    return reservation
