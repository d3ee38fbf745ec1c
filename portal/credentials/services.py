"""Secrets a person chooses (Argon2, RFC 9106), one-time codes and sliding sessions: one
implementation each, used by every purpose (patrons' PINs and sessions, staff passwords and
sessions), each purpose with its own table, keyed-hash purpose and timings."""

from __future__ import annotations

import asyncio
import secrets
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from portal.batches import Progress, delete_in_batches, no_progress
from portal.credentials.models import OneTimeCode, SlidingSession
from portal.credentials.policy import KeyPurpose, keyed_hash
from portal.db import as_datetime, as_optional_datetime, fetch_rows

T = TypeVar("T")
_hasher = PasswordHasher()
# Each Argon2 hash takes 64 MiB and a core's worth of time: a burst of sign-ins waits its
# turn rather than exhausting the server's memory. Per process, one set per event loop.
ARGON2_AT_ONCE = 2
_argon2_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


async def _argon2(work: Callable[..., T], *args: str) -> T:
    loop = asyncio.get_running_loop()
    slots = _argon2_slots.setdefault(loop, asyncio.Semaphore(ARGON2_AT_ONCE))
    async with slots:
        return await asyncio.to_thread(work, *args)


# Verified against when the account is unknown, so a wrong name costs as long as a wrong PIN.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(8))


async def hash_secret(value: str) -> str:
    """An Argon2 hash of a PIN or a staff password, within the process's Argon2 slots."""
    return await _argon2(_hasher.hash, value)


async def verify_secret(stored: str | None, value: str) -> bool:
    """Whether `value` matches; an absent hash costs as long as a wrong one."""
    try:
        await _argon2(_hasher.verify, stored or _DUMMY_HASH, value)
    except (VerificationError, InvalidHashError):
        return False
    return stored is not None


@dataclass(frozen=True)
class OneTimeCodes:
    """The one-time codes of one purpose: kept in `model`, belonging to whoever its `owner`
    column names ("patron_id"), made by `new_code`."""

    model: type[OneTimeCode]
    purpose: KeyPurpose
    owner: str
    new_code: Callable[[], str]

    async def issue(
        self, secret: str, owner_id: int, *, now: datetime, hours: int
    ) -> tuple[str, datetime]:
        """A new code, alongside the owner's earlier ones (`revoke` ends those first)."""
        code = self.new_code()
        expires_at = now + timedelta(hours=hours)
        owned: dict[str, Any] = {self.owner: owner_id}
        await self.model.create(
            code_lookup=keyed_hash(secret, self.purpose, code), expires_at=expires_at, **owned
        )
        return code, expires_at

    async def claim(self, secret: str, code: str, *, now: datetime, **owned_by: Any) -> int | None:
        """Whose code it is, when it is valid and its owner matches `owned_by` (filters on the
        owner, e.g. its card); that owner's codes are then used up. Call inside the caller's
        transaction, which takes the code's row lock."""
        found = (
            await self.model.filter(
                code_lookup=keyed_hash(secret, self.purpose, code.strip()), **owned_by
            )
            .select_for_update()
            .first()
        )
        if found is None or found.expires_at <= now:
            return None
        owner_id: int = getattr(found, self.owner)
        await self.revoke(owner_id)
        return owner_id

    async def revoke(self, owner_id: int) -> None:
        await self.model.filter(**{self.owner: owner_id}).delete()

    async def purge_expired(self, now: datetime, progress: Progress = no_progress) -> int:
        return await delete_in_batches(self.model.filter(expires_at__lte=now), progress)


@dataclass(frozen=True)
class SlidingSessions:
    """The sessions of one purpose, kept in `model` and belonging to whoever its `owner`
    column names. A session ends after an idle timeout, which each use slides forward, and
    after an absolute lifetime however active. `read` is the owner's query for a session
    and what every request needs to know of its owner, in one indexed query: it selects the
    session's id, expires_at and ends_at and takes the token's keyed hash as its one
    parameter. Sliding is written only once more than `renew_after` has passed, keeping
    reads cheap."""

    model: type[SlidingSession]
    purpose: KeyPurpose
    owner: str
    read: str
    renew_after: timedelta

    async def start(
        self,
        secret: str,
        owner_id: int,
        *,
        now: datetime,
        minutes: int,
        hours: int,
        **columns: Any,
    ) -> str:
        """A session that ends after `minutes` idle, and after `hours` however active."""
        token = secrets.token_urlsafe(32)
        await self.model.create(
            token_lookup=keyed_hash(secret, self.purpose, token),
            expires_at=now + timedelta(minutes=minutes),
            ends_at=now + timedelta(hours=hours),
            **{self.owner: owner_id, **columns},
        )
        return token

    async def find(
        self, secret: str, token: str, *, now: datetime, minutes: int
    ) -> dict[str, Any] | None:
        """The `read` row of a live session, sliding its idle timeout forward; an expired
        session is deleted."""
        rows = await fetch_rows(self.read, keyed_hash(secret, self.purpose, token))
        if not rows:
            return None
        row = rows[0]
        expires_at = as_datetime(row["expires_at"])
        ends_at = as_optional_datetime(row["ends_at"]) or expires_at
        if expires_at <= now or ends_at <= now:
            await self.model.filter(id=row["id"]).delete()
            return None
        renewed = min(now + timedelta(minutes=minutes), ends_at)
        if renewed - expires_at > self.renew_after:
            await self.model.filter(id=row["id"]).update(expires_at=renewed)
        return row

    async def end(self, secret: str, token: str) -> int | None:
        """Ends the session; returns whose it was."""
        lookup = keyed_hash(secret, self.purpose, token)
        session = await self.model.get_or_none(token_lookup=lookup)
        if session is None:
            return None
        await self.model.filter(id=session.id).delete()
        owner_id: int = getattr(session, self.owner)
        return owner_id

    async def end_all(self, owner_id: int) -> None:
        await self.model.filter(**{self.owner: owner_id}).delete()

    async def purge_expired(self, now: datetime, progress: Progress = no_progress) -> int:
        idle = await delete_in_batches(self.model.filter(expires_at__lte=now), progress)
        return idle + await delete_in_batches(self.model.filter(ends_at__lte=now), progress)
