"""The operator's staff-account use cases (`portal staff …`, `portal demo-desk`): each with
its line in the staff audit trail, in the same transaction."""

from __future__ import annotations

from datetime import datetime

from tortoise.transactions import in_transaction

from portal.staff import audit
from portal.staff.policy import AuditAction, Role, StaffError
from portal.staff.services import (
    NewStaff,
    StaffIdentity,
    add_local_staff,
    has_password,
    identity_of,
    reissue_setup_code,
)


async def add_staff(
    secret: str,
    by: StaffIdentity,
    username: str,
    display_name: str,
    roles: frozenset[Role],
    *,
    now: datetime,
    setup_code_hours: int,
) -> NewStaff:
    async with in_transaction():
        new = await add_local_staff(
            secret, username, display_name, roles, now=now, setup_code_hours=setup_code_hours
        )
        member = await identity_of(new.staff_id)
        await audit.append(by, AuditAction.STAFF_ADDED, now=now, detail={"staff": member.pseudonym})
    return new


async def demo_desk(
    secret: str, username: str, *, now: datetime, setup_code_hours: int
) -> NewStaff | None:
    """Development mode's desk account (desk and privacy officer): made once, a new setup
    code while its password is unset; None once it has one."""
    try:
        return await add_local_staff(
            secret,
            username,
            "Demo desk",
            frozenset({Role.DESK, Role.PRIVACY_OFFICER}),
            now=now,
            setup_code_hours=setup_code_hours,
        )
    except StaffError:
        if await has_password(username):
            return None
        return await reissue_setup_code(
            secret, username, now=now, setup_code_hours=setup_code_hours
        )
