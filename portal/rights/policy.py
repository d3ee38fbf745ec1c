"""What a consent receipt says and what a notice change changed: pure rules. A receipt carries
the ISO/IEC TS 27560 consent-record fields (controller, service, purposes, data categories,
recipients, retention, notice version and hash, language shown, time, method, actor,
channel), in the spirit of the Kantara Consent Receipt v1.1, signed as a JWS elsewhere."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from portal.credentials.policy import KeyPurpose, keyed_hash
from portal.ledger.vocabulary import EventKind

RECEIPT_REFERENCE_LENGTH = 24
_HEX = frozenset("0123456789abcdef")
# Notice revisions are 32-bit integers in the database: a larger one names no version.
MAX_REVISION = 2**31 - 1

RECEIPT_SCHEMA_VERSION = 1
EXPORT_SCHEMA_VERSION = 1
# The JWS "typ" of a receipt, so that no other token the portal signs passes for one.
RECEIPT_TYPE = "consent-receipt+jwt"
RECEIPT_ID_PREFIX = "consent-event-"  # and the ledger event's id
# Decisions, each with a receipt: a yes, a no, a withdrawal, a yes to a changed notice.
DECISIONS = frozenset({EventKind.GIVEN, EventKind.REFUSED, EventKind.WITHDRAWN, EventKind.RENEWED})
# A receipt is a few hundred bytes; anything much larger pasted or uploaded is not one.
MAX_RECEIPT_BYTES = 16 * 1024
# The order n of P-256's group (FIPS 186-5; SEC 2 secp256r1). An ECDSA signature (r, s)
# verifies as (r, n - s) too, so one receipt would have two signed forms: only the one with
# s <= n/2 ("low-S", as Bitcoin's BIP 62 and libsecp256k1 require) is made or accepted.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_HALF_ORDER = P256_ORDER // 2
_SCALAR = 32  # bytes of r and of s in a JWS ES256 signature (RFC 7518 §3.4)


def has_receipt(kind: str) -> bool:
    """Whether a ledger line of this kind (its value, as the record shows it) has a receipt."""
    return kind in DECISIONS


def receipt_reference(secret: str, event_id: int) -> str:
    """How a receipt is addressed in a URL: a keyed hash of its ledger line, so that no
    record number reaches an address bar, a proxy's log or a browser's history (promise 7)."""
    return keyed_hash(secret, KeyPurpose.CONSENT_RECEIPT, str(event_id))[:RECEIPT_REFERENCE_LENGTH]


def is_receipt_reference(value: str) -> bool:
    """Shaped as receipt_reference makes them: 24 lowercase hex digits (compared in constant
    time with the patron's own, which needs ASCII)."""
    return len(value) == RECEIPT_REFERENCE_LENGTH and _HEX.issuperset(value)


def low_s(signature: bytes) -> bytes:
    """The low-S form of an ES256 signature (r || s): s replaced by n - s when above n/2."""
    r, s = signature[:_SCALAR], int.from_bytes(signature[_SCALAR:], "big")
    if s > _HALF_ORDER:
        s = P256_ORDER - s
    return r + s.to_bytes(_SCALAR, "big")


def is_low_s(signature: bytes) -> bool:
    """Whether an ES256 signature is r || s of the right length with s in the low half."""
    if len(signature) != 2 * _SCALAR:
        return False
    return 0 < int.from_bytes(signature[_SCALAR:], "big") <= _HALF_ORDER


class Fact(StrEnum):
    """The material facts of a notice (docs/PROMISES.md, "Notice version")."""

    PURPOSE = "purpose"
    DATA = "data"
    RECIPIENTS = "recipients"
    RETENTION = "retention"


def changed_facts(old: dict[str, Any] | None, new: dict[str, Any]) -> tuple[Fact, ...]:
    """Which material facts differ between two versions' terms (none for a first version)."""
    if old is None:
        return ()
    changed = []
    if set(old["purposes"]) != set(new["purposes"]):
        changed.append(Fact.PURPOSE)
    if set(old["data_categories"]) != set(new["data_categories"]):
        changed.append(Fact.DATA)
    if set(old["recipients"]) != set(new["recipients"]):
        changed.append(Fact.RECIPIENTS)
    if int(old["retention_days"]) != int(new["retention_days"]):
        changed.append(Fact.RETENTION)
    return tuple(changed)


def consent_state_after(kind: EventKind) -> str:
    """The TS 27560 state the event leaves the consent in."""
    return {
        EventKind.GIVEN: "active",
        EventKind.RENEWED: "active",
        EventKind.REFUSED: "refused",
        EventKind.WITHDRAWN: "withdrawn",
    }.get(kind, "unknown")


@dataclass(frozen=True)
class ReceiptFacts:
    """One decision as the ledger recorded it, with the terms of the notice it answered."""

    event_id: int
    kind: EventKind
    controller: str
    subject: str  # the keyed hash of the card the portal keeps instead of its number
    service_key: str
    service_title: str
    terms: dict[str, Any]
    notice_version_id: int | None
    notice_revision: int | None
    notice_hash: str | None
    locale: str | None
    occurred_at: datetime
    method: str
    actor: str
    channel: str
    witnessed_by: str | None
    notice_url: str | None
    # A message choice: its kind and channel ({"group", "kind", "ils_name", "channel"}).
    message: dict[str, str] | None = None


def receipt_claims(facts: ReceiptFacts, *, issued_at: datetime) -> dict[str, Any]:
    """The receipt's payload: plain JSON, the same for every signer and verifier."""
    return {
        "schema_version": RECEIPT_SCHEMA_VERSION,
        "receipt_id": f"{RECEIPT_ID_PREFIX}{facts.event_id}",
        "iat": int(issued_at.timestamp()),
        "controller": {"name": facts.controller},
        "subject": facts.subject,
        "service": (
            {"key": facts.service_key, "title": facts.service_title}
            | ({"message": facts.message} if facts.message else {})
        ),
        "event": facts.kind.value,
        "state": consent_state_after(facts.kind),
        "purposes": list(facts.terms.get("purposes", [])),
        "data_categories": list(facts.terms.get("data_categories", [])),
        "recipients": list(facts.terms.get("recipients", [])),
        "retention_days": facts.terms.get("retention_days"),
        "notice": {
            "version_id": facts.notice_version_id,
            "revision": facts.notice_revision,
            "sha256": facts.notice_hash,
            "url": facts.notice_url,
        },
        "language": facts.locale,
        "time": facts.occurred_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "method": facts.method,
        "actor": facts.actor,
        "channel": facts.channel,
        "witness": facts.witnessed_by,
    }


def leaf_is_receipts(leaf: str, claims: dict[str, Any]) -> bool:
    """Whether a ledger leaf (portal.ledger.merkle.leaf_data, as text) is the event a receipt
    is a signed copy of: the same event, kind, notice, time, method, actor and channel."""
    try:
        event = json.loads(leaf)
        receipt_id = str(claims["receipt_id"])
        notice = claims.get("notice") or {}
        time = str(claims["time"])
    except (ValueError, TypeError, KeyError):
        return False
    if not (isinstance(event, dict) and receipt_id.startswith(RECEIPT_ID_PREFIX)):
        return False
    occurred = str(event.get("occurred_at", ""))
    return (
        str(event.get("id")) == receipt_id.removeprefix(RECEIPT_ID_PREFIX)
        and event.get("kind") == claims.get("event")
        and event.get("notice_hash") == notice.get("sha256")
        and event.get("method") == claims.get("method")
        and event.get("actor") == claims.get("actor")
        and event.get("channel") == claims.get("channel")
        # The receipt says the second, the leaf the microsecond.
        and time.endswith("Z")
        and occurred.startswith(time[:-1] + ".")
    )
