"""Pure rules of API access: the scopes, client secrets, and the signed access tokens.

Access tokens are JWTs (RFC 9068 profile: `typ` at+jwt, iss, aud, sub, client_id, scope, iat,
exp, jti) signed with HS256 under a key derived from PORTAL_SECRET_KEY for this one purpose.
The portal both issues and checks them, so a symmetric key suffices, and checking one costs
no database query. They live five minutes; revocation reaches every process sooner (see
portal.api.standings)."""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import OctKey

from portal.credentials.policy import KeyPurpose, keyed_hash, purpose_key
from portal.errors import ApiCode, DomainError


class Scope(StrEnum):
    CONSENT_READ = "consent:read"
    LOANS_WRITE = "loans:write"
    DELETIONS_READ = "deletions:read"
    DELETIONS_ACK = "deletions:ack"
    # Which messages each patron agreed to, by kind and channel (GET/POST message-preferences).
    PREFERENCES_READ = "preferences:read"
    # With preferences:read: the phone number or address each channel's messages go to.
    CONTACTS_READ = "contacts:read"


class ApiError(DomainError):
    """An ApiCode: unauthorised, client_exists, …"""


class ScopeMissing(ApiError):
    """The caller's token does not grant the scope the endpoint needs."""

    def __init__(self, scope: Scope) -> None:
        super().__init__(ApiCode.INSUFFICIENT_SCOPE)
        self.scope = scope


ACCESS_TOKEN_SECONDS = 300
MAX_LOANS = 500  # loans in one hand-over
MAX_PATRONS = 100  # patrons in one message-preferences request
ISSUER = "portal"
AUDIENCE = "portal-api"
TOKEN_TYPE = "at+jwt"  # noqa: S105 (RFC 9068's media type, not a secret)
_ALGORITHM = "HS256"
# A few seconds for clocks of two hosts that disagree a little about when a token was issued.
_LEEWAY_SECONDS = 5
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{16}$")
# A patron reference (portal.patrons.services.patron_reference): a SHA-256 HMAC in hex.
_REFERENCE = re.compile(r"^[0-9a-f]{64}$")


def parse_scopes(text: str | None) -> frozenset[Scope] | None:
    """The scopes a space-separated list names; None when it names an unknown scope."""
    known = {scope.value: scope for scope in Scope}
    words = (text or "").split()
    if any(word not in known for word in words):
        return None
    return frozenset(known[word] for word in words)


def scope_text(scopes: frozenset[Scope]) -> str:
    return " ".join(sorted(scopes))


def check_client_name(name: str) -> None:
    """Letters, digits, dots, dashes and underscores: it is shown in lists and audit lines."""
    if not _NAME.match(name):
        raise ApiError(ApiCode.CLIENT_NAME_INVALID)


def new_client_id() -> str:
    return secrets.token_urlsafe(12)


def looks_like_client_id(text: str) -> bool:
    """What new_client_id makes; anything else is no client, and never reaches the database."""
    return _CLIENT_ID.match(text) is not None


def looks_like_reference(text: str) -> bool:
    """What a patron reference looks like; anything else is no patron, and never reaches the
    database."""
    return _REFERENCE.match(text) is not None


def new_client_secret() -> str:
    return secrets.token_urlsafe(32)


def secret_lookup(secret: str, client_secret: str) -> str:
    """A client secret is 256 random bits, so a keyed HMAC keeps it as safe as a slow hash
    would (nobody can guess it, and without PORTAL_SECRET_KEY nobody can test a guess against
    the column), and costs microseconds: a flood of failed token requests costs no CPU."""
    return keyed_hash(secret, KeyPurpose.API_CLIENT_SECRET, client_secret)


def secret_matches(secret: str, client_secret: str, stored: str | None) -> bool:
    return stored is not None and hmac.compare_digest(secret_lookup(secret, client_secret), stored)


@lru_cache(maxsize=4)
def signing_key(secret: str) -> OctKey:
    """The token key, derived from PORTAL_SECRET_KEY by HKDF for this purpose alone: it signs
    nothing else, and neither the secret's other keys (the patron reference key connected
    systems hold) nor any keyed hash can make one."""
    return OctKey.import_key(purpose_key(secret, KeyPurpose.ACCESS_TOKEN))


@dataclass(frozen=True)
class AccessToken:
    """What a valid access token says: which client (its row id, OAuth client id and name),
    under which secret generation, with which scopes, until when."""

    client: int
    client_id: str
    name: str
    generation: int
    scopes: frozenset[Scope]
    expires_at: int
    token_id: str
    system: str | None = None  # the connected system the client speaks for


def sign_access_token(
    secret: str,
    *,
    client: int,
    client_id: str,
    name: str,
    generation: int,
    scopes: frozenset[Scope],
    now: int,
    system: str | None = None,
    lifetime: int = ACCESS_TOKEN_SECONDS,
) -> str:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": str(client),
        "client_id": client_id,
        "name": name,
        "gen": generation,
        "scope": scope_text(scopes),
        "iat": now,
        "exp": now + lifetime,
        "jti": secrets.token_urlsafe(12),
    }
    if system is not None:
        claims["system"] = system
    header = {"alg": _ALGORITHM, "typ": TOKEN_TYPE}
    return jwt.encode(header, claims, signing_key(secret), algorithms=[_ALGORITHM])


def read_access_token(secret: str, token: str, *, now: int) -> AccessToken | None:
    """The token's statement if it is one this portal signed and it is current; else None
    (forged, altered, for another audience, expired, or not a token at all)."""
    try:
        decoded = jwt.decode(token, signing_key(secret), algorithms=[_ALGORITHM])
    except (JoseError, ValueError, TypeError):
        return None
    if decoded.header.get("typ") != TOKEN_TYPE:
        return None
    return _statement(decoded.claims, now)


def _statement(claims: dict[str, Any], now: int) -> AccessToken | None:
    exp, iat, gen = (
        _integer(claims.get("exp")),
        _integer(claims.get("iat")),
        _integer(claims.get("gen")),
    )
    sub, scopes = _text(claims.get("sub")), parse_scopes(_text(claims.get("scope")))
    if (
        claims.get("iss") != ISSUER
        or claims.get("aud") != AUDIENCE
        or exp is None
        or iat is None
        or gen is None
        or not (sub.isascii() and sub.isdigit())
        or scopes is None
    ):
        return None
    if not iat - _LEEWAY_SECONDS <= now < exp:
        return None
    return AccessToken(
        client=int(sub),
        client_id=_text(claims.get("client_id")),
        name=_text(claims.get("name")),
        generation=gen,
        scopes=scopes,
        expires_at=exp,
        token_id=_text(claims.get("jti")),
        system=_text(claims.get("system")) or None,
    )


def _integer(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
