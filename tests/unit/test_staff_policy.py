"""Pure rules of staff and the desk: roles from an identity provider's groups, staff
passwords, and the card reference desk pages carry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portal.desk.policy import CardRef, make_ref, read_ref
from portal.staff.policy import (
    Role,
    StaffError,
    check_new_password,
    format_roles,
    parse_roles,
    roles_from_groups,
)

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)
GROUPS = {"desk_groups": ("library-desk",), "officer_groups": ("library-privacy",)}


@pytest.mark.parametrize(
    ("claim", "roles"),
    [
        (["library-desk"], {Role.DESK}),
        (["library-privacy", "library-desk"], {Role.DESK, Role.PRIVACY_OFFICER}),
        ("library-privacy", {Role.PRIVACY_OFFICER}),
        (["library-readers"], set()),
        (None, set()),
        ({"library-desk": True}, set()),  # not a list: grants nothing
        ([["library-desk"]], set()),
    ],
)
def test_roles_come_only_from_the_configured_groups(claim: object, roles: set[Role]) -> None:
    assert roles_from_groups(claim, **GROUPS) == roles


def test_stored_roles_round_trip_and_unknown_ones_grant_nothing() -> None:
    both = frozenset({Role.PRIVACY_OFFICER, Role.DESK})
    assert parse_roles(format_roles(both)) == both
    assert parse_roles("desk,admin,") == {Role.DESK}


@pytest.mark.parametrize("password", ["short", "aaaaaaaaaaaaaaaa", "abababababab"])
def test_a_weak_staff_password_is_refused(password: str) -> None:
    with pytest.raises(StaffError):
        check_new_password(password)


def test_a_card_reference_reads_back_only_for_its_staff_member_until_it_expires() -> None:
    card = CardRef(41, 7, guardian_is_new=True, throttle_key="ab" * 32)
    ref = make_ref("secret-key-0123456789", 3, card, now=NOW)
    assert read_ref("secret-key-0123456789", 3, ref, now=NOW) == card
    assert read_ref("secret-key-0123456789", 4, ref, now=NOW) is None  # another staff member
    assert read_ref("secret-key-0123456789", 3, ref, now=NOW + timedelta(hours=1)) is None
    tampered = ref.replace("41.", "42.", 1)
    assert read_ref("secret-key-0123456789", 3, tampered, now=NOW) is None
    assert read_ref("secret-key-0123456789", 3, "41.0.0.-.1.x", now=NOW) is None
    assert read_ref("secret-key-0123456789", 3, "", now=NOW) is None
