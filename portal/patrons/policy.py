"""Rules for cards and PINs. Card numbers are never stored: a keyed hash stands in for them."""

from __future__ import annotations

import hashlib
import hmac
import re

PIN_MIN, PIN_MAX = 4, 12
_CARD = re.compile(r"^[0-9A-Z]{5,20}$")


class PinRejected(ValueError):
    """pin_format or pin_guessable (policy stays free of other portal imports)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


def normalise_card(raw: str) -> str | None:
    """Cards are printed with spaces or dashes; patrons type them either way."""
    card = re.sub(r"[\s-]", "", raw).upper()
    return card if _CARD.match(card) else None


def keyed_hash(secret: str, purpose: str, value: str) -> str:
    # The purpose separates hashes of the same value used for different things.
    return hmac.new(secret.encode(), f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def check_new_pin(pin: str) -> None:
    if not pin.isdigit() or not PIN_MIN <= len(pin) <= PIN_MAX:
        raise PinRejected("pin_format")
    if len(set(pin)) == 1 or pin in "01234567890123" or pin in "98765432109876":
        raise PinRejected("pin_guessable")
