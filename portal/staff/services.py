"""Staff accounts and sessions: local accounts whose holders set their own password with a
one-time code, accounts from the library's identity provider, and staff sessions, which are
never patron sessions (their own table and cookie, a shorter idle timeout)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from portal.batches import Progress, delete_in_batches, no_progress
from portal.credentials.policy import KeyPurpose, keyed_hash
from portal.credentials.services import (
    OneTimeCodes,
    SlidingSessions,
    hash_secret,
    verify_secret,
)
from portal.errors import StaffCode
from portal.staff.models import (
    StaffMember,
    StaffSession,
    StaffSetupCode,
    StaffSignInState,
)
from portal.staff.policy import Role, StaffError, check_new_password, format_roles, parse_roles

SIGNIN_STATE_MINUTES = 10


def _setup_code() -> str:
    return "-".join(f"{secrets.randbelow(10_000):04d}" for _ in range(4))


SETUP_CODES = OneTimeCodes(StaffSetupCode, KeyPurpose.STAFF_SETUP, "staff_id", _setup_code)
_SESSION_QUERY = (
    "SELECT s.id, s.roles, s.expires_at, s.ends_at, s.staff_id, m.display_name, m.pseudonym "
    "FROM staff_session s JOIN staff_member m ON m.id = s.staff_id WHERE s.token_lookup = ?"
)
# A staff session idles out sooner than a patron's (ten minutes, not thirty): its timeout is
# written forward once thirty seconds have passed, not a minute, so it lags use less.
SESSIONS = SlidingSessions(
    StaffSession,
    KeyPurpose.STAFF_SESSION,
    "staff_id",
    _SESSION_QUERY,
    renew_after=timedelta(seconds=30),
)


@dataclass(frozen=True)
class StaffIdentity:
    """Who a desk request comes from, and what they may do in this session."""

    staff_id: int
    display_name: str
    pseudonym: str
    roles: frozenset[Role]

    def has(self, role: Role) -> bool:
        return role in self.roles


@dataclass(frozen=True)
class NewStaff:
    staff_id: int
    setup_code: str
    expires_at: datetime


def _pseudonym() -> str:
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "staff-" + "".join(secrets.choice(alphabet) for _ in range(6))


def _normalise_username(username: str) -> str:
    return username.strip().lower()


async def add_local_staff(
    secret: str,
    username: str,
    display_name: str,
    roles: frozenset[Role],
    *,
    now: datetime,
    setup_code_hours: int,
) -> NewStaff:
    name = _normalise_username(username)
    try:
        async with in_transaction():
            member = await StaffMember.create(
                subject_lookup=keyed_hash(secret, KeyPurpose.STAFF, f"local:{name}"),
                username=name,
                display_name=display_name.strip()[:100] or name,
                pseudonym=_pseudonym(),
                roles=format_roles(roles),
                source="local",
                created_at=now,
            )
            code, expires_at = await SETUP_CODES.issue(
                secret, member.id, now=now, hours=setup_code_hours
            )
    except IntegrityError:
        raise StaffError(StaffCode.USERNAME_TAKEN) from None
    return NewStaff(member.id, code, expires_at)


async def reissue_setup_code(
    secret: str, username: str, *, now: datetime, setup_code_hours: int
) -> NewStaff:
    """A new code for a local account (forgotten password); its sessions end."""
    member = await StaffMember.get_or_none(username=_normalise_username(username), source="local")
    if member is None:
        raise StaffError(StaffCode.SIGNIN_FAILED)
    async with in_transaction():
        await SETUP_CODES.revoke(member.id)
        await SESSIONS.end_all(member.id)
        code, expires_at = await SETUP_CODES.issue(
            secret, member.id, now=now, hours=setup_code_hours
        )
    return NewStaff(member.id, code, expires_at)


async def set_password_with_code(
    secret: str, username: str, code: str, password: str, *, now: datetime
) -> int:
    check_new_password(password)
    password_hash = await hash_secret(password)
    async with in_transaction():
        staff_id = await SETUP_CODES.claim(
            secret, code, now=now, staff__username=_normalise_username(username)
        )
        if staff_id is None:
            raise StaffError(StaffCode.SETUP_CODE_INVALID)
        await StaffMember.filter(id=staff_id).update(password_hash=password_hash)
        await SESSIONS.end_all(staff_id)
    return staff_id


async def has_password(username: str) -> bool:
    member = await StaffMember.get_or_none(username=_normalise_username(username), source="local")
    return member is not None and member.password_hash is not None


async def authenticate_local(username: str, password: str) -> tuple[int, frozenset[Role]]:
    """The staff member's id and roles, or StaffError(signin_failed) whatever was wrong."""
    name = _normalise_username(username)
    # A name longer than the column can be no one's (the lookup would refuse the value);
    # the password is still checked, so the refusal takes as long as any other.
    member = (
        await StaffMember.get_or_none(username=name, source="local") if len(name) <= 60 else None
    )
    stored = member.password_hash if member else None
    if not await verify_secret(stored, password) or member is None:
        raise StaffError(StaffCode.SIGNIN_FAILED)
    return member.id, parse_roles(member.roles)


async def staff_from_provider(
    secret: str, issuer: str, subject: str, display_name: str, *, now: datetime
) -> int:
    """The account for an identity the library's provider vouched for, made at first
    sign-in; the display name follows the provider's."""
    lookup = keyed_hash(secret, KeyPurpose.STAFF, f"oidc:{issuer} {subject}")
    name = display_name.strip()[:100] or "—"
    member = await StaffMember.get_or_none(subject_lookup=lookup)
    if member is None:
        try:
            member = await StaffMember.create(
                subject_lookup=lookup,
                display_name=name,
                pseudonym=_pseudonym(),
                roles="",  # the provider's groups decide, per session
                source="oidc",
                created_at=now,
            )
        except IntegrityError:  # the same person signing in twice at once
            member = await StaffMember.get(subject_lookup=lookup)
    elif member.display_name != name:
        await StaffMember.filter(id=member.id).update(display_name=name)
    return member.id


async def command_line_operator(secret: str, login: str, *, now: datetime) -> StaffIdentity:
    """Whoever runs a `portal` command, named by their login on the server, so the audit
    trail holds command-line actions too. Such an account has no role: it cannot sign in."""
    lookup = keyed_hash(secret, KeyPurpose.STAFF, f"cli:{login}")
    member = await StaffMember.get_or_none(subject_lookup=lookup)
    if member is None:
        try:
            member = await StaffMember.create(
                subject_lookup=lookup,
                display_name=f"{login[:80]} (command line)",
                pseudonym=_pseudonym(),
                roles="",
                source="cli",
                created_at=now,
            )
        except IntegrityError:
            member = await StaffMember.get(subject_lookup=lookup)
    return StaffIdentity(member.id, member.display_name, member.pseudonym, frozenset())


async def start_session(
    secret: str, staff_id: int, roles: frozenset[Role], *, now: datetime, minutes: int, hours: int
) -> str:
    if not roles:
        raise StaffError(StaffCode.NOT_STAFF)
    return await SESSIONS.start(
        secret, staff_id, now=now, minutes=minutes, hours=hours, roles=format_roles(roles)
    )


async def session_staff(
    secret: str, token: str, *, now: datetime, minutes: int
) -> StaffIdentity | None:
    """The signed-in staff member, sliding the idle timeout forward."""
    row = await SESSIONS.find(secret, token, now=now, minutes=minutes)
    if row is None:
        return None
    return StaffIdentity(
        staff_id=row["staff_id"],
        display_name=row["display_name"],
        pseudonym=row["pseudonym"],
        roles=parse_roles(row["roles"]),
    )


async def end_session(secret: str, token: str) -> int | None:
    """Ends the session; returns whose it was."""
    return await SESSIONS.end(secret, token)


async def identity_of(staff_id: int) -> StaffIdentity:
    """For the command line and jobs, which act without a session."""
    member = await StaffMember.get(id=staff_id)
    return StaffIdentity(
        member.id, member.display_name, member.pseudonym, parse_roles(member.roles)
    )


async def save_signin_state(secret: str, data: dict[str, Any], *, now: datetime) -> str:
    token = secrets.token_urlsafe(32)
    await StaffSignInState.create(
        token_lookup=keyed_hash(secret, KeyPurpose.STAFF_SIGNIN, token),
        data=data,
        expires_at=now + timedelta(minutes=SIGNIN_STATE_MINUTES),
    )
    return token


async def take_signin_state(secret: str, token: str, *, now: datetime) -> dict[str, Any] | None:
    """The saved state, once: of two callbacks racing with the same state, one gets it."""
    state = await StaffSignInState.get_or_none(
        token_lookup=keyed_hash(secret, KeyPurpose.STAFF_SIGNIN, token)
    )
    if state is None:
        return None
    taken: int = await StaffSignInState.filter(id=state.id).delete()
    if taken != 1 or state.expires_at <= now:
        return None
    return state.data


async def purge_expired(now: datetime, progress: Progress = no_progress) -> int:
    sessions = await SESSIONS.purge_expired(now, progress)
    codes = await SETUP_CODES.purge_expired(now, progress)
    states = await delete_in_batches(StaffSignInState.filter(expires_at__lte=now), progress)
    return sessions + codes + states
