"""The staff audit trail: every staff action, appended in the transaction of the action
where there is one. The database refuses UPDATE and DELETE on it (migration 0007). Patrons
appear only as a keyed hash of their id; card numbers, choices and library use never."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from portal.credentials.policy import KeyPurpose, keyed_hash
from portal.staff.models import StaffAuditEvent
from portal.staff.policy import SHOWN_TO_PATRON, AuditAction
from portal.staff.services import StaffIdentity

TRAIL_PAGE = 100


def patron_key(secret: str, patron_id: int) -> str:
    return keyed_hash(secret, KeyPurpose.AUDIT_PATRON, str(patron_id))


async def append(
    staff: StaffIdentity,
    action: AuditAction,
    *,
    now: datetime,
    patron_key: str | None = None,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    await StaffAuditEvent.create(
        staff_id=staff.staff_id,
        staff_name=staff.display_name,
        action=action.value,
        patron_key=patron_key,
        reason=reason[:200] if reason else None,
        detail=detail or {},
        occurred_at=now,
    )


@dataclass(frozen=True)
class TrailEntry:
    id: int
    occurred_at: datetime
    staff_id: int
    staff_name: str
    action: str
    patron_key: str | None
    reason: str | None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrailFilter:
    action: str | None = None
    staff_id: int | None = None
    patron_key: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def trail(filters: TrailFilter, *, before_id: int | None = None) -> list[TrailEntry]:
    """The newest entries first, one page at a time."""
    query = StaffAuditEvent.all()
    if filters.action:
        query = query.filter(action=filters.action)
    if filters.staff_id is not None:
        query = query.filter(staff_id=filters.staff_id)
    if filters.patron_key:
        query = query.filter(patron_key=filters.patron_key)
    if filters.since:
        query = query.filter(occurred_at__gte=filters.since)
    if filters.until:
        query = query.filter(occurred_at__lt=filters.until)
    if before_id is not None:
        query = query.filter(id__lt=before_id)
    events = await query.order_by("-id").limit(TRAIL_PAGE)
    return [
        TrailEntry(
            event.id,
            event.occurred_at,
            event.staff_id,
            event.staff_name,
            event.action,
            event.patron_key,
            event.reason,
            event.detail,
        )
        for event in events
    ]


@dataclass(frozen=True)
class StaffActionOnAccount:
    """What a patron is told: what library staff did on their account, and when (never who)."""

    occurred_at: datetime
    action: AuditAction


async def actions_on(secret: str, patron_id: int) -> list[StaffActionOnAccount]:
    events = await StaffAuditEvent.filter(
        patron_key=patron_key(secret, patron_id),
        action__in=[action.value for action in SHOWN_TO_PATRON],
    ).order_by("id")
    return [StaffActionOnAccount(event.occurred_at, AuditAction(event.action)) for event in events]
