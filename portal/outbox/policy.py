"""Pure rules of the outbox: what a connected system is told, how each request is signed
(Standard Webhooks: `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64>`,
HMAC-SHA256 over "id.timestamp.body"), and when a failed delivery is tried again
(exponential backoff with jitter, for up to three days)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import random
import secrets
from collections.abc import Callable
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from portal.catalog.policy import MessageChoice

MESSAGE_ID_MAX = 40
_URL_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


class MessageKind(StrEnum):
    DELETION_REQUESTED = "deletion.requested"
    CONSENT_GIVEN = "consent.given"  # the system may now use the data (e.g. send texts)
    # A patron changed the number or address a channel's messages go to (choices unchanged).
    CONTACT_CHANGED = "contact.changed"


class DeletionReason(StrEnum):
    WITHDRAWN = "withdrawn"  # the patron (or a guardian) turned the service off
    RETENTION = "retention"  # entries older than the service's retention period
    EXPIRED = "expired"  # a paused consent was never answered
    CAME_OF_AGE = "came_of_age"  # a guardian's consent the new adult never confirmed


class DeliveryState(StrEnum):
    PENDING = "pending"  # to be sent, or sent again
    ACCEPTED = "accepted"  # the system answered 202: it confirms later through the API
    CONFIRMED = "confirmed"  # a 2xx answer, or the system's acknowledgement
    GAVE_UP = "gave_up"  # still failing after RETRY_FOR: listed for the privacy officer


class Result(StrEnum):
    CONFIRMED = "confirmed"
    ACCEPTED = "accepted"
    FAILED = "failed"


# Retried for three days; the delay doubles from the first retry's up to six hours, each
# one ±25 % at random so requests that failed together (an outage) do not return together.
RETRY_FOR = timedelta(days=3)
MAX_DELAY = timedelta(hours=6)
JITTER = 0.25
# A deletion still unconfirmed this long after it was requested is the privacy officer's.
UNCONFIRMED_AFTER = timedelta(hours=24)
SECRET_PREFIX = "whsec_"  # noqa: S105 - the scheme's prefix, not a secret
MIN_SECRET_BYTES = 24  # Standard Webhooks: 24 to 64 random bytes


def retry_delay(failures: int, first_seconds: float, rng: Callable[[], float]) -> float:
    """Seconds to wait after the `failures`-th failed attempt (1 for the first)."""
    base = min(first_seconds * 2.0 ** min(failures - 1, 40), MAX_DELAY.total_seconds())
    return base * (1 - JITTER + 2 * JITTER * rng())


def next_attempt(
    failures: int,
    *,
    now: datetime,
    give_up_at: datetime,
    first_seconds: float,
    rng: Callable[[], float] = random.random,
) -> datetime | None:
    """When to try again after a failure, or None: the three days are over. The last try
    falls on the deadline itself rather than a backoff step beyond it."""
    if now >= give_up_at:
        return None
    return min(now + timedelta(seconds=retry_delay(failures, first_seconds, rng)), give_up_at)


def result_of(status: int | None, kind: MessageKind) -> Result:
    """A 2xx confirms; for a deletion, 202 means "accepted, confirmation follows". Anything
    else (no answer, a redirect, 4xx, 5xx) is a failure to be retried: the request is
    never dropped because a system was misconfigured for a while."""
    if status is None or not 200 <= status < 300:
        return Result.FAILED
    if status == 202 and kind is MessageKind.DELETION_REQUESTED:
        return Result.ACCEPTED
    return Result.CONFIRMED


def new_message_id() -> str:
    """The request's `webhook-id`: the same on every retry, so the receiver applies it once."""
    return "msg_" + secrets.token_urlsafe(18)


def is_message_id(value: str) -> bool:
    """What new_message_id makes could be this: URL-safe base64 characters, at most the
    column's 40. Anything else names no request and is never looked up."""
    return 0 < len(value) <= MESSAGE_ID_MAX and value.isascii() and _URL_SAFE.issuperset(value)


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_bytes(secret: str) -> bytes:
    """The key inside a `whsec_<base64>` secret; ValueError when it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a signing secret starts with {SECRET_PREFIX}")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a signing secret is whsec_ followed by base64") from None
    if len(key) < MIN_SECRET_BYTES:
        raise ValueError(f"a signing secret holds at least {MIN_SECRET_BYTES} random bytes")
    return key


def signature(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(key: bytes, message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Headers of one attempt: a fresh timestamp and signature each time (receivers refuse
    old timestamps), the same id."""
    return {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(key, message_id, timestamp, body),
    }


def _moment(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def deletion_payload(
    *,
    service: str,
    patron: str | None,
    reason: DeletionReason,
    requested_at: datetime,
    before: date | None = None,
    message: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`patron` is the keyed hash of the card (no card number leaves the portal); None with
    `before` asks to delete every patron's entries of the service dated before that day.
    `message`: for a message choice, which one (message_of), and whether the contact
    detail of its channel goes too (`contact_erased`)."""
    data: dict[str, Any] = {
        "service": service,
        "patron": patron,
        "reason": reason.value,
        "before": before.isoformat() if before else None,
    }
    if message is not None:
        data["message"] = message
    return {
        "type": MessageKind.DELETION_REQUESTED.value,
        "timestamp": _moment(requested_at),
        "data": data,
    }


def consent_payload(
    *, service: str, patron: str, given_at: datetime, message: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`message`: for a message choice, which one and the contact detail it goes to."""
    data: dict[str, Any] = {"service": service, "patron": patron}
    if message is not None:
        data["message"] = message
    return {
        "type": MessageKind.CONSENT_GIVEN.value,
        "timestamp": _moment(given_at),
        "data": data,
    }


def contact_payload(
    *, patron: str, channel: str, contact: str, changed_at: datetime
) -> dict[str, Any]:
    return {
        "type": MessageKind.CONTACT_CHANGED.value,
        "timestamp": _moment(changed_at),
        "data": {"patron": patron, "channel": channel, "contact": contact},
    }


def message_of(choice: MessageChoice) -> dict[str, Any]:
    """A message choice as connected systems read it:
    the library system's own name for the kind, the channel, and what a message may carry
    (titles only by the patron's separate choice)."""
    if choice.kind is None:
        return {"group": choice.group, "titles": True}
    return {
        "group": choice.group,
        "kind": choice.ils_name,
        "channel": choice.channel,
        "contains": list(choice.contains),
    }


# Where a request's number or address is sealed (portal.retained_keys.policy.context): in
# the stored body only; a receiver is sent it opened, as it was written.
CONTACT_TABLE, CONTACT_COLUMN = "outbox_message", "contact"


def contact_holder(kind: MessageKind, payload: dict[str, Any]) -> dict[str, Any] | None:
    """The part of a request that carries a number or address ("contact" and "channel"):
    a consent to a message choice, or a changed contact; None for any other."""
    data = payload.get("data")
    if not isinstance(data, dict):
        return None
    if kind is MessageKind.CONTACT_CHANGED:
        return data
    message = data.get("message") if kind is MessageKind.CONSENT_GIVEN else None
    return message if isinstance(message, dict) and "contact" in message else None


def body_of(payload: dict[str, Any]) -> str:
    """Serialised once, when the request is written: every retry sends the same bytes."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
