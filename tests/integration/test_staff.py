"""Staff accounts, sessions, the identity-provider sign-in state and the staff audit trail,
on real SQLite and PostgreSQL, including the parallel cases."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from tortoise.connection import connections
from tortoise.exceptions import IntegrityError

from portal.errors import StaffCode
from portal.staff import audit
from portal.staff import services as staff
from portal.staff.models import StaffAuditEvent, StaffMember
from portal.staff.policy import AuditAction, Role, StaffError
from tests.desk import make_staff
from tests.factories import SECRET, now

pytestmark = pytest.mark.usefixtures("db")


async def test_a_setup_code_works_once_and_the_password_is_never_stored() -> None:
    new = await staff.add_local_staff(
        SECRET, "Dana", "Dana", frozenset({Role.DESK}), now=now(), setup_code_hours=1
    )
    await staff.set_password_with_code(
        SECRET, "dana", new.setup_code, "a long passphrase", now=now()
    )
    member = await StaffMember.get(id=new.staff_id)
    assert member.password_hash is not None
    assert "a long passphrase" not in member.password_hash
    with pytest.raises(StaffError) as again:
        await staff.set_password_with_code(
            SECRET, "dana", new.setup_code, "another phrase!", now=now()
        )
    assert again.value.code is StaffCode.SETUP_CODE_INVALID
    assert await staff.authenticate_local("DANA", "a long passphrase") == (
        new.staff_id,
        frozenset({Role.DESK}),
    )


async def test_a_username_is_taken_once() -> None:
    await make_staff(Role.DESK)
    existing = await StaffMember.first()
    assert existing is not None
    with pytest.raises(StaffError) as taken:
        await staff.add_local_staff(
            SECRET,
            existing.username or "",
            "x",
            frozenset({Role.DESK}),
            now=now(),
            setup_code_hours=1,
        )
    assert taken.value.code is StaffCode.USERNAME_TAKEN


async def test_a_staff_session_ends_after_its_idle_time_and_its_lifetime() -> None:
    member = await make_staff(Role.DESK)
    start = now()
    token = await staff.start_session(
        SECRET, member.staff_id, frozenset({Role.DESK}), now=start, minutes=10, hours=1
    )
    assert await staff.session_staff(SECRET, token, now=start + timedelta(minutes=9), minutes=10)
    assert (
        await staff.session_staff(SECRET, token, now=start + timedelta(minutes=25), minutes=10)
        is None
    )
    token = await staff.start_session(
        SECRET, member.staff_id, frozenset({Role.DESK}), now=start, minutes=10, hours=1
    )
    for minutes in range(8, 72, 8):  # active all along, but the shift is over after an hour
        seen = await staff.session_staff(
            SECRET, token, now=start + timedelta(minutes=minutes), minutes=10
        )
    assert seen is None


async def test_a_sign_in_state_is_taken_once_even_by_parallel_callbacks() -> None:
    token = await staff.save_signin_state(SECRET, {"_state_library_x": {"data": 1}}, now=now())
    taken = await asyncio.gather(
        *(staff.take_signin_state(SECRET, token, now=now()) for _ in range(10))
    )
    assert sum(1 for state in taken if state is not None) == 1


async def test_one_account_for_a_provider_identity_signing_in_twice_at_once() -> None:
    ids = await asyncio.gather(
        *(
            staff.staff_from_provider(SECRET, "https://id.example", "sub-1", "Dana", now=now())
            for _ in range(5)
        )
    )
    assert len(set(ids)) == 1
    assert await StaffMember.all().count() == 1


@pytest.mark.parametrize(
    "statement", ["UPDATE staff_audit_event SET reason = 'x'", "DELETE FROM staff_audit_event"]
)
async def test_the_database_refuses_to_change_or_delete_the_staff_audit_trail(
    statement: str,
) -> None:
    member = await make_staff(Role.DESK)
    identity = await staff.identity_of(member.staff_id)
    await audit.append(identity, AuditAction.PIN_RESET, now=now(), patron_key="k", reason="r")
    with pytest.raises(IntegrityError, match="append-only"):
        await connections.get("default").execute_query(statement)
    with pytest.raises(IntegrityError, match="append-only"):
        await StaffAuditEvent.all().delete()
    assert [event.reason for event in await StaffAuditEvent.all()] == ["r"]


async def test_the_trail_filters_and_the_patron_sees_only_actions_on_their_account() -> None:
    member = await make_staff(Role.DESK)
    identity = await staff.identity_of(member.staff_id)
    mine, theirs = audit.patron_key(SECRET, 1), audit.patron_key(SECRET, 2)
    await audit.append(identity, AuditAction.PIN_RESET, now=now(), patron_key=mine)
    await audit.append(identity, AuditAction.CARD_LOOKED_UP, now=now(), patron_key=theirs)
    await audit.append(identity, AuditAction.SIGNED_IN, now=now())
    resets = await audit.trail(audit.TrailFilter(action="pin_reset"))
    assert [entry.patron_key for entry in resets] == [mine]
    assert [a.action for a in await audit.actions_on(SECRET, 1)] == [AuditAction.PIN_RESET]
