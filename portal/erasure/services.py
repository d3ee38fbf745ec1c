"""The one owner of erasing what the portal and its connected systems keep (docs/PROMISES.md
promises 4 and 5): one patron's data for one service, in the caller's transaction, with its
ledger events and deletion requests; retention; and the scheduled compaction. Each erasing
transaction is `portal.db.erasing`, which scrubs the erased rows once it committed."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime

from portal import batches
from portal.batches import Progress, no_progress
from portal.catalog.services import PublishedService, all_services, channel_choices
from portal.consent.models import ConsentState
from portal.contacts.services import erase_contact
from portal.db import Erasure, erasing
from portal.ledger import details
from portal.ledger.models import EventKind
from portal.ledger.services import SYSTEM_JOB, ActingParty, event, record, record_all
from portal.outbox.policy import DeletionReason
from portal.outbox.services import (
    DeletionAsked,
    forget_contacts_on,
    request_deletions,
    request_deletions_of,
    request_retention,
)
from portal.retained_keys.rotation import Rotated, rotate_marked
from portal.stores.base import Cutoff, Expired, Retained
from portal.stores.registry import STORES


@dataclass(frozen=True)
class ErasureOutcome:
    rows: int  # erased here, in the portal
    asked: list[DeletionAsked]  # the connected systems asked to delete theirs


async def erase_service_data(
    erasure: Erasure,
    patron_id: int,
    service: PublishedService,
    reason: DeletionReason,
    *,
    now: datetime,
    party: ActingParty,
) -> ErasureOutcome:
    """Erase every row the service's store kept of the patron (for a service with a store, an
    ERASED event, even when there were none) and ask every connected system holding the
    service's data to delete it (a DELETION_REQUESTED event each), inside the caller's
    `erasing` transaction, the one that ended the consent."""
    rows = 0
    if service.store is not None:
        rows = erasure.deleted(await STORES[service.store].erase(erasure, patron_id))
        await record(
            patron_id,
            EventKind.ERASED,
            party,
            now=now,
            service_id=service.id,
            purposes=service.terms["purposes"],
            detail=details.Erased(rows_deleted=rows),
        )
    contact_erased = False
    choice = service.choice
    if choice is not None and choice.channel is not None:
        contact_erased = await _erase_unused_contact(
            erasure, patron_id, service, choice.channel, now=now, party=party
        )
    asked = await request_deletions(
        patron_id, service, reason, now=now, party=party, contact_erased=contact_erased
    )
    return ErasureOutcome(rows, asked)


async def erase_services_data(
    erasure: Erasure,
    patron_ids: list[int],
    service: PublishedService,
    reason: DeletionReason,
    *,
    now: datetime,
    party: ActingParty,
) -> int:
    """`erase_service_data` for a batch of patrons whose consent to the service ended in the
    caller's erasing transaction (a job's batch): the same rows erased, keys destroyed,
    events (an ERASED each, then their deletion requests) and requests, with a statement
    per table rather than per patron. A message choice's contact is the patron's own
    question (is it the last choice on its channel?), answered one patron at a time.
    Returns the rows erased."""
    channel = service.choice.channel if service.choice is not None else None
    if channel is not None:
        done = [
            await erase_service_data(erasure, patron, service, reason, now=now, party=party)
            for patron in patron_ids
        ]
        return sum(outcome.rows for outcome in done)
    rows = Counter[int]()
    if service.store is not None:
        rows = await STORES[service.store].erase_many(erasure, patron_ids)
        erasure.deleted(rows.total())
        await record_all(
            [
                event(
                    patron,
                    EventKind.ERASED,
                    party,
                    now=now,
                    service_id=service.id,
                    purposes=service.terms["purposes"],
                    detail=details.Erased(rows_deleted=rows[patron]),
                )
                for patron in patron_ids
            ]
        )
    await request_deletions_of(patron_ids, service, reason, now=now, party=party)
    return rows.total()


async def _erase_unused_contact(
    erasure: Erasure,
    patron_id: int,
    service: PublishedService,
    channel: str,
    *,
    now: datetime,
    party: ActingParty,
) -> bool:
    """A message choice just went off: if it was the last on its channel, the number or
    address that channel's messages went to is erased now (an ERASED event naming the
    channel). Returns whether it was."""
    choices = [choice.id for choice in await channel_choices(channel)]
    if await ConsentState.exists(patron_id=patron_id, service_id__in=choices, granted=True):
        return False
    # No message goes this way any more: the systems are told to delete the number or
    # address even when this portal never had it (a choice carried over from a service
    # whose number only the gateway held).
    rows = erasure.deleted(await erase_contact(erasure, patron_id, channel))
    erasure.deleted(await forget_contacts_on(patron_id, channel))
    if rows:
        await record(
            patron_id,
            EventKind.ERASED,
            party,
            now=now,
            service_id=service.id,
            purposes=service.terms["purposes"],
            detail=details.Erased(rows_deleted=rows, contact=channel),
        )
    return True


async def apply_retention(*, now: datetime, today: date, progress: Progress = no_progress) -> int:
    """Scheduled: delete retained rows older than their service's retention period, as each
    notice promises, and record each patron's erasure; and ask each connected system holding
    a service's data to delete its entries older than that too (one request per system and
    day, about every patron). A store's rows go a batch at a time (portal.batches), each
    batch erased with its patrons' ERASED events in its own transaction: a patron whose rows
    fall in two batches gets two events, their rows adding up. Returns the rows deleted here."""
    deleted = 0
    for service in await all_services():
        if service.store is None and not service.systems:
            continue
        cutoff = Cutoff.past(int(service.terms["retention_days"]), now=now, today=today)
        async with erasing():
            await request_retention(service, before=cutoff.day, now=now)
        if service.store is None:
            continue
        after = 0
        while True:
            batch = await _expire_batch(service, service.store, cutoff, now, after)
            deleted += sum(batch.counts.values())
            if batch.taken:
                await progress(sum(batch.counts.values()))
            if batch.taken < batches.BATCH:
                break
            after = batch.last
    return deleted


async def _expire_batch(
    service: PublishedService, store: str, cutoff: Cutoff, now: datetime, after: int
) -> Expired:
    """One batch of a store's rows past the cutoff (above id `after`), erased with their
    events in one transaction."""
    async with erasing() as erasure:
        batch = await STORES[store].expire(cutoff, batches.BATCH, after)
        await record_all(
            [
                event(
                    patron_id,
                    EventKind.ERASED,
                    SYSTEM_JOB,
                    now=now,
                    service_id=service.id,
                    purposes=service.terms["purposes"],
                    detail=details.Erased(rows_deleted=rows, reason="retention"),
                )
                for patron_id, rows in batch.counts.items()
            ]
        )
        erasure.deleted(sum(batch.counts.values()))
    return batch


async def compact(*, now: datetime, progress: Progress = no_progress) -> Rotated:
    """Scheduled: every wrapping key under which a key was destroyed is rotated, online and in
    batches (portal.retained_keys.rotation), so an erased key's wrapped bytes left in a dead
    tuple open under no key that exists. No large table is rewritten under a lock: what is
    left of an erased row in a store's table is sealed under that key, and what is left of
    a number or address in the outbox is sealed under the patron's key for its channel."""
    return await rotate_marked(now=now, progress=progress)


@dataclass(frozen=True)
class StoreRetention:
    """One store against its service's retention limit, for the privacy officer."""

    store: str
    service: str
    retention_days: int
    retained: Retained


async def retention_report(*, now: datetime, today: date) -> list[StoreRetention]:
    """Every published service's store: the oldest item kept and the items past the limit
    (none, while `portal apply-retention` runs every day)."""
    report = []
    for service in await all_services():
        if service.store is None:
            continue
        days = int(service.terms["retention_days"])
        retained = await STORES[service.store].retained(Cutoff.past(days, now=now, today=today))
        report.append(StoreRetention(service.store, service.key, days, retained))
    return report
