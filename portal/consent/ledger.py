"""Writing the consent ledger: the one place an event is recorded, whoever acts (patron,
guardian, or a scheduled job) and whatever it is about (a service, or the account).
Fields after ISO/IEC TS 27560: notice, language shown, purposes, time, method, actor, channel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from portal.catalog.models import NoticeVersion, Service
from portal.consent.models import Actor, Channel, ConsentEvent, EventKind, Method


@dataclass(frozen=True)
class ActingParty:
    method: Method
    actor: Actor
    channel: Channel
    guardian_id: int | None = None


PATRON_ONLINE = ActingParty(Method.ONLINE, Actor.PATRON, Channel.WEB)
SYSTEM_JOB = ActingParty(Method.SYSTEM, Actor.SYSTEM, Channel.CLI)


def guardian_online(guardian_id: int) -> ActingParty:
    return ActingParty(Method.GUARDIAN, Actor.GUARDIAN, Channel.WEB, guardian_id=guardian_id)


async def record(
    patron_id: int,
    kind: EventKind,
    party: ActingParty,
    *,
    now: datetime,
    service: Service | None = None,
    notice: NoticeVersion | None = None,
    notice_version_id: int | None = None,
    detail: dict[str, object] | None = None,
) -> None:
    """Call inside the transaction of the change the event records."""
    terms = notice.terms if notice else service.terms if service else {"purposes": []}
    await ConsentEvent.create(
        patron_id=patron_id,
        service_id=service.id if service else None,
        kind=kind,
        notice_version_id=notice.id if notice else notice_version_id,
        notice_hash=notice.content_hash if notice else None,
        locale=notice.locale if notice else None,
        purposes=terms["purposes"],
        occurred_at=now,
        method=party.method,
        actor=party.actor,
        channel=party.channel,
        acting_guardian_id=party.guardian_id,
        detail=detail or {},
    )
