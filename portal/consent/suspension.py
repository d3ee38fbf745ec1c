"""Pausing a consent in force: the service is off, nothing new is retained, and what was
kept waits for the patron's answer (or the end of the grace period)."""

from __future__ import annotations

from datetime import datetime

from portal.catalog.models import Service
from portal.consent.models import Actor, Channel, ConsentEvent, ConsentState, EventKind, Method

# Why a consent in force was suspended; each has its own grace period before it expires.
MATERIAL_CHANGE = "material_change"
CAME_OF_AGE = "came_of_age"


async def suspend(state: ConsentState, service: Service, reason: str, now: datetime) -> None:
    """Call inside the transaction that holds the state's row lock."""
    state.suspended_at, state.suspension_reason = now, reason
    state.revision += 1
    state.updated_at = now
    await state.save(update_fields=["suspended_at", "suspension_reason", "revision", "updated_at"])
    await ConsentEvent.create(
        patron_id=state.patron_id,
        service_id=service.id,
        kind=EventKind.SUSPENDED,
        notice_version_id=state.notice_version_id,
        purposes=service.terms["purposes"],
        occurred_at=now,
        method=Method.SYSTEM,
        actor=Actor.SYSTEM,
        channel=Channel.CLI,
        detail={"reason": reason, "terms_revision": service.terms_revision},
    )
