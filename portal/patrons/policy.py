"""Rules for cards and PINs. Card numbers are never stored: a keyed hash stands in for them."""

from __future__ import annotations

import re
import secrets

from portal.errors import DomainError, PatronCode

PIN_MIN, PIN_MAX = 4, 12
CARD_MIN, CARD_MAX = 5, 20
_CARD = re.compile(rf"^[0-9A-Z]{{{CARD_MIN},{CARD_MAX}}}$")


class PinRejected(DomainError):
    """pin_format or pin_guessable."""


def normalise_card(raw: str) -> str | None:
    """Cards are printed with spaces or dashes; patrons type them either way."""
    card = re.sub(r"[\s-]", "", raw).upper()
    return card if _CARD.match(card) else None


def guess_subject(raw: str) -> str:
    """What guesses at a card (or a name typed like one) are counted under, so that the ways
    of typing one card share one count (portal.credentials.throttle)."""
    return normalise_card(raw) or raw


def new_setup_code() -> str:
    """A one-time PIN setup code: twelve random digits, grouped in fours because grouped
    digits are easy to read aloud and to type on a phone."""
    digits = f"{secrets.randbelow(10**12):012d}"
    return f"{digits[:4]}-{digits[4:8]}-{digits[8:]}"


def check_new_pin(pin: str) -> None:
    if not pin.isdigit() or not PIN_MIN <= len(pin) <= PIN_MAX:
        raise PinRejected(PatronCode.PIN_FORMAT)
    if len(set(pin)) == 1 or pin in "01234567890123" or pin in "98765432109876":
        raise PinRejected(PatronCode.PIN_GUESSABLE)
