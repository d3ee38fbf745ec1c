"""Access tokens, client secrets and scopes (pure), and the per-process cache of clients'
standing that lets a token be checked without a database query."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc import jwt
from joserfc.jwk import OctKey

from portal.api.access import _statement_of
from portal.api.policy import (
    ACCESS_TOKEN_SECONDS,
    AccessToken,
    Scope,
    parse_scopes,
    read_access_token,
    secret_lookup,
    secret_matches,
    sign_access_token,
)
from portal.api.services import Standing
from portal.api.standings import REFRESH_SECONDS, ClientStandings
from portal.credentials.policy import reference_key

SECRET = "unit-test-secret-long-enough"
ISSUED = 1_800_000_000


def token(*, now: int = ISSUED, generation: int = 1, secret: str = SECRET, **claims: object) -> str:
    return sign_access_token(
        secret,
        client=7,
        client_id="abc123",
        name="ils",
        generation=generation,
        scopes=frozenset({Scope.CONSENT_READ}),
        now=now,
        **claims,  # type: ignore[arg-type]
    )


def statement(generation: int = 1) -> AccessToken:
    found = read_access_token(SECRET, token(generation=generation), now=ISSUED)
    assert found is not None
    return found


def _reencoded(jwt: str, **changes: object) -> str:
    header, payload, signature = jwt.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_a_token_says_which_client_with_which_scopes_until_when() -> None:
    found = read_access_token(SECRET, token(), now=ISSUED + 1)
    assert found is not None
    assert (found.client, found.client_id, found.name, found.generation) == (7, "abc123", "ils", 1)
    assert found.scopes == frozenset({Scope.CONSENT_READ})
    assert found.expires_at == ISSUED + ACCESS_TOKEN_SECONDS


def test_a_token_expires_after_five_minutes() -> None:
    assert read_access_token(SECRET, token(), now=ISSUED + ACCESS_TOKEN_SECONDS - 1)
    assert read_access_token(SECRET, token(), now=ISSUED + ACCESS_TOKEN_SECONDS) is None


def test_a_token_from_the_future_is_refused_beyond_a_little_clock_skew() -> None:
    assert read_access_token(SECRET, token(), now=ISSUED - 5)
    assert read_access_token(SECRET, token(), now=ISSUED - 60) is None


@pytest.mark.parametrize(
    "forged",
    [
        token(secret="another-portal-secret-long-enough"),
        _reencoded(token(), scope="consent:read loans:write"),
        _reencoded(token(), sub="8"),
        # alg "none", no signature
        "eyJhbGciOiJub25lIiwidHlwIjoiYXQrand0In0." + token().split(".")[1] + ".",
        "not a token",
        "",
    ],
    ids=["other key", "more scopes", "other client", "alg none", "garbage", "empty"],
)
def test_a_forged_or_altered_token_is_refused(forged: str) -> None:
    assert read_access_token(SECRET, forged, now=ISSUED) is None


def test_scopes_are_the_four_the_api_knows() -> None:
    assert parse_scopes("loans:write consent:read") == {Scope.LOANS_WRITE, Scope.CONSENT_READ}
    assert parse_scopes("") == frozenset()
    assert parse_scopes("loans:write admin") is None


def test_a_secret_is_kept_only_as_a_keyed_hash() -> None:
    stored = secret_lookup(SECRET, "the-client-secret")
    assert "the-client-secret" not in stored
    assert stored != secret_lookup("another-portal-secret-long-enough", "the-client-secret")
    assert secret_matches(SECRET, "the-client-secret", stored)
    assert not secret_matches(SECRET, "the-client-secret!", stored)
    assert not secret_matches(SECRET, "the-client-secret", None)  # a client from before OAuth


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def standings(known: dict[int, Standing]) -> tuple[ClientStandings, FakeClock, list[int]]:
    clock, loads = FakeClock(), []

    async def load() -> dict[int, Standing]:
        loads.append(1)
        await asyncio.sleep(0)
        return dict(known)

    return ClientStandings(load, clock=clock), clock, loads


async def test_checking_tokens_reads_the_database_once_per_interval() -> None:
    cache, clock, loads = standings({7: Standing(1, revoked=False)})
    assert all(await asyncio.gather(*(cache.admits(statement()) for _ in range(50))))
    clock.now += REFRESH_SECONDS - 0.01
    assert await cache.admits(statement())
    assert len(loads) == 1
    clock.now += 0.01
    assert await cache.admits(statement())
    assert len(loads) == 2


async def test_a_revocation_is_seen_within_the_interval() -> None:
    known = {7: Standing(1, revoked=False)}
    cache, clock, _ = standings(known)
    assert await cache.admits(statement())
    known[7] = Standing(1, revoked=True)  # another process revokes the client
    clock.now += REFRESH_SECONDS - 0.01
    assert await cache.admits(statement())  # the bound is the interval, no shorter
    clock.now += 0.01
    assert not await cache.admits(statement())


async def test_a_rotation_ends_older_tokens_and_not_newer_ones() -> None:
    known = {7: Standing(2, revoked=False)}
    cache, _, loads = standings(known)
    assert not await cache.admits(statement(generation=1))
    assert await cache.admits(statement(generation=2))
    # Issued after a rotation this process has not read yet: newer than what it knows, so
    # it reads again at once, and admits the token once the rotation is there.
    known[7] = Standing(3, revoked=False)
    assert await cache.admits(statement(generation=3))
    assert len(loads) == 2


async def test_a_token_of_a_generation_no_client_has_is_refused() -> None:
    cache, _, _ = standings({7: Standing(2, revoked=False)})
    assert not await cache.admits(statement(generation=3))


async def test_a_revoked_client_given_a_new_secret_is_admitted_with_it() -> None:
    known = {7: Standing(2, revoked=True)}
    cache, _, _ = standings(known)
    assert not await cache.admits(statement(generation=2))
    known[7] = Standing(3, revoked=False)  # `portal api-client rotate`, in another process
    assert await cache.admits(statement(generation=3))


async def test_a_client_added_since_the_last_read_is_admitted() -> None:
    known: dict[int, Standing] = {}
    cache, _, _ = standings(known)
    assert not await cache.admits(statement())
    known[7] = Standing(1, revoked=False)  # added in another process a moment ago
    assert await cache.admits(statement())


async def test_a_token_for_a_client_that_does_not_exist_is_refused() -> None:
    cache, _, _ = standings({7: Standing(1, revoked=False)})
    everything = frozenset(Scope)
    forged = sign_access_token(
        SECRET, client=999, client_id="x", name="x", generation=1, scopes=everything, now=ISSUED
    )
    found = read_access_token(SECRET, forged, now=ISSUED)
    assert found is not None  # correctly signed: only the client's standing can refuse it
    assert not await cache.admits(found)


def _keys_derived_from(held: bytes) -> list[bytes]:
    """What a holder of `held` could sign with: the key itself, and `held` put through each
    derivation the portal uses (an HMAC with a label, HKDF with a purpose)."""
    labels = [b"portal oauth access token key v1", b"portal keyed hash access-token"]
    return [
        held,
        *(hmac.new(held, label, hashlib.sha256).digest() for label in labels),
        *(HKDF(hashes.SHA256(), 32, None, label).derive(held) for label in labels),
    ]


def test_the_key_library_systems_compute_references_with_signs_no_access_token() -> None:
    claims = {
        "iss": "portal", "aud": "portal-api", "sub": "7", "client_id": "abc123", "name": "ils",
        "gen": 1, "scope": "deletions:read deletions:ack", "iat": ISSUED, "exp": ISSUED + 60,
    }  # fmt: skip
    for key in _keys_derived_from(reference_key(SECRET)):
        forged = jwt.encode(
            {"alg": "HS256", "typ": "at+jwt"}, claims, OctKey.import_key(key), ["HS256"]
        )
        assert read_access_token(SECRET, forged, now=ISSUED) is None


async def test_when_the_database_cannot_be_read_no_token_is_admitted() -> None:
    async def broken() -> dict[int, Standing]:
        raise ConnectionError("database unreachable")

    cache = ClientStandings(broken, clock=FakeClock())
    with pytest.raises(ConnectionError):
        await cache.admits(statement())


def test_a_remembered_signature_does_not_outlive_the_token() -> None:
    token = sign_access_token(
        SECRET,
        client=1,
        client_id="c",
        name="ils",
        generation=1,
        scopes=frozenset({Scope.CONSENT_READ}),
        now=1_000_000,
    )
    assert _statement_of(SECRET, token, 1_000_010) is not None  # checked, remembered
    assert _statement_of(SECRET, token, 1_000_299) is not None
    assert _statement_of(SECRET, token, 1_000_300) is None  # expired, remembered or not
    assert _statement_of(SECRET + "x", token, 1_000_010) is None  # another key: checked anew
