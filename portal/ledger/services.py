"""Writing and reading the consent ledger: the one place an event is recorded, whoever acts
(patron, guardian, or a scheduled job) and whatever it is about (a service, or the account)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from portal.ledger.details import EventDetail, NoDetail, checked, read_detail
from portal.ledger.models import Actor, Channel, ConsentEvent, EventKind, Method


@dataclass(frozen=True)
class ActingParty:
    method: Method
    actor: Actor
    channel: Channel
    guardian_id: int | None = None
    witness: str | None = None  # the staff pseudonym, at the desk


PATRON_ONLINE = ActingParty(Method.ONLINE, Actor.PATRON, Channel.WEB)
SYSTEM_JOB = ActingParty(Method.SYSTEM, Actor.SYSTEM, Channel.CLI)
# A connected system confirming a deletion (its answer, or its acknowledgement later).
CONNECTED_SYSTEM = ActingParty(Method.SYSTEM, Actor.SYSTEM, Channel.API)


def guardian_online(guardian_id: int) -> ActingParty:
    return ActingParty(Method.GUARDIAN, Actor.GUARDIAN, Channel.WEB, guardian_id=guardian_id)


def guardian_at_desk(guardian_id: int, witness: str | None = None) -> ActingParty:
    """Staff checked the relationship in person; the guardian is the one who acts."""
    channel = Channel.DESK if witness else Channel.CLI
    return ActingParty(Method.DESK_HANDOVER, Actor.GUARDIAN, channel, guardian_id, witness)


def patron_at_desk(witness: str) -> ActingParty:
    """The patron decides on the library's screen, handed over to them."""
    return ActingParty(Method.DESK_HANDOVER, Actor.PATRON, Channel.DESK, witness=witness)


def library_staff(witness: str | None) -> ActingParty:
    """Staff acting on an account (ending a guardian link), not on anyone's consent."""
    channel = Channel.DESK if witness else Channel.CLI
    return ActingParty(Method.SYSTEM, Actor.SYSTEM, channel, witness=witness)


@dataclass(frozen=True)
class NoticeShown:
    """The exact notice version an event is about, as the patron saw it."""

    version_id: int
    content_hash: str  # of the text on screen: the child's version's own hash for a child
    locale: str
    audience: str = "adult"  # "adult": the full notice; "child": its child's version


@dataclass(frozen=True)
class LedgerEntry:
    """One event as the patron's record shows it."""

    occurred_at: datetime
    kind: EventKind
    actor: Actor
    service_id: int | None
    service_key: str | None
    notice_version_id: int | None
    notice_hash: str | None
    locale: str | None
    detail: EventDetail = field(default_factory=NoDetail)
    audience: str | None = None  # which text was shown: "adult" or "child"
    channel: Channel = Channel.WEB
    method: Method = Method.ONLINE
    witnessed_by: str | None = None
    event_id: int = 0  # the ledger row, which a signed receipt names
    notice_revision: int | None = None  # of the notice version shown, for its public address


async def record(
    patron_id: int,
    kind: EventKind,
    party: ActingParty,
    *,
    now: datetime,
    service_id: int | None = None,
    purposes: list[str] | tuple[str, ...] = (),
    notice: NoticeShown | None = None,
    notice_version_id: int | None = None,
    detail: EventDetail | None = None,
) -> None:
    """Call inside the transaction of the change the event records (docs/PROMISES.md promise 5)."""
    await ConsentEvent.create(
        patron_id=patron_id,
        service_id=service_id,
        kind=kind,
        notice_version_id=notice.version_id if notice else notice_version_id,
        notice_hash=notice.content_hash if notice else None,
        locale=notice.locale if notice else None,
        notice_audience=notice.audience if notice else None,
        purposes=list(purposes),
        occurred_at=now,
        method=party.method,
        actor=party.actor,
        channel=party.channel,
        acting_guardian_id=party.guardian_id,
        detail=checked(kind, detail or NoDetail()),
        witnessed_by=party.witness,
    )


@dataclass(frozen=True)
class Event:
    """One of several events one party records at one moment (record_all)."""

    patron_id: int
    kind: EventKind
    service_id: int | None
    purposes: list[str]
    detail: EventDetail


async def record_all(events: list[Event], party: ActingParty, *, now: datetime) -> None:
    """As record, for each event, in one statement: a delivery worker's batch of deletions
    confirmed by their answers. Call inside the transaction of the change they record."""
    await ConsentEvent.bulk_create(
        [
            ConsentEvent(
                patron_id=event.patron_id,
                service_id=event.service_id,
                kind=event.kind,
                purposes=list(event.purposes),
                occurred_at=now,
                method=party.method,
                actor=party.actor,
                channel=party.channel,
                acting_guardian_id=party.guardian_id,
                detail=checked(event.kind, event.detail),
                witnessed_by=party.witness,
            )
            for event in events
        ]
    )


async def entries(patron_id: int) -> list[LedgerEntry]:
    return [
        LedgerEntry(
            occurred_at=event.occurred_at,
            kind=event.kind,
            actor=event.actor,
            service_id=event.service_id,
            service_key=event.service.key if event.service else None,  # type: ignore[attr-defined]
            notice_version_id=event.notice_version_id,
            notice_hash=event.notice_hash,
            locale=event.locale,
            detail=read_detail(event.kind, event.detail),
            audience=event.notice_audience,
            channel=event.channel,
            method=event.method,
            witnessed_by=event.witnessed_by,
            event_id=event.id,
            notice_revision=getattr(event.notice_version, "revision", None),
        )
        for event in await ConsentEvent.filter(patron_id=patron_id).select_related(
            "service", "notice_version"
        )
    ]
