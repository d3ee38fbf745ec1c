"""The outbox to connected systems (docs/PROMISES.md promise 4: the downstream deletion is never
lost). Requests are written in the caller's transaction, with the erasure or consent they
follow and their ledger events; a worker delivers them (portal.outbox.delivery), and a
system that answered 202 confirms later. Each confirmed deletion is a ledger event in the
patron's record."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from tortoise.functions import Count
from tortoise.transactions import in_transaction

from portal.batches import Progress, delete_in_batches, no_progress
from portal.catalog.services import PublishedService, connected_systems, services_by_id
from portal.db import insert_rows
from portal.errors import ApiCode, DomainError
from portal.ledger.details import DeletionConfirmed, DeletionRequested
from portal.ledger.models import EventKind
from portal.ledger.services import CONNECTED_SYSTEM, ActingParty, event, record, record_all
from portal.outbox.models import OutboxMessage
from portal.outbox.policy import (
    CONTACT_COLUMN,
    CONTACT_TABLE,
    RETRY_FOR,
    UNCONFIRMED_AFTER,
    DeletionReason,
    DeliveryState,
    MessageKind,
    body_of,
    consent_payload,
    contact_holder,
    contact_payload,
    deletion_payload,
    is_message_id,
    message_of,
    new_message_id,
)
from portal.patrons.models import Patron
from portal.retained_keys.policy import CONTACT_STORE, SealError, contact_store, is_sealed
from portal.retained_keys.services import key_for, keys_of

# Confirmed requests are kept this long for systems catching up (GET /api/v1/deletions);
# the patron's record keeps the requests and confirmations for good (the ledger).
KEEP_CONFIRMED = timedelta(days=30)


class OutboxError(DomainError):
    """An ApiCode: deletion_unknown."""


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds: how the outbox's schedule is compared in SQL on both engines."""
    return int(moment.timestamp() * 1000)


# --- writing requests, inside the caller's transaction -----------------------------------


async def _enqueue(
    system: str,
    kind: MessageKind,
    payload: dict[str, Any],
    *,
    patron_id: int | None,
    service_id: int,
    now: datetime,
    once_key: str | None = None,
) -> str:
    message = await OutboxMessage.create(
        message_id=new_message_id(),
        system=system,
        kind=kind,
        patron_id=patron_id,
        service_id=service_id,
        body=body_of(payload),
        once_key=once_key,
        created_at=now,
        give_up_at=now + RETRY_FOR,
        state=DeliveryState.PENDING,
        due_ms=to_ms(now),
    )
    return message.message_id


async def _patron_reference(patron_id: int) -> str:
    """The patron as connected systems know them: their reference, or for an account made
    before references had a key of their own, the card's keyed hash they were sent then."""
    patron = await Patron.get(id=patron_id)
    return patron.reference or patron.card_lookup


@dataclass(frozen=True)
class DeletionAsked:
    """A connected system just asked to delete a patron's data for a service."""

    system: str  # its key in the catalog
    name: str  # its name, as the ledger records it


async def request_deletions(
    patron_id: int,
    service: PublishedService,
    reason: DeletionReason,
    *,
    now: datetime,
    party: ActingParty,
    contact_erased: bool = False,
) -> list[DeletionAsked]:
    """One deletion request per connected system holding the service's data, each with its
    ledger event. Call in the transaction that ended the consent and erased what the portal
    kept; returns the systems asked. `contact_erased`: for a message choice, the last on its
    channel, so the number or address goes too."""
    if not service.systems:
        return []
    names = {key: system.name for key, system in (await connected_systems()).items()}
    reference = await _patron_reference(patron_id)
    message = None
    if service.choice is not None:
        message = message_of(service.choice)
        if service.choice.channel is not None:
            message["contact_erased"] = contact_erased
    payload = deletion_payload(
        service=service.key, patron=reference, reason=reason, requested_at=now, message=message
    )
    for system in service.systems:
        message_id = await _enqueue(
            system,
            MessageKind.DELETION_REQUESTED,
            payload,
            patron_id=patron_id,
            service_id=service.id,
            now=now,
        )
        await record(
            patron_id,
            EventKind.DELETION_REQUESTED,
            party,
            now=now,
            service_id=service.id,
            purposes=service.terms["purposes"],
            detail=DeletionRequested(
                system=system,
                system_name=names.get(system, system),
                request=message_id,
                reason=reason.value,
            ),
        )
    return [DeletionAsked(system, names.get(system, system)) for system in service.systems]


async def request_deletions_of(
    patron_ids: list[int],
    service: PublishedService,
    reason: DeletionReason,
    *,
    now: datetime,
    party: ActingParty,
) -> None:
    """`request_deletions` for a batch of patrons (a job's batch; a service that is not a
    message choice): the same requests and events, in each patron's order, written in one
    statement each rather than two per patron and system."""
    if service.choice is not None and service.choice.channel is not None:
        # Whether the contact goes too is each patron's own answer (`request_deletions`).
        raise ValueError("a message choice's requests are made one patron at a time")
    if not service.systems or not patron_ids:
        return
    message = message_of(service.choice) if service.choice is not None else None
    names = {key: system.name for key, system in (await connected_systems()).items()}
    rows = await Patron.filter(id__in=patron_ids).values("id", "reference", "card_lookup")
    references = {int(row["id"]): row["reference"] or row["card_lookup"] for row in rows}
    messages: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for patron_id in patron_ids:
        payload = deletion_payload(
            service=service.key,
            patron=references[patron_id],
            reason=reason,
            requested_at=now,
            message=message,
        )
        for system in service.systems:
            # Column for column as `_enqueue` writes one.
            message_id = new_message_id()
            messages.append(
                dict(
                    message_id=message_id,
                    system=system,
                    kind=MessageKind.DELETION_REQUESTED,
                    patron_id=patron_id,
                    service_id=service.id,
                    body=body_of(payload),
                    once_key=None,
                    created_at=now,
                    give_up_at=now + RETRY_FOR,
                    state=DeliveryState.PENDING,
                    due_ms=to_ms(now),
                )
            )
            events.append(
                event(
                    patron_id,
                    EventKind.DELETION_REQUESTED,
                    party,
                    now=now,
                    service_id=service.id,
                    purposes=service.terms["purposes"],
                    detail=DeletionRequested(
                        system=system,
                        system_name=names.get(system, system),
                        request=message_id,
                        reason=reason.value,
                    ),
                )
            )
    await insert_rows(OutboxMessage, messages)
    await record_all(events)


async def notify_consent_given(
    patron_id: int,
    service: PublishedService,
    *,
    now: datetime,
    contact: str | None = None,
    carried_from: str | None = None,
) -> int:
    """Tell the service's connected systems they may now keep and use the patron's data (the
    SMS gateway may send). Call in the transaction that recorded the consent. `contact`: for
    a message choice, the number or address its messages go to."""
    if not service.systems:
        return 0
    message = None
    if service.choice is not None:
        message = message_of(service.choice)
        if service.choice.channel is not None:
            channel = service.choice.channel
            message["contact"] = (
                None if contact is None else await _seal(patron_id, channel, contact, now)
            )
        if carried_from is not None:
            message["carried_from"] = carried_from
    payload = consent_payload(
        service=service.key,
        patron=await _patron_reference(patron_id),
        given_at=now,
        message=message,
    )
    for system in service.systems:
        await _enqueue(
            system,
            MessageKind.CONSENT_GIVEN,
            payload,
            patron_id=patron_id,
            service_id=service.id,
            now=now,
        )
    return len(service.systems)


async def notify_contact_changed(
    patron_id: int, channel: str, contact: str, systems: list[tuple[str, int]], *, now: datetime
) -> int:
    """Tell each system holding the patron's contact detail for a channel (key, and a
    message choice it holds it for) that it changed. In the transaction that changed it."""
    payload = contact_payload(
        patron=await _patron_reference(patron_id),
        channel=channel,
        contact=await _seal(patron_id, channel, contact, now),
        changed_at=now,
    )
    for system, service_id in systems:
        await _enqueue(
            system,
            MessageKind.CONTACT_CHANGED,
            payload,
            patron_id=patron_id,
            service_id=service_id,
            now=now,
        )
    return len(systems)


async def _seal(patron_id: int, channel: str, contact: str, now: datetime) -> str:
    """The number or address as the stored request keeps it: sealed under the patron's key
    for the channel (portal.retained_keys), which erasing or replacing it destroys, so no
    copy of the request (a dead tuple, a backup) shows it afterwards. Opened when sent."""
    key = await key_for(patron_id, contact_store(channel), now=now)
    return key.seal(CONTACT_TABLE, CONTACT_COLUMN, contact)


async def bodies_to_send(messages: list[OutboxMessage]) -> dict[int, str]:
    """Each request's body as a system is sent it: its number or address opened, so the
    bytes are those written before contacts were sealed, the same on every retry while the
    key lives. One whose key was destroyed (the number erased or replaced) goes with the
    contact null, as an erased number is taken out of a request."""
    holders = {
        message.id: (payload, holder)
        for message in messages
        if message.patron_id is not None
        and (holder := contact_holder(message.kind, payload := json.loads(message.body)))
        is not None
        and isinstance(holder.get("contact"), str)
        and is_sealed(holder["contact"])
    }
    bodies = {message.id: message.body for message in messages}
    if not holders:
        return bodies
    patrons = sorted({m.patron_id for m in messages if m.id in holders and m.patron_id})
    keys = await keys_of(patrons, CONTACT_STORE)
    for message in messages:
        if message.id not in holders or message.patron_id is None:
            continue
        payload, holder = holders[message.id]
        key = keys.get((message.patron_id, contact_store(str(holder.get("channel")))))
        try:
            if key is None:
                raise SealError
            holder["contact"] = key.open(CONTACT_TABLE, CONTACT_COLUMN, holder["contact"])
        except SealError:
            holder["contact"] = None
        bodies[message.id] = body_of(payload)
    return bodies


async def forget_contacts_on(patron_id: int, channel: str) -> int:
    """The patron's number or address for a channel was erased or replaced: it is taken out
    of every request to connected systems that carried it (kept up to 30 days after
    delivery; a request still waiting is sent without it), whatever it was. It was sealed
    there under the key just destroyed; the request is left saying plainly that it has
    none. After a restore, the requests restored with it may carry one too. Returns the
    requests rewritten. In the erasing transaction."""
    rewritten = 0
    for message in await OutboxMessage.filter(
        patron_id=patron_id, kind__in=(MessageKind.CONSENT_GIVEN, MessageKind.CONTACT_CHANGED)
    ).select_for_update():
        payload = json.loads(message.body)
        found = contact_holder(message.kind, payload)
        if found is None or found.get("channel") != channel or not found.get("contact"):
            continue
        found["contact"] = None
        message.body = body_of(payload)
        await message.save(update_fields=["body"])
        rewritten += 1
    return rewritten


async def request_retention(service: PublishedService, *, before: date, now: datetime) -> int:
    """Ask each connected system to delete every patron's entries of the service dated
    before `before`: one request per system and day, whoever runs the job how often."""
    written = 0
    for system in service.systems:
        once_key = f"{system}:{service.key}:{before.isoformat()}"
        if await OutboxMessage.exists(once_key=once_key):
            continue
        payload = deletion_payload(
            service=service.key,
            patron=None,
            reason=DeletionReason.RETENTION,
            requested_at=now,
            before=before,
        )
        await _enqueue(
            system,
            MessageKind.DELETION_REQUESTED,
            payload,
            patron_id=None,
            service_id=service.id,
            now=now,
            once_key=once_key,
        )
        written += 1
    return written


async def record_confirmation(
    message_pk: int, *, now: datetime, via: str, client_id: int | None = None
) -> None:
    message = await OutboxMessage.get(id=message_pk)
    if message.patron_id is None:
        return  # a retention request about every patron is nobody's record
    await record_confirmations(
        [(message.message_id, message.system, message.patron_id, message.service_id)],
        now=now,
        via=via,
        client_id=client_id,
    )


async def record_confirmations(
    confirmed: list[tuple[str, str, int, int]],
    *,
    now: datetime,
    via: str,
    client_id: int | None = None,
) -> None:
    """Each confirmed deletion (its webhook-id, system, patron and service) in the patron's
    record; the catalog read once for a worker's whole batch of answers."""
    if not confirmed:
        return
    services = await services_by_id(sorted({service_id for *_, service_id in confirmed}))
    names = {key: system.name for key, system in (await connected_systems()).items()}
    events = []
    for message_id, system, patron_id, service_id in confirmed:
        detail = DeletionConfirmed(
            system=system, system_name=names.get(system, system), request=message_id, via=via
        )
        if client_id is not None:
            detail["client"] = client_id  # the API client that acknowledged it
        events.append(
            event(
                patron_id,
                EventKind.DELETION_CONFIRMED,
                CONNECTED_SYSTEM,
                now=now,
                service_id=service_id,
                purposes=services[service_id].terms["purposes"],
                detail=detail,
            )
        )
    await record_all(events)


# --- what systems and the privacy officer read --------------------------------------------


@dataclass(frozen=True)
class DeletionRequest:
    id: str  # the webhook-id
    position: int  # for paging (GET /api/v1/deletions?after=)
    system: str
    service: str
    patron: str | None
    reason: str
    before: str | None
    requested_at: datetime
    state: DeliveryState
    attempts: int
    last_error: str | None
    confirmed_at: datetime | None


def _request(message: OutboxMessage) -> DeletionRequest:
    data = json.loads(message.body)["data"]
    return DeletionRequest(
        id=message.message_id,
        position=message.id,
        system=message.system,
        service=data["service"],
        patron=data["patron"],
        reason=data["reason"],
        before=data.get("before"),
        requested_at=message.created_at,
        state=message.state,
        attempts=message.attempts,
        last_error=message.last_error,
        confirmed_at=message.confirmed_at,
    )


async def acknowledge(
    message_id: str, *, system: str, client_id: int, now: datetime
) -> DeletionRequest:
    """A system confirms a deletion it accepted earlier (or caught up on): idempotent, one
    ledger event however often it is acknowledged. Another system's request is unknown to it,
    and so is an id no request could have (checked before the database sees it)."""
    if not is_message_id(message_id):
        raise OutboxError(ApiCode.DELETION_UNKNOWN)
    async with in_transaction():
        message = (
            await OutboxMessage.filter(
                message_id=message_id, kind=MessageKind.DELETION_REQUESTED, system=system
            )
            .select_for_update()
            .first()
        )
        if message is None:
            raise OutboxError(ApiCode.DELETION_UNKNOWN)
        if message.state is not DeliveryState.CONFIRMED:
            message.state = DeliveryState.CONFIRMED
            message.confirmed_at, message.confirmed_via = now, "ack"
            message.claim, message.lease_until_ms = None, 0
            await message.save(
                update_fields=["state", "confirmed_at", "confirmed_via", "claim", "lease_until_ms"]
            )
            await record_confirmation(message.id, now=now, via="ack", client_id=client_id)
    return _request(message)


async def deletion_requests(
    *, system: str | None, unconfirmed_only: bool, after: int, limit: int
) -> list[DeletionRequest]:
    """Deletion requests in the order they were written, for a system catching up."""
    query = OutboxMessage.filter(kind=MessageKind.DELETION_REQUESTED, id__gt=after)
    if system is not None:
        query = query.filter(system=system)
    if unconfirmed_only:
        query = query.exclude(state=DeliveryState.CONFIRMED)
    return [_request(message) for message in await query.order_by("id").limit(limit)]


async def unconfirmed(*, now: datetime) -> list[DeletionRequest]:
    """Deletions not confirmed a day after they were requested: the privacy officer's list."""
    late = await (
        OutboxMessage.filter(
            kind=MessageKind.DELETION_REQUESTED, created_at__lte=now - UNCONFIRMED_AFTER
        )
        .exclude(state=DeliveryState.CONFIRMED)
        .order_by("id")
    )
    return [_request(message) for message in late]


async def summary() -> Counter[tuple[str, str, str]]:
    """Requests by (system, kind, state)."""
    rows = (
        await OutboxMessage.all()
        .annotate(count=Count("id"))
        .group_by("system", "kind", "state")
        .values("system", "kind", "state", "count")
    )
    return Counter(
        {(row["system"], str(row["kind"]), str(row["state"])): row["count"] for row in rows}
    )


async def retry_given_up(*, now: datetime) -> int:
    """The privacy officer fixed what stopped a system (its endpoint, its secret): requests
    it gave up on are sent again, with three more days."""
    retried: int = await OutboxMessage.filter(state=DeliveryState.GAVE_UP).update(
        state=DeliveryState.PENDING, due_ms=to_ms(now), give_up_at=now + RETRY_FOR
    )
    return retried


async def purge_confirmed(*, now: datetime, progress: Progress = no_progress) -> int:
    confirmed = OutboxMessage.filter(
        state=DeliveryState.CONFIRMED, confirmed_at__lt=now - KEEP_CONFIRMED
    )
    return await delete_in_batches(confirmed, progress)
