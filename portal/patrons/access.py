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
from portal.patrons.services import Identity, session_identity
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
    """Count a guess at `subject` (a card, a link code's guardian, …), normalised as its
    lookup normalises it, before it is checked; None when the subject or the client's network
    is over the limit. Earlier failures slow the check down a little more each time."""
    settings = settings_of(request)
    keys = throttle.throttle_keys(
        settings.secret_key, guessing, subject, request.client.host if request.client else None
    )
    reservation = await throttle.reserve(
        throttle.limits(keys, settings.signin_attempts),
        window_seconds=settings.signin_window_seconds,
        now=utcnow(),
    )
    if reservation is not None:
        await asyncio.sleep(throttle.delay_seconds(reservation.earlier))
    return reservation
