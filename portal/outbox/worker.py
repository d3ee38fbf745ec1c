"""The delivery worker: sends due requests to connected systems, signed the Standard Webhooks
way, and records each answer. It runs inside `portal serve` (the app's lifespan starts and
stops it) or alone as `portal deliver`; any number of them may share one database, and no
request is sent by two at once (portal.outbox.delivery.claim_due)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx2
from tortoise.exceptions import BaseORMException

from portal.catalog.parsing import Address
from portal.catalog.services import (
    PublishedSystem,
    connected_systems,
    endpoint_refusal,
    endpoint_rules,
)
from portal.clock import utcnow
from portal.outbox.delivery import Answer, Claimed, claim_due, record_answers
from portal.outbox.keys import SecretsError, load_secrets, require_secrets
from portal.outbox.policy import signed_headers
from portal.settings import Settings

logger = logging.getLogger("portal.outbox")

# Claimed at once (one statement), sent CONCURRENT at a time over kept-alive connections,
# their answers recorded together (one transaction): at a consortium's volume the round trips
# to the database per request, not the requests themselves, were the cost. A batch is
# recorded within its lease: a request is sent only while two timeouts of the lease are
# left, and each send (look-up, request, answer) ends within one timeout, whatever the
# receiver does; what is left when the lease runs short waits for the next claim.
BATCH = 100
CONCURRENT = 20
# An answer's body is read to the end when it is this small, so the connection is used
# again; a larger one is left unread and its connection closed.
DRAIN_BYTES = 64 * 1024
# A worker that met an unexpected error (the database restarting) waits this long.
PAUSE_AFTER_ERROR_SECONDS = 5.0


async def check_published_secrets(settings: Settings) -> None:
    """Refuse to start delivering when a published system has no signing secret. A database
    that does not answer yet is not a reason to refuse: the worker waits for it."""
    try:
        systems = await connected_systems()
    except (BaseORMException, OSError):
        return
    require_secrets(settings, systems)


class DeliveryWorker:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Well inside the lease: a request is answered (or given up) before anyone else
        # may take it over.
        self.timeout = min(10.0, settings.delivery_lease_seconds / 3)
        self.client = httpx2.AsyncClient(
            timeout=self.timeout,
            follow_redirects=False,
            limits=httpx2.Limits(max_connections=CONCURRENT, max_keepalive_connections=CONCURRENT),
        )
        self.rules = endpoint_rules(settings)

    async def close(self) -> None:
        await self.client.aclose()

    async def deliver_due(self) -> int:
        """Send one batch of due requests; returns how many were claimed."""
        claimed = await claim_due(
            now=utcnow(), limit=BATCH, lease_seconds=self.settings.delivery_lease_seconds
        )
        if not claimed:
            return 0
        systems = await connected_systems()
        try:
            keys = load_secrets(self.settings)
        except SecretsError as error:
            logger.error("%s", error)
            keys = {}
        sending = asyncio.Semaphore(CONCURRENT)

        async def send(message: Claimed) -> Answer | None:
            async with sending:
                return await self._attempt(
                    message, systems.get(message.system), keys.get(message.system)
                )

        sent = await asyncio.gather(*(send(message) for message in claimed))
        answers = [answer for answer in sent if answer is not None]
        states = await record_answers(
            answers, now=utcnow(), first_retry_seconds=self.settings.delivery_retry_seconds
        )
        for answer, state in zip(answers, states, strict=True):
            # The request's id and the system, never the body: it names a patron.
            logger.info(
                "%s to %s: %s, %s",
                answer.claimed.message_id,
                answer.claimed.system,
                f"HTTP {answer.status}" if answer.status else answer.error,
                state.value if state else "already settled elsewhere",
            )
        return len(claimed)

    async def deliver_all_due(self) -> int:
        """Send batches until nothing is due (`portal deliver --once`)."""
        total = 0
        while sent := await self.deliver_due():
            total += sent
        return total

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set: at once while full batches keep coming, otherwise
        every PORTAL_DELIVERY_POLL_SECONDS. An error never ends the loop."""
        while not stop.is_set():
            wait = self.settings.delivery_poll_seconds
            try:
                if await self.deliver_due() == BATCH:
                    wait = 0
            except Exception:
                logger.exception("delivery failed; trying again shortly")
                wait = max(wait, PAUSE_AFTER_ERROR_SECONDS)
            if wait:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=wait)

    async def _attempt(
        self, message: Claimed, system: PublishedSystem | None, key: bytes | None
    ) -> Answer | None:
        """One request sent; None when it was not (its lease nearly over)."""
        if time.time() * 1000 + 2 * self.timeout * 1000 > message.lease_until_ms:
            return None  # the lease is nearly over: another worker may take it, and will
        try:
            # httpx's timeout bounds each phase (connect, write, each read), not the whole:
            # a receiver trickling its answer would otherwise hold the batch past its lease.
            async with asyncio.timeout(self.timeout):
                status, error = await self._send(message, system, key)
        except TimeoutError:
            status, error = None, "no answer in time"
        return Answer(message, status, error)

    async def _send(
        self, message: Claimed, system: PublishedSystem | None, key: bytes | None
    ) -> tuple[int | None, str | None]:
        if system is None:
            return None, "system not in the published catalog"
        if key is None:
            return None, "no signing secret configured"
        # Checked again at each delivery: a name allowed at publishing may resolve elsewhere
        # now. The request then goes to an address just checked, not to a second look-up.
        refusal, addresses = await endpoint_refusal(system.endpoint, self.rules)
        if refusal is not None:
            logger.warning("not sent to %s: endpoint %s", message.system, refusal)
            return None, "endpoint not allowed (PORTAL_SYSTEM_ALLOWED_ADDRESSES)"
        url, extensions = pinned(system.endpoint, addresses)
        headers = signed_headers(key, message.message_id, int(time.time()), message.body)
        if url != system.endpoint:
            headers["host"] = urlsplit(system.endpoint).netloc
        try:
            # Streamed: a receiver's answer body is not the portal's business. A small one is
            # read to its end only so that the connection can be used again.
            async with self.client.stream(
                "POST", url, content=message.body, headers=headers, extensions=extensions
            ) as response:
                await self._drain(response)
                return response.status_code, None
        except httpx2.TimeoutException:
            return None, "no answer in time"
        except (httpx2.HTTPError, httpx2.InvalidURL, OSError) as error:
            return None, type(error).__name__

    async def _drain(self, response: httpx2.Response) -> None:
        """Read a small answer's body (bounded in bytes and time), so that its connection goes
        back to the pool; a large or slow one is left, and its connection closed."""
        length = response.headers.get("content-length", "")
        if not length.isdigit() or int(length) > DRAIN_BYTES:
            return
        with contextlib.suppress(TimeoutError, httpx2.HTTPError):
            async with asyncio.timeout(self.timeout):
                async for _ in response.aiter_raw():
                    pass


def pinned(endpoint: str, addresses: list[Address]) -> tuple[str, dict[str, Any]]:
    """The endpoint with its host name replaced by the first address it was checked at, and
    the TLS name to verify the certificate against (the host name, as before); unchanged
    when nothing was resolved for it (development) or the host is an address already."""
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    if not addresses or host.strip("[]") == str(addresses[0]):
        return endpoint, {}
    address = addresses[0]
    where = f"[{address}]" if address.version == 6 else str(address)
    netloc = f"{where}:{parts.port}" if parts.port else where
    extensions: dict[str, Any] = {"sni_hostname": host} if parts.scheme == "https" else {}
    return urlunsplit(parts._replace(netloc=netloc)), extensions


@asynccontextmanager
async def in_process(settings: Settings) -> AsyncIterator[DeliveryWorker | None]:
    """The worker inside `portal serve`, for the app's lifespan: refuses to start without
    the published systems' secrets, and stops with the server (a request being sent is
    given a moment to finish; one cut off is sent again after its lease)."""
    if not settings.delivery_in_process:
        yield None
        return
    await check_published_secrets(settings)
    worker = DeliveryWorker(settings)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop), name="portal-delivery")
    try:
        yield worker
    finally:
        stop.set()
        # Cut off by wait_for after that: its requests are sent again after their lease.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(task, timeout=worker.timeout + 1)
        await worker.close()
