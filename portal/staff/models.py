"""Staff accounts, their sessions, and the staff audit trail. Staff are identified to
patrons only by a pseudonym; the trail names the patron only by a keyed hash."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model

from portal.credentials.models import OneTimeCode, SlidingSession


class StaffMember(Model):
    id = fields.IntField(primary_key=True)
    # Keyed hash of the sign-in identity: "local:<username>", or "oidc:<issuer> <subject>".
    subject_lookup = fields.CharField(max_length=64, unique=True)
    # Local accounts sign in with it; purpose: staff sign-in, kept while the account exists.
    username = fields.CharField(max_length=60, null=True, unique=True)
    # Shown in the audit trail to the privacy officer, never to patrons.
    display_name = fields.CharField(max_length=100)
    # What the patron's record shows as the witness of a desk event ("staff-4k7q2").
    pseudonym = fields.CharField(max_length=20, unique=True)
    roles = fields.CharField(max_length=60)  # portal.staff.policy.format_roles
    source = fields.CharField(max_length=10)  # "local" or "oidc"
    password_hash = fields.CharField(max_length=200, null=True)  # local accounts, Argon2
    created_at = fields.DatetimeField()

    class Meta:
        table = "staff_member"


class StaffSetupCode(OneTimeCode):
    """A one-time code with which a local staff member sets their own password."""

    staff: fields.ForeignKeyRelation[StaffMember] = fields.ForeignKeyField(
        "models.StaffMember", related_name="setup_codes", on_delete=fields.CASCADE, db_index=True
    )

    staff_id: int

    class Meta:
        table = "staff_setup_code"


class StaffSession(SlidingSession):
    """A staff member signed in at a desk: its own cookie, a short idle timeout and an
    absolute lifetime. Deleted at sign-out, hand-over or expiry."""

    staff: fields.ForeignKeyRelation[StaffMember] = fields.ForeignKeyField(
        "models.StaffMember", related_name="sessions", on_delete=fields.CASCADE, db_index=True
    )
    roles = fields.CharField(max_length=60)  # as granted at sign-in (groups may change)
    ends_at = fields.DatetimeField()

    staff_id: int

    class Meta:
        table = "staff_session"


class StaffSignInState(Model):
    """An identity-provider sign-in under way: state, nonce and PKCE verifier, server-side
    and usable once, so a replayed callback finds nothing."""

    id = fields.IntField(primary_key=True)
    token_lookup = fields.CharField(max_length=64, unique=True)
    data: dict[str, Any] = fields.JSONField()
    expires_at = fields.DatetimeField(db_index=True)

    class Meta:
        table = "staff_signin_state"


class StaffAuditEvent(Model):
    """One staff action. Append-only in the database (migration 0007), like the ledger."""

    id = fields.IntField(primary_key=True)
    staff: fields.ForeignKeyRelation[StaffMember] = fields.ForeignKeyField(
        "models.StaffMember", related_name="actions", on_delete=fields.RESTRICT, db_index=True
    )
    staff_name = fields.CharField(max_length=100)  # as it was when they acted
    action = fields.CharField(max_length=30, db_index=True)
    # Keyed hash of the patron's id: the officer can see which actions concern one patron,
    # and the patron's own record can find them, without the trail naming anyone.
    patron_key = fields.CharField(max_length=64, null=True, db_index=True)
    reason = fields.CharField(max_length=200, null=True)
    detail: dict[str, Any] = fields.JSONField()
    occurred_at = fields.DatetimeField(db_index=True)

    staff_id: int

    class Meta:
        table = "staff_audit_event"
        ordering = ("id",)
