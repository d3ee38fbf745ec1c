"""One-time codes and sliding sessions, one implementation for every purpose, on real SQLite
and PostgreSQL: each purpose keeps its own table, lookups and timings."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tortoise.transactions import in_transaction

from portal.credentials.policy import KeyPurpose, keyed_hash
from portal.credentials.services import hash_secret, verify_secret
from portal.patrons import services as patrons
from portal.patrons.models import PinSetupCode, PortalSession
from portal.staff import services as staff
from portal.staff.models import StaffSession, StaffSetupCode
from portal.staff.policy import Role
from tests.desk import make_staff
from tests.factories import SECRET, make_patron, now

pytestmark = pytest.mark.usefixtures("db")


async def test_a_code_is_kept_only_as_its_purposes_keyed_hash() -> None:
    patron = await make_patron()
    code, _ = await patrons.SETUP_CODES.issue(SECRET, patron.id, now=now(), hours=1)
    stored = await PinSetupCode.get(patron_id=patron.id)
    assert stored.code_lookup == keyed_hash(SECRET, KeyPurpose.PIN_SETUP, code)
    assert await StaffSetupCode.all().count() == 0  # the staff table is another purpose's


async def test_a_claimed_code_uses_up_every_code_of_its_owner() -> None:
    patron = await make_patron()
    first, _ = await patrons.SETUP_CODES.issue(SECRET, patron.id, now=now(), hours=1)
    second, _ = await patrons.SETUP_CODES.issue(SECRET, patron.id, now=now(), hours=1)
    async with in_transaction():
        claimed = await patrons.SETUP_CODES.claim(SECRET, f" {first} ", now=now())
    assert claimed == patron.id
    async with in_transaction():
        assert await patrons.SETUP_CODES.claim(SECRET, second, now=now()) is None
    assert await PinSetupCode.filter(patron_id=patron.id).count() == 0


async def test_an_expired_code_or_another_owners_code_is_refused() -> None:
    member = await make_staff(Role.DESK)
    code, _ = await staff.SETUP_CODES.issue(SECRET, member.staff_id, now=now(), hours=1)
    async with in_transaction():
        later = now() + timedelta(hours=1)
        assert await staff.SETUP_CODES.claim(SECRET, code, now=later) is None
        assert await staff.SETUP_CODES.claim(SECRET, code, now=now(), staff__username="x") is None
        # A patron's table knows nothing of a staff code.
        assert await patrons.SETUP_CODES.claim(SECRET, code, now=now()) is None
    assert await StaffSetupCode.filter(staff_id=member.staff_id).count() == 1


async def test_a_patron_session_slides_only_once_a_minute_has_passed() -> None:
    patron = await make_patron()
    started = now()
    token = await patrons.start_session(SECRET, patron.id, now=started, minutes=30, hours=12)
    before = (await PortalSession.get(patron_id=patron.id)).expires_at
    moment = started + timedelta(seconds=50)
    assert await patrons.session_identity(SECRET, token, now=moment, minutes=30)
    assert (await PortalSession.get(patron_id=patron.id)).expires_at == before
    moment = started + timedelta(seconds=70)
    assert await patrons.session_identity(SECRET, token, now=moment, minutes=30)
    after = (await PortalSession.get(patron_id=patron.id)).expires_at
    assert after == moment + timedelta(minutes=30)


async def test_a_staff_session_slides_once_thirty_seconds_have_passed() -> None:
    member = await make_staff(Role.DESK)
    started = now()
    token = await staff.start_session(
        SECRET, member.staff_id, frozenset({Role.DESK}), now=started, minutes=15, hours=8
    )
    before = (await StaffSession.get(staff_id=member.staff_id)).expires_at
    assert await staff.session_staff(SECRET, token, now=started + timedelta(seconds=20), minutes=15)
    assert (await StaffSession.get(staff_id=member.staff_id)).expires_at == before
    moment = started + timedelta(seconds=40)
    assert await staff.session_staff(SECRET, token, now=moment, minutes=15)
    after = (await StaffSession.get(staff_id=member.staff_id)).expires_at
    assert after == moment + timedelta(minutes=15)


async def test_a_session_token_opens_only_its_own_purposes_sessions() -> None:
    patron = await make_patron()
    token = await patrons.start_session(SECRET, patron.id, now=now(), minutes=30, hours=12)
    assert await staff.session_staff(SECRET, token, now=now(), minutes=15) is None
    assert await staff.end_session(SECRET, token) is None
    assert await PortalSession.filter(patron_id=patron.id).count() == 1


async def test_ending_a_session_says_whose_it_was_and_purging_counts_the_expired() -> None:
    member = await make_staff(Role.DESK)
    roles = frozenset({Role.DESK})
    token = await staff.start_session(
        SECRET, member.staff_id, roles, now=now(), minutes=15, hours=8
    )
    await staff.start_session(SECRET, member.staff_id, roles, now=now(), minutes=15, hours=8)
    assert await staff.end_session(SECRET, token) == member.staff_id
    assert await staff.SESSIONS.purge_expired(now() + timedelta(minutes=16)) == 1
    assert await StaffSession.all().count() == 0


async def test_argon2_accepts_only_the_secret_it_hashed() -> None:
    stored = await hash_secret("a long passphrase")
    assert await verify_secret(stored, "a long passphrase")
    assert not await verify_secret(stored, "a long passphrasE")
    assert not await verify_secret(None, "a long passphrase")
    assert not await verify_secret("not an argon2 hash", "a long passphrase")
