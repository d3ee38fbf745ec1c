"""Pure rules of the desk: a reference to the card staff are working on, carried between
desk pages in a form field (never in the URL) and bound to the staff member, so a page can
only act on the card that staff member typed or scanned; and the steps of the screen handed
over to the patron."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from portal.credentials.policy import KeyPurpose, keyed_hash

REF_MINUTES = 30


class Purpose(StrEnum):
    """What a screen is handed over for (stored with the hand-over)."""

    NEW_CARD = "new_card"
    PIN_RESET = "pin_reset"


PURPOSES = {"n": Purpose.NEW_CARD, "r": Purpose.PIN_RESET}


@dataclass(frozen=True)
class CardRef:
    patron_id: int
    guardian_id: int | None = None
    guardian_is_new: bool = False
    # What the page that made the reference lets staff do next: hand over a new card, hand
    # over after a PIN reset, or neither (a look-up).
    purpose: Purpose | None = None
    # The card's sign-in throttle key (a keyed hash), so staff can unlock it without the
    # card number travelling in the page.
    throttle_key: str = ""


def make_ref(secret: str, staff_id: int, card: CardRef, *, now: datetime) -> str:
    until = int((now + timedelta(minutes=REF_MINUTES)).timestamp())
    purpose = next((code for code, name in PURPOSES.items() if name == card.purpose), "-")
    body = (
        f"{card.patron_id}.{card.guardian_id or 0}.{int(card.guardian_is_new)}."
        f"{card.throttle_key or '-'}.{purpose}.{until}"
    )
    return f"{body}.{keyed_hash(secret, KeyPurpose.DESK_REF, f'{staff_id}:{body}')}"


def read_ref(secret: str, staff_id: int, ref: str, *, now: datetime) -> CardRef | None:
    """The card a reference names, if this staff member made it and it has not expired."""
    parts = ref.split(".")
    # ASCII only: "²" is a digit to isdigit and not to int, and compare_digest needs ASCII.
    if len(parts) != 7 or not ref.isascii():
        return None
    patron, guardian, is_new, key, purpose, until, mac = parts
    if not (patron.isdigit() and guardian.isdigit() and is_new in ("0", "1") and until.isdigit()):
        return None
    body = ".".join(parts[:6])
    expected = keyed_hash(secret, KeyPurpose.DESK_REF, f"{staff_id}:{body}")
    if not hmac.compare_digest(mac, expected) or int(until) < now.timestamp():
        return None
    return CardRef(
        int(patron),
        int(guardian) or None,
        guardian_is_new=is_new == "1",
        purpose=PURPOSES.get(purpose),
        throttle_key="" if key == "-" else key,
    )


class Step(StrEnum):
    """Where the handed-over screen stands (the page shows the step by its value)."""

    PIN = "pin"
    GUARDIAN_PIN = "guardian_pin"
    NOTICE = "notice"
    DONE = "done"


def handover_step(*, pin_set: bool, guardian_needs_pin: bool, position: int, notices: int) -> Step:
    """The step that follows what has happened on the screen: the patron's own PIN first,
    then the PIN of a guardian card made in the same visit, then each notice in turn
    (`position` of them answered or skipped; past the end once the patron decides later)."""
    if not pin_set:
        return Step.PIN
    if guardian_needs_pin:
        return Step.GUARDIAN_PIN
    if position < notices:
        return Step.NOTICE
    return Step.DONE
