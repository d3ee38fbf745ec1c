"""The register of outside requests (law enforcement, courts, other agencies): recorded and
decided by the privacy officer, with the card rules enforced here (no card number in free
text; a named card kept only as a keyed hash), and its yearly transparency summary."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from tortoise.transactions import in_transaction

from portal.credentials.policy import KeyPurpose, keyed_hash
from portal.db import fetch_rows
from portal.errors import DomainError, OfficerCode
from portal.officer.models import OutsideRequest
from portal.officer.policy import (
    Cell,
    RequestDecision,
    card_candidates,
    transparency_rows,
)
from portal.patrons.models import Patron
from portal.patrons.policy import normalise_card
from portal.staff import audit
from portal.staff.policy import AuditAction
from portal.staff.services import StaffIdentity


@dataclass(frozen=True)
class NewOutsideRequest:
    received_on: date
    requesting_body: str
    body_name: str
    instrument: str
    reference: str
    asked: str
    decision: str
    disclosed: str
    card: str = ""  # the card the instrument names, as typed: kept only as a keyed hash
    entry_key: str | None = None  # the form's random key (forms.new_entry_key)


@dataclass(frozen=True)
class OutsideRequestView:
    id: int
    received_on: date
    requesting_body: str
    body_name: str
    instrument: str
    reference: str
    asked: str
    decision: str
    disclosed: str
    patron_key: str | None
    handled_by: str
    recorded_at: datetime


_INSERT_REQUEST = (
    "INSERT INTO outside_request (received_on, requesting_body, body_name, instrument, "
    "reference, asked, decision, disclosed, patron_key, handled_by_id, handled_by_name, "
    "recorded_at, entry_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (entry_key) DO NOTHING RETURNING id"
)


def _entry_key(new: NewOutsideRequest, patron_key: str | None) -> str | None:
    """The form's key and what was sent with it: the same form sent twice records once, and
    a form sent again after a change (Back, an edit, send) is a request of its own."""
    if new.entry_key is None:
        return None
    sent = [new.entry_key, new.received_on.isoformat(), new.requesting_body, new.body_name]
    sent += [new.instrument, new.reference, new.asked, new.decision, new.disclosed]
    sent += [patron_key or ""]
    return hashlib.sha256(json.dumps(sent).encode()).hexdigest()


async def _patron_reference(secret: str, card: str) -> str | None:
    """The patron the instrument names, as the audit trail's keyed hash; a card the portal
    does not know is kept as a keyed hash of the card itself. Never the number."""
    normalised = normalise_card(card) if card else None
    if normalised is None:
        return None
    patron = await Patron.get_or_none(card_lookup=keyed_hash(secret, KeyPurpose.CARD, normalised))
    if patron is not None:
        return audit.patron_key(secret, patron.id)
    return keyed_hash(secret, KeyPurpose.OUTSIDE_REQUEST_CARD, normalised)


async def record_outside_request(
    secret: str, new: NewOutsideRequest, staff: StaffIdentity, *, now: datetime
) -> int | None:
    """The new entry's id, recorded with its audit entry in one transaction; None if this
    form was recorded already. A unique key decides, so two sends at once record one.
    CARD_IN_TEXT, and nothing recorded, when a patron's card number is in the free text:
    the register keeps the card named only as a keyed hash, whoever records it."""
    await refuse_card_numbers(secret, new.body_name, new.reference, new.asked, new.disclosed)
    patron_key = await _patron_reference(secret, new.card)
    async with in_transaction():
        rows = await fetch_rows(
            _INSERT_REQUEST,
            new.received_on,
            new.requesting_body,
            new.body_name,
            new.instrument,
            new.reference,
            new.asked,
            new.decision,
            new.disclosed,
            patron_key,
            staff.staff_id,
            staff.display_name,
            now,
            _entry_key(new, patron_key),
        )
        if not rows:
            return None
        request_id: int = rows[0]["id"]
        await audit.append(
            staff,
            AuditAction.OUTSIDE_REQUEST_RECORDED,
            now=now,
            patron_key=patron_key,
            detail={"request": request_id},
        )
    return request_id


_LOOKUPS_PER_QUERY = 500


async def refuse_card_numbers(secret: str, *texts: str) -> None:
    """Raises CARD_IN_TEXT if any of the texts holds the number of a patron's card, which
    the register keeps only as a coded reference (in its own field)."""
    if await names_a_card(secret, texts):
        raise DomainError(OfficerCode.CARD_IN_TEXT)


async def names_a_card(secret: str, texts: Iterable[str]) -> bool:
    """Whether any of the texts holds the number of a patron's card. Only the cards the
    portal knows can be told apart from other references; every word that could be one is
    looked up, in a query per _LOOKUPS_PER_QUERY of them."""
    lookups = sorted(
        {
            keyed_hash(secret, KeyPurpose.CARD, candidate)
            for text in texts
            for candidate in card_candidates(text)
        }
    )
    for start in range(0, len(lookups), _LOOKUPS_PER_QUERY):
        if await Patron.filter(
            card_lookup__in=lookups[start : start + _LOOKUPS_PER_QUERY]
        ).exists():
            return True
    return False


class Decided(StrEnum):
    NOW = "now"
    ALREADY = "already"  # a double submit, or another officer first: nothing changes
    UNKNOWN = "unknown"


async def decide_outside_request(
    secret: str,
    request_id: int,
    decision: str,
    disclosed: str,
    staff: StaffIdentity,
    *,
    now: datetime,
) -> Decided:
    """A pending request decided later: its decision and what was disclosed, and in the
    same transaction the staff audit entry of who decided it and when. Only a pending
    request is decided, in one update, so that a decision is never silently replaced.
    CARD_IN_TEXT, and nothing decided, when a patron's card number is in what was disclosed."""
    await refuse_card_numbers(secret, disclosed)
    async with in_transaction():
        updated: int = await OutsideRequest.filter(
            id=request_id, decision=RequestDecision.PENDING
        ).update(decision=decision, disclosed=disclosed)
        if updated:
            await audit.append(
                staff,
                AuditAction.OUTSIDE_REQUEST_DECIDED,
                now=now,
                detail={"request": request_id, "decision": decision},
            )
            return Decided.NOW
    return Decided.ALREADY if await OutsideRequest.exists(id=request_id) else Decided.UNKNOWN


async def outside_requests(year: int | None = None) -> list[OutsideRequestView]:
    query = OutsideRequest.all()
    if year is not None:
        query = query.filter(
            received_on__gte=date(year, 1, 1), received_on__lt=date(year + 1, 1, 1)
        )
    return [
        OutsideRequestView(
            row.id,
            row.received_on,
            row.requesting_body,
            row.body_name,
            row.instrument,
            row.reference,
            row.asked,
            row.decision,
            row.disclosed,
            row.patron_key,
            row.handled_by_name,
            row.recorded_at,
        )
        for row in await query.order_by("-received_on", "-id")
    ]


async def transparency_summary(year: int) -> list[tuple[str, tuple[Cell, ...], Cell]]:
    """Per requesting body, the year's requests by decision (small cells suppressed)."""
    counts: Counter[tuple[str, str]] = Counter(
        (row.requesting_body, row.decision) for row in await outside_requests(year)
    )
    return transparency_rows(dict(counts))
