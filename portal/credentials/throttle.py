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

from portal import batches
from portal.batches import Progress, no_progress
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
class Limit:
    """A key and the attempts it allows in its window. A holding limit (`holds`), once
    reached, stays reached when its window ends: only clearing the key lifts it (a patron's
    setup code, the desk's unlock)."""

    key: str
    attempts: int
    window_seconds: int
    holds: bool = False


@dataclass(frozen=True)
class Reservation:
    keys: tuple[str, ...]
    # Attempts already counted against the card in this window (for the growing delay).
    earlier: int
    # The client's network was at its limit and the card's clean record let this attempt
    # through (see `reserve`): a failure is answered as the network's hold is.
    past_held_network: bool = False
    # This attempt is the last a holding limit allows: if it fails, the card is held.
    last_before_hold: bool = False


# A network (a branch's Wi-Fi, a carrier's NAT) is shared by many patrons: it gets this many
# times the attempts of one card before it is held back.
NETWORK_FACTOR = 20
DAY_SECONDS = 86_400
# The period a card's budget of PIN guesses before a hold is counted over.
HOLD_WINDOW_SECONDS = 30 * DAY_SECONDS


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
        network_key(secret, guessing, client_host),
    )


def subject_key(secret: str, guessing: Guessing, subject: str) -> str:
    """The key guesses at the subject are counted under."""
    return keyed_hash(secret, guessing.subject_purpose, subject)


def network_key(secret: str, guessing: Guessing, client_host: str | None) -> str:
    """The key guesses from the client's network are counted under."""
    return keyed_hash(secret, guessing.client_purpose, client_network(client_host))


def card_keys(secret: str, subject: str) -> tuple[str, str, str]:
    """Every key a card's PIN guesses count under: the window's, the day's, the hold's."""
    return card_keys_of(secret, subject_key(secret, Guessing.SIGNIN, subject))


def card_keys_of(secret: str, window_key: str) -> tuple[str, str, str]:
    """The day's and the hold's keys follow from the window's, so that the desk, which
    carries only that key in its pages, can clear all three."""
    return (
        window_key,
        keyed_hash(secret, KeyPurpose.THROTTLE_PIN_DAY, window_key),
        keyed_hash(secret, KeyPurpose.THROTTLE_PIN_HOLD, window_key),
    )


def limits(keys: tuple[str, str], attempts: int, window_seconds: int) -> tuple[Limit, Limit]:
    """The subject's limit and its network's, in one window."""
    card_key, client_key = keys
    return (
        Limit(card_key, attempts, window_seconds),
        Limit(client_key, attempts * NETWORK_FACTOR, window_seconds),
    )


def pin_limits(
    secret: str, subject: str, *, attempts: int, window_seconds: int, per_day: int, before_hold: int
) -> tuple[Limit, Limit, Limit]:
    """A card's PIN guesses: `attempts` a window, `per_day` a day, and `before_hold` over
    HOLD_WINDOW_SECONDS, after which the card is held until it is cleared."""
    window, day, hold = card_keys(secret, subject)
    return (
        Limit(window, attempts, window_seconds),
        Limit(day, per_day, DAY_SECONDS),
        Limit(hold, before_hold, HOLD_WINDOW_SECONDS, holds=True),
    )


# One conditional UPDATE per key: a new window starts when the old one has ended, unless
# the key holds at its limit; past its limit the row is not touched and nothing is returned.
_COUNT = (
    "UPDATE signin_counter SET "
    "attempts = CASE WHEN window_started_ms <= ? AND (holds_at IS NULL OR attempts < holds_at) "
    "THEN 1 ELSE attempts + 1 END, "
    "window_started_ms = CASE WHEN window_started_ms <= ? "
    "AND (holds_at IS NULL OR attempts < holds_at) THEN ? ELSE window_started_ms END, "
    "window_ms = ?, holds_at = ? WHERE key_lookup = ? AND ((window_started_ms <= ? "
    "AND (holds_at IS NULL OR attempts < holds_at)) OR attempts < ?) RETURNING attempts"
)
_REFUND = "UPDATE signin_counter SET attempts = attempts - 1 WHERE key_lookup = ? AND attempts > 0"


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


async def _count(limit: Limit, *, now: datetime) -> int | None:
    """This attempt's number in the key's window, or None when the limit is reached."""
    with contextlib.suppress(IntegrityError):  # created meanwhile by a concurrent attempt
        await SignInCounter.get_or_create(
            key_lookup=limit.key, defaults={"window_started_ms": _ms(now), "attempts": 0}
        )
    cut = _ms(now - timedelta(seconds=limit.window_seconds))
    holds_at = limit.attempts if limit.holds else None
    rows = await fetch_rows(
        _COUNT,
        cut,
        cut,
        _ms(now),
        limit.window_seconds * 1000,
        holds_at,
        limit.key,
        cut,
        limit.attempts,
    )
    return int(rows[0]["attempts"]) if rows else None


async def reserve(
    card: tuple[Limit, ...], network: Limit | None, *, now: datetime, known: bool = False
) -> Reservation | None:
    """Count this attempt against each of the card's limits, then its network's; None when
    any is reached. The first limit's count sets the delay (the card's failures).

    A network at its limit holds back every card but one the portal `known`s with a clean
    record (no failure of its own counted in its window or its day): a patron with the right
    PIN still gets in from a library's public network that a spray of made-up cards has
    filled. The spray stays held: a made-up card is not known, and a known card that fails
    has a record from then on, so from a held network each known card is checked once and
    made-up cards not at all. The attempt is then not counted against the network (it is at
    its limit), and a failure is answered like the hold, so the answer does not tell a known
    card from a made-up one."""
    counted: list[str] = []
    numbers: list[int] = []
    last_before_hold = False
    for limit in card:
        number = await _count(limit, now=now)
        if number is None:
            await refund(Reservation(tuple(counted), earlier=0))  # refused: never evaluated
            return None
        counted.append(limit.key)
        numbers.append(number)
        last_before_hold = last_before_hold or (limit.holds and number == limit.attempts)
    earlier = numbers[0] - 1 if numbers else 0
    past_held_network = False
    if network is not None:
        if await _count(network, now=now) is not None:
            counted.append(network.key)
        elif known and all(n == 1 for n, lim in zip(numbers, card, strict=True) if not lim.holds):
            past_held_network = True
        else:
            await refund(Reservation(tuple(counted), earlier=0))
            return None
    return Reservation(tuple(counted), earlier, past_held_network, last_before_hold)


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
    """Staff, after checking who the patron is: the subject's counted attempts are cleared,
    and a card's day and hold with them (the client network's count stays, so this is no
    way around the per-client limit)."""
    key = subject_key(secret, guessing, subject)
    cleared = await clear_key(key)
    if guessing is Guessing.SIGNIN:
        await clear_card(secret, key)
    return cleared


async def clear_key(key: str) -> int:
    counter = await SignInCounter.get_or_none(key_lookup=key)
    if counter is None:
        return 0
    await SignInCounter.filter(id=counter.id).delete()
    return counter.attempts


async def clear_card(secret: str, window_key: str) -> None:
    """A card's PIN guesses forgotten, its hold too: its setup code was used, or staff
    checked who the patron is."""
    for key in card_keys_of(secret, window_key):
        await clear_key(key)


@dataclass(frozen=True)
class CardStanding:
    """Whether guesses at a card are held back now: by its window or day (time lifts it),
    or by the hold (only clearing lifts it)."""

    waiting: bool
    held: bool

    @property
    def locked(self) -> bool:
        return self.waiting or self.held


async def standing(limited: tuple[Limit, ...], *, now: datetime) -> CardStanding:
    waiting = held = False
    for limit in limited:
        counter = await SignInCounter.get_or_none(key_lookup=limit.key)
        if counter is None or counter.attempts < limit.attempts:
            continue
        if limit.holds:
            held = True
        elif counter.window_started_ms > _ms(now - timedelta(seconds=limit.window_seconds)):
            waiting = True
    return CardStanding(waiting, held)


async def network_held(limit: Limit, *, now: datetime) -> bool:
    """Whether the network a limit is for has reached it in its current window."""
    return (await standing((limit,), now=now)).waiting


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
    limit = Limit(subject_key(secret, guessing, subject), attempts, window_seconds)
    return (await standing((limit,), now=now)).waiting


_ENDED = "window_started_ms + window_ms <= ? AND (holds_at IS NULL OR attempts < holds_at)"
_ENDED_BATCH = f"SELECT id FROM signin_counter WHERE id > ? AND {_ENDED} ORDER BY id LIMIT ?"  # noqa: S608 - constants


async def purge_expired(*, now: datetime, progress: Progress = no_progress) -> int:
    """Rows whose window has ended, but for a card held until it is cleared: a batch at a
    time by id (portal.batches), each DELETE naming its rows and the rule again (a counter
    that took a guess meanwhile is kept)."""
    deleted = after = 0
    while True:
        ids = [
            int(row["id"]) for row in await fetch_rows(_ENDED_BATCH, after, _ms(now), batches.BATCH)
        ]
        if not ids:
            return deleted
        marks = ", ".join("?" for _ in ids)
        done = await fetch_rows(
            # Only ? placeholders and a constant in the text: the values are bound.
            f"DELETE FROM signin_counter WHERE id IN ({marks}) AND {_ENDED} RETURNING id",  # noqa: S608
            *ids,
            _ms(now),
        )
        deleted += len(done)
        await progress(len(done))
        if len(ids) < batches.BATCH:
            return deleted
        after = ids[-1]
