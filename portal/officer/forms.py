"""Parsing the privacy officer's forms: the register of outside requests, and the catalog
file. What a value means is the policy's; what is missing or malformed is refused here."""

from __future__ import annotations

import secrets
import string
import unicodedata
from dataclasses import dataclass
from datetime import date

from starlette.datastructures import FormData, UploadFile

from portal.errors import DomainError, OfficerCode
from portal.officer.policy import Instrument, RequestDecision, RequestingBody
from portal.web.requests import field

LONG_TEXT = 4000
CATALOG_BYTES = 900 * 1024
ENTRY_KEY_BYTES = 18
ENTRY_KEY_LENGTH = 24  # base64 of 18 bytes
_URLSAFE = frozenset(string.ascii_letters + string.digits + "-_")


def long_text(form: FormData, name: str) -> str:
    """A multi-line field: lines kept, other control characters dropped, bounded."""
    value = form.get(name)
    if not isinstance(value, str):
        return ""
    kept = "".join(
        char
        for char in value.replace("\r\n", "\n")
        if char == "\n" or unicodedata.category(char) not in ("Cc", "Cs")
    )
    return kept.strip()[:LONG_TEXT]


@dataclass(frozen=True)
class OutsideRequestForm:
    received_on: date
    requesting_body: str
    body_name: str
    instrument: str
    reference: str
    asked: str
    decision: str
    disclosed: str
    card: str  # as typed: only ever turned into a keyed hash
    entry_key: str | None  # the form's own key (new_entry_key), None if it came without one


def parse_outside_request(form: FormData, *, today: date) -> OutsideRequestForm:
    try:
        received_on = date.fromisoformat(field(form, "received_on"))
    except ValueError:
        raise DomainError(OfficerCode.REQUEST_INCOMPLETE) from None
    body, instrument, decision = (
        field(form, "requesting_body"),
        field(form, "instrument"),
        field(form, "decision"),
    )
    parsed = OutsideRequestForm(
        received_on=received_on,
        requesting_body=body,
        body_name=field(form, "body_name"),
        instrument=instrument,
        reference=field(form, "reference"),
        asked=long_text(form, "asked"),
        decision=decision,
        disclosed=long_text(form, "disclosed"),
        card=field(form, "card"),
        entry_key=entry_key(form),
    )
    if (
        not date(1990, 1, 1) <= received_on <= today
        or body not in set(RequestingBody)
        or instrument not in set(Instrument)
        or decision not in set(RequestDecision)
        or not parsed.body_name
        or not parsed.reference
        or not parsed.asked
    ):
        raise DomainError(OfficerCode.REQUEST_INCOMPLETE)
    return parsed


REQUEST_FIELDS = (
    "received_on",
    "requesting_body",
    "body_name",
    "instrument",
    "reference",
    "asked",
    "card",
    "decision",
    "disclosed",
)


def typed_request(form: FormData) -> dict[str, str]:
    """What the officer typed into the register's form, to show again when it is refused:
    nothing they typed is lost to a missing field."""
    return {name: long_text(form, name) for name in REQUEST_FIELDS}


def new_entry_key() -> str:
    """A key for one showing of the register's form, kept with the request it records."""
    return secrets.token_urlsafe(ENTRY_KEY_BYTES)


def entry_key(form: FormData) -> str | None:
    """The form's key, if it has the shape new_entry_key gives. A form without one (a page
    shown before keys existed) is still recorded: only the double-submit guard is lost."""
    value = field(form, "entry")
    if len(value) == ENTRY_KEY_LENGTH and set(value) <= _URLSAFE:
        return value
    return None


def parse_decision(form: FormData) -> tuple[str, str]:
    decision = field(form, "decision")
    if decision not in set(RequestDecision):
        raise DomainError(OfficerCode.REQUEST_INCOMPLETE)
    return decision, long_text(form, "disclosed")


async def catalog_file(form: FormData) -> str:
    """The uploaded catalog as text (UTF-8), or refused."""
    upload = form.get("catalog")
    if not isinstance(upload, UploadFile):
        raise DomainError(OfficerCode.CATALOG_FILE_MISSING)
    data = await upload.read(CATALOG_BYTES + 1)
    if not data or len(data) > CATALOG_BYTES:
        raise DomainError(OfficerCode.CATALOG_FILE_MISSING)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DomainError(OfficerCode.CATALOG_FILE_MISSING) from None
