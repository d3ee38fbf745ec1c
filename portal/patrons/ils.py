"""The library system (ILS) as the patrons' identity source (`PORTAL_IDENTITY_SOURCE=sip2`):
sign-in asks it over SIP2 whether a card and PIN are valid (portal.sip2), and the first
sign-in makes the portal account with every optional service off, as an import does. The
PIN is handed to the library system and forgotten: never stored, never logged."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

from portal.errors import PatronCode
from portal.patrons.models import Patron
from portal.patrons.policy import normalise_card
from portal.patrons.services import PatronError, card_lookup, register_card
from portal.settings import Settings
from portal.sip2.client import IlsUnavailable, PatronAnswer, Sip2Client, Sip2Config
from portal.sip2.codec import UnsendableValue


def sip2_config(settings: Settings) -> Sip2Config:
    return Sip2Config(
        host=settings.sip2_host,
        port=settings.sip2_port,
        tls=not settings.sip2_plain_loopback,
        ca_file=settings.sip2_ca_file or None,
        login_user=settings.sip2_login_user,
        login_password=settings.sip2_login_password,
        location=settings.sip2_location,
        institution=settings.sip2_institution,
        terminal_password=settings.sip2_terminal_password,
        use_patron_status=settings.sip2_message == "patron-status",
        encoding=settings.sip2_encoding,
        birth_date_field=settings.sip2_birth_date_field,
        pool_size=settings.sip2_pool_size,
        connect_timeout=settings.sip2_connect_timeout,
        read_timeout=settings.sip2_read_timeout,
    )


def sip2_client(settings: Settings) -> Sip2Client | None:
    """The process's connections to the library system, when it is the identity source."""
    return Sip2Client(sip2_config(settings)) if settings.uses_sip2 else None


class IlsUnreachable(PatronError):
    """ILS_UNAVAILABLE. `asked`: the request may have reached the library system before the
    failure, so a sign-in counts it as a guess (an ILS made to fail on purpose gives no free
    guesses, and its own wrong-PIN count never outruns the portal's)."""

    def __init__(self, *, asked: bool) -> None:
        super().__init__(PatronCode.ILS_UNAVAILABLE)
        self.asked = asked


async def ask(ils: Sip2Client, card: str, pin: str | None) -> PatronAnswer:
    """What the library system says of a card (and its PIN, unless None): IlsUnreachable
    when it cannot be asked or answers nothing usable. Nothing weaker is ever tried. An
    answer about another card (some library systems also find a patron by login name, and
    a stray frame must never pass for the answer) is no patron at all."""
    try:
        answer = await ils.patron(card, pin)
    except IlsUnavailable as failure:
        raise IlsUnreachable(asked=failure.request_sent) from None
    if normalise_card(answer.card or "") != card:
        return replace(answer, valid_patron=False, valid_password=False)
    return answer


async def authenticate_with_ils(
    ils: Sip2Client, secret: str, card_number: str, pin: str, *, now: datetime
) -> int:
    """The patron's id once the library system says the card is valid (`BL` Y) and so is
    the PIN (`CQ` Y); SIGNIN_FAILED for anything else it answers, ILS_UNAVAILABLE when it
    cannot be asked. An empty PIN, or one SIP2 cannot carry, is refused before anything is
    sent: some library systems accept an empty PIN for a patron who has none."""
    card = normalise_card(card_number)
    if card is None or not pin:
        raise PatronError(PatronCode.SIGNIN_FAILED)
    try:
        answer = await ask(ils, card, pin)
    except UnsendableValue:
        raise PatronError(PatronCode.SIGNIN_FAILED) from None
    if not answer.authenticated:
        raise PatronError(PatronCode.SIGNIN_FAILED)
    return await account_for(secret, card, born_on=answer.born_on, now=now)


async def account_for(secret: str, card: str, *, born_on: date | None, now: datetime) -> int:
    """The portal account of a card the library system vouched for, made on the first
    sign-in with every optional service off. A birth date the portal did not know yet is
    taken from the library system; one it knows (recorded at the desk, or imported) stays."""
    lookup = card_lookup(secret, card)
    patron = await Patron.get_or_none(card_lookup=lookup)
    if patron is None:
        try:
            return await register_card(secret, card, now=now, born_on=born_on)
        except PatronError:  # CARD_EXISTS: a parallel first sign-in made it a moment ago
            patron = await Patron.get(card_lookup=lookup)
    if patron.born_on is None and born_on is not None:
        await Patron.filter(id=patron.id, born_on__isnull=True).update(born_on=born_on)
    return patron.id
