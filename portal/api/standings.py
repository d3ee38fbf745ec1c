"""Which clients' access tokens to refuse before they expire. Each process keeps every
client's standing (its secret generation, whether it is revoked) in memory and reads them
again, in one query, once they are REFRESH_SECONDS old: checking a token costs no query,
and a revoked or rotated client's tokens are refused by every process and host within
REFRESH_SECONDS of the change (memory is only a cache; the database is the truth)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping

from portal.api import services
from portal.api.policy import AccessToken
from portal.api.services import Standing

REFRESH_SECONDS = 5.0

Loader = Callable[[], Awaitable[Mapping[int, Standing]]]


class ClientStandings:
    """One per app, so one per worker process. `clock` is monotonic seconds."""

    def __init__(
        self,
        load: Loader = services.client_standings,
        *,
        refresh_seconds: float = REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.load = load
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self._standings: Mapping[int, Standing] = {}
        self._read_at: float | None = None
        self._lock = asyncio.Lock()

    async def admits(self, token: AccessToken) -> bool:
        # Every API request asks: the fresh case costs no awaiting.
        standings = self._standings if self._fresh() else await self._reread()
        standing = standings.get(token.client)
        if standing is None or token.generation > standing.generation:
            # A client added, or a secret rotated, since the last read (in another process)?
            # Read again now: a token is admitted only for a client and a secret generation
            # that exist. Only a token this portal signed gets here.
            standing = (await self._reread(force=True)).get(token.client)
            if standing is None:
                return False
        # An older generation belongs to a secret that was replaced.
        return token.generation == standing.generation and not standing.revoked

    def _fresh(self) -> bool:
        return self._read_at is not None and self.clock() - self._read_at < self.refresh_seconds

    async def _reread(self, *, force: bool = False) -> Mapping[int, Standing]:
        asked_at = self.clock()
        async with self._lock:  # one read for all the requests that find it stale
            # Forced: unless a read began after this request asked, as a read it waited for.
            stale = self._read_at is None or self._read_at <= asked_at
            if (force and stale) or not self._fresh():
                # Timed before the read: whatever committed before it is in what it reads.
                started = self.clock()
                self._standings = await self.load()
                self._read_at = started
        return self._standings
