"""The scheduled jobs the operator runs (`portal expire-consents`, `purge-sessions`, …), each
recorded as a run for the privacy officer's page (portal.officer.services.recorded)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from portal.clock import local_date, utcnow
from portal.credentials import throttle
from portal.decisions.services import count_unanswered, expire_unanswered
from portal.desk.handovers import purge_handovers
from portal.erasure.services import apply_retention as apply_store_retention
from portal.erasure.services import compact
from portal.ledger.checkpoints import Made, make_checkpoint
from portal.minors.services import (
    ComingOfAge,
    coming_of_age,
    count_coming_of_age,
    purge_expired_link_codes,
)
from portal.officer.policy import JobName
from portal.officer.services import Run, purge_old_runs, recorded
from portal.outbox import services as outbox
from portal.outbox.keys import SecretsError
from portal.outbox.worker import DeliveryWorker, check_published_secrets
from portal.patrons.services import purge_expired_sessions
from portal.retained_keys.rotation import keys_to_rewrap
from portal.rights.keys import ReceiptKeysError, load_keys
from portal.rights.proofs import checker, signer
from portal.settings import Settings
from portal.staff import services as staff_services

KEEP_ALIVE_SECONDS = 300


async def expire_consents(settings: Settings) -> int:
    async with recorded(JobName.EXPIRE_CONSENTS, utcnow) as run:
        await run.counted(await count_unanswered())
        count = await expire_unanswered(
            now=utcnow(),
            material_grace_days=settings.reconsent_grace_days,
            majority_grace_days=settings.majority_grace_days,
            progress=run.batch_done,
        )
        run.counts["consents_ended"] = count
    return count


async def apply_retention(settings: Settings) -> int:
    # No total: counting the rows past each store's cutoff costs a scan as long as the job.
    async with recorded(JobName.APPLY_RETENTION, utcnow) as run:
        now = utcnow()
        rows = await apply_store_retention(
            now=now, today=local_date(now, settings.timezone), progress=run.batch_done
        )
        run.counts["rows_deleted"] = rows
    return rows


async def compact_erased() -> None:
    async with recorded(JobName.COMPACT_ERASED, utcnow) as run:
        await run.counted(await keys_to_rewrap())
        rotated = await compact(now=utcnow(), progress=run.batch_done)
        run.counts.update(
            wrapping_keys_rotated=rotated.wrapping_keys,
            keys_rewrapped=rotated.keys,
            wrapping_keys_left=rotated.left,
        )


async def purge_sessions(settings: Settings) -> int:
    # No total: it would take a count of each of seven tables for a figure nobody waits on.
    async with recorded(JobName.PURGE_SESSIONS, utcnow) as run:
        now = utcnow()
        progress = run.batch_done
        count = await purge_expired_sessions(now, progress)
        count += await purge_expired_link_codes(now, progress)
        count += await staff_services.purge_expired(now, progress)
        count += await purge_handovers(now, progress)
        count += await throttle.purge_expired(now=now, progress=progress)
        count += await outbox.purge_confirmed(now=now, progress=progress)
        count += await purge_old_runs(now, progress)
        run.counts["rows_deleted"] = count
    return count


async def hand_over_coming_of_age(settings: Settings) -> ComingOfAge:
    async with recorded(JobName.COMING_OF_AGE, utcnow) as run:
        now = utcnow()
        await run.counted(await count_coming_of_age(now=now, timezone=settings.timezone))
        report = await coming_of_age(now=now, timezone=settings.timezone, progress=run.batch_done)
        run.counts.update(
            patrons=report.patrons,
            links_ended=report.links_ended,
            consents_paused=report.consents_suspended,
        )
    return report


async def checkpoint(settings: Settings) -> Made:
    """Sign the ledger's tree as it stands (portal.ledger.checkpoints). Refused, and the run
    failed, when the ledger no longer matches an earlier checkpoint or no key can sign.
    ReceiptKeysError once the run is recorded as failed."""
    refused: ReceiptKeysError | None = None
    made = Made(None)
    async with recorded(JobName.CHECKPOINT, utcnow) as run:
        try:
            keys = load_keys(settings)
        except ReceiptKeysError as error:
            run.fail(str(error)[:200])
            refused = error
        else:
            made = await make_checkpoint(signer(keys), checker(keys.public), now=utcnow())
            run.counts["tree_size"] = made.checkpoint.tree_size if made.checkpoint else 0
            run.counts["problems"] = len(made.problems)
            if made.problems:
                run.fail("the ledger does not match its checkpoints: run portal verify-ledger")
    if refused is not None:
        raise refused
    return made


async def _keep_alive(run: Run, stop: asyncio.Event) -> None:
    """The delivery worker as a service: its run is marked alive every few minutes, so the
    privacy officer sees it running (and, once it stops marking, that it stopped)."""
    while not stop.is_set():
        await run.alive(utcnow())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=KEEP_ALIVE_SECONDS)


async def deliver(
    settings: Settings,
    *,
    stop: asyncio.Event | None,
    started: Callable[[], None] = lambda: None,
) -> int:
    """Requests to connected systems: with no `stop`, what is due, then the number sent;
    otherwise until `stop` is set (`started` is called once the secrets are checked).
    SecretsError, once the run is recorded as failed, when a system has no signing secret."""
    refused: SecretsError | None = None
    sent = 0
    async with recorded(JobName.DELIVER, utcnow) as run:
        try:
            await check_published_secrets(settings)
        except SecretsError as error:
            run.fail(str(error))
            refused = error
        else:
            worker = DeliveryWorker(settings)
            try:
                if stop is None:
                    sent = await worker.deliver_all_due()
                    run.counts["sent"] = sent
                else:
                    started()
                    alive = asyncio.create_task(_keep_alive(run, stop))
                    await worker.run(stop)
                    await alive
            finally:
                await worker.close()
    if refused is not None:
        raise refused
    return sent
