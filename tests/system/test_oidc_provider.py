"""The test OpenID Connect provider is real and the driver gets through it: Authlib's own
client (code + PKCE S256 + nonce) against tests/oidc/provider.mjs, with no portal involved,
and every ID token checked with joserfc against the provider's published keys."""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2 as httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
from joserfc import jwt
from joserfc.errors import ExpiredTokenError, InvalidClaimError, JoseError
from joserfc.jwk import KeySet

from tests.oidc_provider import (
    LoginPage,
    Provider,
    UnexpectedPage,
    authorize,
    log_in,
    log_out,
    running_provider,
    submit_login,
)
from tests.support import until

REDIRECT_URI = "http://portal.test/staff/callback"
POST_LOGOUT_REDIRECT_URI = "http://portal.test/staff/signed-out"


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with running_provider(REDIRECT_URI, post_logout_redirect_uri=POST_LOGOUT_REDIRECT_URI) as p:
        yield p


@pytest.fixture
async def browser() -> AsyncIterator[httpx.AsyncClient]:
    """The person's browser: its cookie jar is their session at the provider."""
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@dataclass
class Relying:
    """What the portal does with Authlib: start a request, then exchange its code."""

    provider: Provider
    metadata: dict[str, Any]
    client: AsyncOAuth2Client
    verifier: str = ""
    nonce: str = ""
    state: str = ""

    def authorization_url(self, **extra: str) -> str:
        self.verifier, self.nonce = generate_token(48), generate_token(20)
        url, self.state = self.client.create_authorization_url(
            self.metadata["authorization_endpoint"],
            code_verifier=self.verifier,
            nonce=self.nonce,
            **extra,
        )
        return str(url)

    async def exchange(self, callback_url: str) -> dict[str, Any]:
        token: dict[str, Any] = await self.client.fetch_token(
            self.metadata["token_endpoint"],
            authorization_response=callback_url,
            state=self.state,
            code_verifier=self.verifier,
        )
        return token

    async def signed_claims(self, id_token: str) -> dict[str, Any]:
        """What the token says, once its signature is checked against the provider's JWKS."""
        response = await self.client.request("GET", self.metadata["jwks_uri"], withhold_token=True)
        keys = KeySet.import_key_set(response.raise_for_status().json())
        claims: dict[str, Any] = jwt.decode(id_token, keys, algorithms=["RS256"]).claims
        return claims

    async def id_token_claims(self, id_token: str) -> dict[str, Any]:
        """The signature, then iss, aud, nonce and exp, as a relying party must check them."""
        claims = await self.signed_claims(id_token)
        jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": self.provider.issuer},
            aud={"essential": True, "value": self.provider.client_id},
            nonce={"essential": True, "value": self.nonce},
            exp={"essential": True},
        ).validate(claims)
        return claims


@pytest.fixture
async def relying(provider: Provider) -> AsyncIterator[Relying]:
    async with AsyncOAuth2Client(
        provider.client_id,
        provider.client_secret,
        redirect_uri=provider.redirect_uri,
        scope="openid profile",
        code_challenge_method="S256",
        timeout=10,
    ) as client:
        metadata = (
            (await client.request("GET", provider.metadata_url, withhold_token=True))
            .raise_for_status()
            .json()
        )
        yield Relying(provider, metadata, client)


async def test_the_discovery_document_offers_code_with_pkce_s256_and_logout(
    relying: Relying,
) -> None:
    metadata = relying.metadata
    assert metadata["issuer"] == relying.provider.issuer
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["end_session_endpoint"] == f"{relying.provider.issuer}/session/end"
    assert {"groups", "name"} <= set(metadata["claims_supported"])


@pytest.mark.parametrize(
    ("login", "groups"),
    [
        ("desk-dana", ["library-desk"]),
        ("officer-omar", ["library-privacy"]),
        ("reader-rita", ["library-readers"]),
        ("both-bo", ["library-desk", "library-privacy"]),
    ],
)
async def test_a_login_yields_a_valid_id_token_with_the_accounts_groups(
    relying: Relying, browser: httpx.AsyncClient, login: str, groups: list[str]
) -> None:
    callback = await log_in(relying.authorization_url(), login, browser)

    query = parse_qs(urlsplit(callback).query)
    assert callback.startswith(REDIRECT_URI)
    assert query["state"] == [relying.state]
    assert query["iss"] == [relying.provider.issuer]
    token = await relying.exchange(callback)
    claims = await relying.id_token_claims(token["id_token"])
    assert claims["sub"] == login
    assert claims["aud"] == relying.provider.client_id
    assert claims["groups"] == groups
    assert claims["name"]
    assert claims["auth_time"] <= time.time()


async def test_desk_dana_is_named_in_her_id_token(
    relying: Relying, browser: httpx.AsyncClient
) -> None:
    token = await relying.exchange(await log_in(relying.authorization_url(), "desk-dana", browser))

    claims = await relying.id_token_claims(token["id_token"])
    assert claims["name"] == "Dana (desk)"
    assert claims["groups"] == ["library-desk"]


async def test_a_code_is_exchanged_only_once(relying: Relying, browser: httpx.AsyncClient) -> None:
    callback = await log_in(relying.authorization_url(), "desk-dana", browser)
    await relying.exchange(callback)

    with pytest.raises(OAuthError) as refused:
        await relying.exchange(callback)
    assert refused.value.error == "invalid_grant"


async def test_a_code_needs_its_pkce_verifier(relying: Relying, browser: httpx.AsyncClient) -> None:
    callback = await log_in(relying.authorization_url(), "desk-dana", browser)
    relying.verifier = generate_token(48)

    with pytest.raises(OAuthError) as refused:
        await relying.exchange(callback)
    assert refused.value.error == "invalid_grant"


async def test_a_request_without_pkce_is_refused(
    relying: Relying, browser: httpx.AsyncClient
) -> None:
    query = {
        "response_type": "code",
        "client_id": relying.provider.client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid profile",
        "state": secrets.token_urlsafe(),
    }
    url = f"{relying.metadata['authorization_endpoint']}?{urlencode(query)}"

    callback = await authorize(url, browser)

    assert isinstance(callback, str)
    assert parse_qs(urlsplit(callback).query)["error"] == ["invalid_request"]


async def test_a_signed_in_person_is_let_through_without_a_form(
    relying: Relying, browser: httpx.AsyncClient
) -> None:
    await log_in(relying.authorization_url(), "desk-dana", browser)

    callback = await authorize(relying.authorization_url(), browser)

    assert isinstance(callback, str)
    token = await relying.exchange(callback)
    assert (await relying.id_token_claims(token["id_token"]))["sub"] == "desk-dana"


async def test_prompt_login_shows_the_login_form_to_a_signed_in_person(
    relying: Relying, browser: httpx.AsyncClient
) -> None:
    await log_in(relying.authorization_url(), "desk-dana", browser)

    page = await authorize(relying.authorization_url(prompt="login"), browser)

    assert isinstance(page, LoginPage)


async def test_after_prompt_login_another_person_can_take_over(
    relying: Relying, browser: httpx.AsyncClient
) -> None:
    await log_in(relying.authorization_url(), "desk-dana", browser)

    callback = await log_in(relying.authorization_url(prompt="login"), "officer-omar", browser)

    claims = await relying.id_token_claims((await relying.exchange(callback))["id_token"])
    assert claims["sub"] == "officer-omar"
    assert claims["groups"] == ["library-privacy"]


async def test_max_age_asks_again_once_the_login_is_older(
    relying: Relying, browser: httpx.AsyncClient
) -> None:
    await log_in(relying.authorization_url(), "desk-dana", browser)
    recent = await authorize(relying.authorization_url(max_age="3600"), browser)

    async def login_page() -> LoginPage | None:
        asked = await authorize(relying.authorization_url(max_age="0"), browser)
        return asked if isinstance(asked, LoginPage) else None

    # The provider counts whole seconds: within the login's second it is not yet older.
    stale = await until(login_page, what="max_age=0 to ask for a login again", seconds=5)

    assert isinstance(recent, str)
    callback = await submit_login(stale, "desk-dana", browser)
    claims = await relying.id_token_claims((await relying.exchange(callback))["id_token"])
    assert time.time() - claims["auth_time"] < 5


async def test_an_unknown_login_is_not_let_in(relying: Relying, browser: httpx.AsyncClient) -> None:
    with pytest.raises(UnexpectedPage):
        await log_in(relying.authorization_url(), "nobody", browser)


async def test_log_out_ends_the_provider_session_and_returns_to_the_portal(
    relying: Relying, browser: httpx.AsyncClient
) -> None:
    callback = await log_in(relying.authorization_url(), "desk-dana", browser)
    id_token = (await relying.exchange(callback))["id_token"]
    query = {
        "id_token_hint": id_token,
        "post_logout_redirect_uri": POST_LOGOUT_REDIRECT_URI,
        "state": "bye",
    }

    back = await log_out(f"{relying.metadata['end_session_endpoint']}?{urlencode(query)}", browser)

    assert back == f"{POST_LOGOUT_REDIRECT_URI}?state=bye"
    assert isinstance(await authorize(relying.authorization_url(), browser), LoginPage)


async def test_log_out_without_a_client_ends_on_the_providers_page(
    relying: Relying, browser: httpx.AsyncClient
) -> None:
    await log_in(relying.authorization_url(), "desk-dana", browser)

    back = await log_out(relying.metadata["end_session_endpoint"], browser)

    assert back == f"{relying.provider.issuer}/session/end/success"
    assert isinstance(await authorize(relying.authorization_url(), browser), LoginPage)


async def misbehaving_id_token(
    misbehave: str, browser: httpx.AsyncClient
) -> tuple[dict[str, Any], JoseError | None]:
    """desk-dana's ID token from a provider that gets it wrong: what it says (its signature
    checked) and why a relying party refuses it."""
    with running_provider(REDIRECT_URI, misbehave=misbehave) as bad:
        async with AsyncOAuth2Client(
            bad.client_id,
            bad.client_secret,
            redirect_uri=bad.redirect_uri,
            scope="openid profile",
            code_challenge_method="S256",
            timeout=10,
        ) as client:
            response = await client.request("GET", bad.metadata_url, withhold_token=True)
            relying = Relying(bad, response.raise_for_status().json(), client)
            callback = await log_in(relying.authorization_url(), "desk-dana", browser)
            id_token = (await relying.exchange(callback))["id_token"]
            claims = await relying.signed_claims(id_token)
            try:
                await relying.id_token_claims(id_token)
            except JoseError as refusal:
                return claims, refusal
            return claims, None


async def test_misbehave_audience_addresses_id_tokens_to_another_app(
    browser: httpx.AsyncClient,
) -> None:
    claims, refusal = await misbehaving_id_token("audience", browser)

    assert claims["aud"] == "some-other-app"
    assert claims["exp"] > time.time()
    assert isinstance(refusal, InvalidClaimError)
    assert refusal.claim == "aud"


async def test_misbehave_expired_issues_id_tokens_already_expired(
    browser: httpx.AsyncClient,
) -> None:
    claims, refusal = await misbehaving_id_token("expired", browser)

    assert claims["exp"] < time.time() - 3000
    assert claims["iat"] < claims["exp"]
    assert claims["aud"] == "library-portal"
    assert isinstance(refusal, ExpiredTokenError)
