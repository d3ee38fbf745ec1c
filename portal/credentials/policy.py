"""Keyed hashes: what the portal keeps instead of a card number, a code or a token, each
purpose apart so that one hash never stands in for another (HMAC-SHA256, RFC 2104; per-purpose
keys derived with HKDF-SHA256, RFC 5869)."""

from __future__ import annotations

import functools
import hashlib
import hmac
from enum import StrEnum

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class KeyPurpose(StrEnum):
    """What a keyed hash is for. The value is part of what is hashed: never change one."""

    CARD = "card"  # a patron's card number: the account's lookup
    PIN_SETUP = "setup"  # a patron's one-time PIN setup code
    SESSION = "session"  # a patron's session token
    LINK_CODE = "link"  # a guardian's link code
    HANDOVER = "handover"  # a desk screen handed to a patron
    DESK_REF = "desk-ref"  # a card found at the desk, carried in the desk's pages
    STAFF = "staff"  # a staff member's sign-in identity
    STAFF_SETUP = "staff-setup"  # a staff member's one-time password setup code
    STAFF_SESSION = "staff-session"
    STAFF_SIGNIN = "staff-signin"  # an identity-provider sign-in under way
    AUDIT_PATRON = "audit-patron"  # the patron a staff action concerns, in the audit trail
    RECEIPT_SUBJECT = "receipt subject"  # the patron a signed receipt is about
    CONSENT_RECEIPT = "consent-receipt"  # a consent receipt's reference
    API_CLIENT_SECRET = "api-client-secret"  # noqa: S105 (a purpose's name, not a secret)
    OUTSIDE_REQUEST_CARD = "outside-request-card"  # a card named in a request by post
    # Guesses counted by portal.credentials.throttle: the subject guessed at, and the
    # client's network, for each thing guessed.
    THROTTLE_SIGNIN_CARD = "throttle-signin-card"
    THROTTLE_SIGNIN_CLIENT = "throttle-signin-client"
    THROTTLE_LINK_CODE_CARD = "throttle-link-code-card"
    THROTTLE_LINK_CODE_CLIENT = "throttle-link-code-client"
    THROTTLE_STAFF_CARD = "throttle-staff-card"
    THROTTLE_STAFF_CLIENT = "throttle-staff-client"
    THROTTLE_OAUTH_CARD = "throttle-oauth-card"
    THROTTLE_OAUTH_CLIENT = "throttle-oauth-client"
    # A card's PIN guesses over a day, and over the period after which the card is held.
    THROTTLE_PIN_DAY = "throttle-pin-day"
    THROTTLE_PIN_HOLD = "throttle-pin-hold"
    # Keys of their own (never a keyed hash under PORTAL_SECRET_KEY, so never PREFIXED):
    PATRON_REFERENCE = "patron-reference"  # the patron as connected systems know them
    ACCESS_TOKEN = "access-token"  # noqa: S105 (a purpose's name) the API's access tokens


# Hashed before each purpose had its own key: HMAC under the secret itself of
# "<purpose>:<value>". Their stored values cannot be recomputed (the portal never kept the
# card numbers, codes and tokens behind them; the audit trail is append-only; patrons hold the
# receipts), so they keep this form for good. The prefix keeps them apart as well as a key
# would, since no purpose contains ":". A purpose added later is not listed here: it hashes
# under its own derived key.
PREFIXED = frozenset(
    {
        KeyPurpose.CARD,
        KeyPurpose.PIN_SETUP,
        KeyPurpose.SESSION,
        KeyPurpose.LINK_CODE,
        KeyPurpose.HANDOVER,
        KeyPurpose.DESK_REF,
        KeyPurpose.STAFF,
        KeyPurpose.STAFF_SETUP,
        KeyPurpose.STAFF_SESSION,
        KeyPurpose.STAFF_SIGNIN,
        KeyPurpose.AUDIT_PATRON,
        KeyPurpose.RECEIPT_SUBJECT,
        KeyPurpose.CONSENT_RECEIPT,
        KeyPurpose.API_CLIENT_SECRET,
        KeyPurpose.OUTSIDE_REQUEST_CARD,
        KeyPurpose.THROTTLE_SIGNIN_CARD,
        KeyPurpose.THROTTLE_SIGNIN_CLIENT,
        KeyPurpose.THROTTLE_LINK_CODE_CARD,
        KeyPurpose.THROTTLE_LINK_CODE_CLIENT,
        KeyPurpose.THROTTLE_STAFF_CARD,
        KeyPurpose.THROTTLE_STAFF_CLIENT,
        KeyPurpose.THROTTLE_OAUTH_CARD,
        KeyPurpose.THROTTLE_OAUTH_CLIENT,
    }
)


def keyed_hash(secret: str, purpose: KeyPurpose, value: str) -> str:
    if purpose in PREFIXED:
        message = f"{purpose}:{value}".encode()
        return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return hmac.new(purpose_key(secret, purpose), value.encode(), hashlib.sha256).hexdigest()


@functools.lru_cache(maxsize=64)
def purpose_key(secret: str, purpose: KeyPurpose) -> bytes:
    """The purpose's own key, derived from the portal's secret: knowing one tells nothing of
    the secret or of another purpose's key. It keys a hash, or signs, for that purpose only."""
    info = f"portal keyed hash {purpose}".encode()
    derive = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info)
    return derive.derive(secret.encode())


def reference_key(secret: str) -> bytes:
    """The key connected systems compute patron references with (`portal reference-key`):
    HMAC-SHA256 under it of the normalised card. It keys nothing else and signs nothing."""
    return purpose_key(secret, KeyPurpose.PATRON_REFERENCE)
