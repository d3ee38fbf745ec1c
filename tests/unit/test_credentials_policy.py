"""Keyed hashes, pure: every value stored so far still matches, purposes never collide, and a
purpose added later hashes under its own derived key."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from portal.credentials import policy
from portal.credentials.policy import (
    PREFIXED,
    KeyPurpose,
    keyed_hash,
    purpose_key,
    reference_key,
)
from portal.credentials.throttle import Guessing
from tests.factories import SECRET

# Computed with HMAC-SHA256 of "<purpose>:<value>" under the secret, as the portal stored
# them before purposes had keys: card lookups (of cards the portal never kept), session
# lookups, receipt subjects and audit-trail references must keep matching.
STORED = [
    (
        KeyPurpose.CARD,
        "200011112222",
        "0b5610e73132d25e96c28f13d29f73825607a76dc4bd751225214220cfbe4130",
    ),
    (
        KeyPurpose.SESSION,
        "a-token",
        "4f09bf6af2bf0a5093ff2ef7407481cc00107da72252b596b5caf17c05a09637",
    ),
    (
        KeyPurpose.RECEIPT_SUBJECT,
        "42",
        "7d6847aab09914dfe9fffdbb0b7bb1fa364d7714eb7f040dd39f2b96fc7e77c1",
    ),
    (
        KeyPurpose.AUDIT_PATRON,
        "42",
        "0a73e5c3b8408902203f6865a02503164a843043f80111b770b93b3cfd4df17a",
    ),
    (
        KeyPurpose.THROTTLE_SIGNIN_CARD,
        "200011112222",
        "6f929905269ffcb14769fbc757a102e6975746bdb1b65a9d26137c8e98f96bc5",
    ),
]


@pytest.mark.parametrize(("purpose", "value", "stored"), STORED)
def test_values_stored_before_still_match(purpose: KeyPurpose, value: str, stored: str) -> None:
    assert keyed_hash(SECRET, purpose, value) == stored


# Every purpose hashed before purposes had keys of their own: part of every stored hash, so a
# renamed value would orphan every row hashed under it, and the list never grows.
OLD_FORM = {
    "card",
    "setup",
    "session",
    "link",
    "handover",
    "desk-ref",
    "staff",
    "staff-setup",
    "staff-session",
    "staff-signin",
    "audit-patron",
    "receipt subject",
    "consent-receipt",
    "api-client-secret",
    "outside-request-card",
    *(f"throttle-{guessing}-{side}" for guessing in Guessing for side in ("card", "client")),
}
# A new purpose goes here, never into OLD_FORM.
ADDED_LATER: set[str] = {
    "patron-reference",
    "access-token",
    "throttle-pin-day",
    "throttle-pin-hold",
}


def test_the_purposes_are_the_strings_they_always_were() -> None:
    assert {purpose.value for purpose in KeyPurpose} == OLD_FORM | ADDED_LATER


def test_only_the_purposes_hashed_before_derived_keys_keep_the_old_form() -> None:
    assert {purpose.value for purpose in PREFIXED} == OLD_FORM


def test_no_purpose_can_be_mistaken_for_another() -> None:
    # "<purpose>:<value>" splits at the first colon only if no purpose holds one.
    assert all(":" not in purpose for purpose in KeyPurpose)
    hashes = {keyed_hash(SECRET, purpose, "42") for purpose in KeyPurpose}
    assert len(hashes) == len(KeyPurpose)


def _hkdf_sha256(secret: bytes, info: bytes) -> bytes:
    """RFC 5869 with no salt, written out, to check the library's derivation against."""
    prk = hmac.new(b"\0" * 32, secret, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()


def test_a_purpose_key_is_hkdf_of_the_secret_for_that_purpose_alone() -> None:
    card = purpose_key(SECRET, KeyPurpose.CARD)
    assert card == _hkdf_sha256(SECRET.encode(), b"portal keyed hash card")
    assert card != purpose_key(SECRET, KeyPurpose.SESSION)
    assert card != purpose_key("another secret", KeyPurpose.CARD)


def test_a_purpose_added_later_hashes_under_its_own_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(policy, "PREFIXED", frozenset())
    expected = hmac.new(purpose_key(SECRET, KeyPurpose.CARD), b"42", hashlib.sha256).hexdigest()
    assert keyed_hash(SECRET, KeyPurpose.CARD, "42") == expected
    assert expected != hmac.new(SECRET.encode(), b"card:42", hashlib.sha256).hexdigest()


def test_the_reference_key_and_the_token_key_are_different_derivations() -> None:
    held = reference_key(SECRET)
    assert held == _hkdf_sha256(SECRET.encode(), b"portal keyed hash patron-reference")
    assert purpose_key(SECRET, KeyPurpose.ACCESS_TOKEN) == _hkdf_sha256(
        SECRET.encode(), b"portal keyed hash access-token"
    )
    assert held != purpose_key(SECRET, KeyPurpose.ACCESS_TOKEN)


def test_every_purpose_not_kept_in_the_old_form_hashes_under_its_own_key() -> None:
    for purpose in set(KeyPurpose) - PREFIXED:
        derived = hmac.new(purpose_key(SECRET, purpose), b"42", hashlib.sha256).hexdigest()
        assert keyed_hash(SECRET, purpose, "42") == derived
