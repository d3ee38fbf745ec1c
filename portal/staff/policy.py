"""Staff roles and what each may do, the staff audit trail's vocabulary, and the rules for a
staff password. Pure: no database, no web."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from portal.errors import DomainError, StaffCode

PASSWORD_MIN = 12


class Role(StrEnum):
    DESK = "desk"  # onboarding, PIN resets, guardian links, unlocks
    PRIVACY_OFFICER = "privacy_officer"  # the audit trail; the officer's pages


class AuditAction(StrEnum):
    """What a staff member did. The trail says who and when, and about which patron only as a
    keyed hash: never a card number, a choice or anything a patron read."""

    SIGNED_IN = "signed_in"
    SIGNED_OUT = "signed_out"
    CARD_CREATED = "card_created"
    HANDOVER_STARTED = "handover_started"
    HANDOVER_FINISHED = "handover_finished"
    SETUP_SLIP_PRINTED = "setup_slip_printed"
    PIN_RESET = "pin_reset"
    GUARDIAN_LINKED = "guardian_linked"
    GUARDIAN_UNLINKED = "guardian_unlinked"
    CARD_LOOKED_UP = "card_looked_up"
    SIGNIN_UNLOCKED = "signin_unlocked"
    # The desk's own network cleared of a hold that failed sign-ins from it put on it.
    NETWORK_UNLOCKED = "network_unlocked"
    PATRONS_IMPORTED = "patrons_imported"
    STAFF_ADDED = "staff_added"
    TRAIL_READ = "trail_read"
    # The privacy officer's pages (portal.officer): each view and each act.
    REPORT_READ = "report_read"
    PROMISES_READ = "promises_read"
    CATALOG_FORM_OPENED = "catalog_form_opened"
    CATALOG_PREVIEWED = "catalog_previewed"
    CATALOG_PUBLISHED = "catalog_published"
    REGISTER_READ = "register_read"
    OUTSIDE_REQUEST_RECORDED = "outside_request_recorded"
    OUTSIDE_REQUEST_DECIDED = "outside_request_decided"
    TRANSPARENCY_READ = "transparency_read"
    INVENTORY_READ = "inventory_read"


# What a patron is told about staff acting on their account, in their own record.
SHOWN_TO_PATRON = frozenset(
    {
        AuditAction.CARD_CREATED,
        AuditAction.HANDOVER_STARTED,
        AuditAction.PIN_RESET,
        AuditAction.SETUP_SLIP_PRINTED,
        AuditAction.GUARDIAN_LINKED,
        AuditAction.GUARDIAN_UNLINKED,
        AuditAction.SIGNIN_UNLOCKED,
        AuditAction.CARD_LOOKED_UP,
    }
)


class StaffError(DomainError):
    """A StaffCode: not_staff, signin_failed, setup_code_invalid, password_too_short, …"""


def parse_roles(value: str) -> frozenset[Role]:
    """Roles as stored (comma-separated); an unknown one is ignored, never widened."""
    known = {role.value for role in Role}
    return frozenset(Role(part) for part in value.split(",") if part in known)


def format_roles(roles: Iterable[Role]) -> str:
    return ",".join(sorted(role.value for role in roles))


def roles_from_groups(
    groups: object, *, desk_groups: Iterable[str], officer_groups: Iterable[str]
) -> frozenset[Role]:
    """The roles an identity provider's groups claim grants: a list of names, or one name."""
    if isinstance(groups, str):
        names = {groups}
    elif isinstance(groups, list | tuple):
        names = {group for group in groups if isinstance(group, str)}
    else:
        names = set()
    roles = set()
    if names & set(desk_groups):
        roles.add(Role.DESK)
    if names & set(officer_groups):
        roles.add(Role.PRIVACY_OFFICER)
    return frozenset(roles)


def check_new_password(password: str) -> None:
    if len(password) < PASSWORD_MIN:
        raise StaffError(StaffCode.PASSWORD_TOO_SHORT)
    if len(set(password)) < 4:
        raise StaffError(StaffCode.PASSWORD_TOO_SHORT)
