"""Pausing a consent in force: the service is off, nothing new is retained, and what was
kept waits for the patron's answer (or the end of the grace period)."""

from __future__ import annotations

from datetime import datetime

from portal.catalog.models import Service
from portal.consent.ledger import SYSTEM_JOB, record
from portal.consent.models import ConsentState, EventKind

# Why a consent in force was suspended; each has its own grace period before it expires.
MATERIAL_CHANGE = "material_change"
CAME_OF_AGE = "came_of_age"


async def suspend(state: ConsentState, service: Service, reason: str, now: datetime) -> None:
    """Call inside the transaction that holds the state's row lock."""
    state.suspended_at, state.suspension_reason = now, reason
    state.revision += 1
    state.updated_at = now
    await state.save(update_fields=["suspended_at", "suspension_reason", "revision", "updated_at"])
    await record(
        state.patron_id,
        EventKind.SUSPENDED,
        SYSTEM_JOB,
        now=now,
        service=service,
        notice_version_id=state.notice_version_id,
        detail={"reason": reason, "terms_revision": service.terms_revision},
    )
