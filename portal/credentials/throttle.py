"""Throttling guesses (at a card's PIN or setup code, a staff password, a link code, an API
client's secret), in the database so every process and host shares one count (two workers,
two hosts behind a load balancer).

An attempt is counted *before* its PIN is checked, by one conditional UPDATE per key
("add one, unless the window's limit is reached"), which the database applies atomically:
however many guesses arrive at once, exactly `limit` of them are let through, never more
and never fewer. A successful attempt is refunded. Keys are keyed hashes: no card number or
address is stored. What is guessed at (the subject) comes normalised by the caller, the way
its own lookup normalises it, so that variants of one subject share one count.
"""

from __future__ import annotations

import contextlib
import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from tortoise.exceptions import IntegrityError

from portal.credentials.models import SignInCounter
from portal.credentials.policy import KeyPurpose, keyed_hash
from portal.db import fetch_rows


class Guessing(StrEnum):
    """What is guessed at. Each counts apart: link-code guesses never lock anyone out of
    signing in."""

    SIGNIN = "signin"  # a card's PIN or setup code
    LINK_CODE = "link-code"  # a guardian's link code
    STAFF = "staff"  # a local staff account's password or setup code
    OAUTH = "oauth"  # an API client's secret

    @property
    def subject_purpose(self) -> KeyPurpose:
        return KeyPurpose(f"throttle-{self}-card")

    @property
    def client_purpose(self) -> KeyPurpose:
        return KeyPurpose(f"throttle-{self}-client")


@dataclass(frozen=True)
class Reservation:
    keys: tuple[str, ...]
    # Attempts already counted against the card in this window (for the growing delay).
    earlier: int


# A network (a branch's Wi-Fi, a carrier's NAT) is shared by many patrons: it gets this many
# times the attempts of one card before it is held back.
NETWORK_FACTOR = 20


def client_network(client_host: str | None) -> str:
    """An IPv6 client counts by its /64, which one household or device rotates freely
    within; an IPv4-mapped IPv6 address counts as the IPv4 address it is."""
    try:
        address = ipaddress.ip_address(client_host or "")
    except ValueError:
        return client_host or "unknown"
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return str(address.ipv4_mapped)
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def throttle_keys(
    secret: str, guessing: Guessing, subject: str, client_host: str | None
) -> tuple[str, str]:
    """One key for the subject (a card, or what else is guessed at), one for the client's
    network."""
    return (
        subject_key(secret, guessing, subject),
        keyed_hash(secret, guessing.client_purpose, client_network(client_host)),
    )


def subject_key(secret: str, guessing: Guessing, subject: str) -> str:
    """The key guesses at the subject are counted under."""
    return keyed_hash(secret, guessing.subject_purpose, subject)


def limits(keys: tuple[str, str], attempts: int) -> tuple[tuple[str, int], ...]:
    card_key, client_key = keys
    return ((card_key, attempts), (client_key, attempts * NETWORK_FACTOR))


_COUNT = (
    "UPDATE signin_counter SET "
    "attempts = CASE WHEN window_started_ms <= ? THEN 1 ELSE attempts + 1 END, "
    "window_started_ms = CASE WHEN window_started_ms <= ? THEN ? ELSE window_started_ms END "
    "WHERE key_lookup = ? AND (window_started_ms <= ? OR attempts < ?) RETURNING attempts"
)
_REFUND = "UPDATE signin_counter SET attempts = attempts - 1 WHERE key_lookup = ? AND attempts > 0"


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def _count(key: str, limit: int, *, since: datetime, now: datetime) -> int | None:
    """This attempt's number in the key's window, or None when the limit is reached."""
    with contextlib.suppress(IntegrityError):  # created meanwhile by a concurrent attempt
        await SignInCounter.get_or_create(
            key_lookup=key, defaults={"window_started_ms": _ms(now), "attempts": 0}
        )
    cut = _ms(since)
    rows = await fetch_rows(_COUNT, cut, cut, _ms(now), key, cut, limit)
    return int(rows[0]["attempts"]) if rows else None


async def reserve(
    limited: tuple[tuple[str, int], ...], *, window_seconds: int, now: datetime
) -> Reservation | None:
    """Count this attempt against each (key, limit); None when any key is at its limit.
    The first key's count sets the delay (the card's failures, not the network's)."""
    since = now - timedelta(seconds=window_seconds)
    counted: list[str] = []
    earlier = 0
    for key, limit in limited:
        number = await _count(key, limit, since=since, now=now)
        if number is None:
            await refund(Reservation(tuple(counted), earlier=0))  # refused: never evaluated
            return None
        if not counted:
            earlier = number - 1
        counted.append(key)
    return Reservation(tuple(counted), earlier=earlier)


async def refund(reservation: Reservation) -> None:
    """The attempt succeeded (or was never evaluated): it does not count as a guess."""
    for key in reservation.keys:
        await fetch_rows(_REFUND + " RETURNING attempts", key)


def delay_seconds(earlier_failures: int) -> float:
    """Growing delays before a PIN is checked: none for the first two, then doubling."""
    if earlier_failures < 2:
        return 0.0
    return float(min(0.25 * 2 ** (earlier_failures - 2), 4.0))


async def unlock(secret: str, guessing: Guessing, subject: str) -> int:
    """Staff, after checking who the patron is: the subject's counted attempts are cleared
    (the client network's count stays, so this is no way around the per-client limit)."""
    return await clear_key(subject_key(secret, guessing, subject))


async def clear_key(key: str) -> int:
    counter = await SignInCounter.get_or_none(key_lookup=key)
    if counter is None:
        return 0
    await SignInCounter.filter(id=counter.id).delete()
    return counter.attempts


async def locked(
    secret: str,
    guessing: Guessing,
    subject: str,
    *,
    attempts: int,
    window_seconds: int,
    now: datetime,
) -> bool:
    """Whether guesses at the subject are held back by its failures in the current window."""
    counter = await SignInCounter.get_or_none(key_lookup=subject_key(secret, guessing, subject))
    if counter is None:
        return False
    in_window = counter.window_started_ms > _ms(now - timedelta(seconds=window_seconds))
    return in_window and counter.attempts >= attempts


async def purge_expired(*, now: datetime, window_seconds: int) -> int:
    deleted: int = await SignInCounter.filter(
        window_started_ms__lte=_ms(now - timedelta(seconds=window_seconds))
    ).delete()
    return deleted
