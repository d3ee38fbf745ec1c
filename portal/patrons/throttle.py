"""Throttling sign-in and PIN-setup guesses, in the database so every process and host
shares one count (two workers, two hosts behind a load balancer).

An attempt is counted *before* its PIN is checked: it inserts its row, then counts the rows
in the window, its own included. Whatever the interleaving, at most `limit` attempts per key
see a count within the limit, so parallel guesses cannot outrun the check. A successful
attempt is refunded; a refused one leaves no row. Keys are keyed hashes: no card number or
address is stored.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta

from portal.patrons.models import SignInAttempt
from portal.patrons.policy import keyed_hash, normalise_card


@dataclass(frozen=True)
class Reservation:
    attempt_ids: tuple[int, ...]
    # Failures already counted against the busiest key before this attempt (for delays).
    earlier: int


def throttle_keys(secret: str, card: str, client_host: str | None) -> tuple[str, str]:
    """One key for the card, one for the client's network: an IPv6 client is counted by its
    /64, which one household or device can rotate freely within."""
    network = client_host or "unknown"
    try:
        address = ipaddress.ip_address(network)
    except ValueError:
        pass
    else:
        if address.version == 6:
            network = str(ipaddress.ip_network(f"{address}/64", strict=False))
    return (
        keyed_hash(secret, "throttle-card", normalise_card(card) or card),
        keyed_hash(secret, "throttle-client", network),
    )


async def reserve(
    keys: tuple[str, ...], *, limit: int, window_seconds: int, now: datetime
) -> Reservation | None:
    """Count this attempt against each key; None when any key is over its limit."""
    since = now - timedelta(seconds=window_seconds)
    await SignInAttempt.filter(key_lookup__in=keys, attempted_at__lte=since).delete()
    ids: list[int] = []
    busiest = 0
    for key in keys:
        attempt = await SignInAttempt.create(key_lookup=key, attempted_at=now)
        ids.append(attempt.id)
        # Counted after this attempt's own row is committed: every attempt committed before
        # it is counted too, so the (limit + 1)-th and later can never see a small number.
        counted: int = await SignInAttempt.filter(key_lookup=key, attempted_at__gt=since).count()
        busiest = max(busiest, counted)
        if counted > limit:
            await SignInAttempt.filter(id__in=ids).delete()  # refused: never evaluated
            return None
    return Reservation(tuple(ids), earlier=busiest - 1)


async def refund(reservation: Reservation) -> None:
    """The attempt succeeded: it does not count as a guess."""
    await SignInAttempt.filter(id__in=reservation.attempt_ids).delete()


def delay_seconds(earlier_failures: int) -> float:
    """Growing delays before a PIN is checked: none for the first two, then doubling."""
    if earlier_failures < 2:
        return 0.0
    return float(min(0.25 * 2 ** (earlier_failures - 2), 4.0))


async def unlock_card(secret: str, card: str) -> int:
    """Staff, after checking who the patron is: the card's counted attempts are cleared (the
    client network's count stays, so this is no way around the per-client limit)."""
    card_key, _ = throttle_keys(secret, card, None)
    cleared: int = await SignInAttempt.filter(key_lookup=card_key).delete()
    return cleared


async def purge_expired(*, now: datetime, window_seconds: int) -> int:
    deleted: int = await SignInAttempt.filter(
        attempted_at__lte=now - timedelta(seconds=window_seconds)
    ).delete()
    return deleted
