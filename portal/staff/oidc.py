"""Staff sign-in through the library's OpenID Connect provider, with Authlib: authorization
code with PKCE (S256), discovery, the provider's JWKS, and the ID token's issuer, audience,
expiry and nonce checked. Every sign-in asks the provider for a fresh login (prompt=login,
and auth_time checked): a desk computer is shared, and a patron who was handed the screen
must not get back into the desk through the provider's remembered session.

Authlib keeps its state in `request.session`; here that is a dict loaded from and saved to
the database for one sign-in, so the state is usable once and never lives in a cookie."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx2
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.starlette_client import OAuth
from joserfc.errors import JoseError
from starlette.requests import Request
from starlette.responses import Response

from portal.settings import Settings
from portal.staff.policy import Role, roles_from_groups

# How recent the provider's login must be, and the clock skew allowed on the ID token.
FRESH_LOGIN_SECONDS = 600  # max_age asked of the provider (it makes auth_time required)
LEEWAY_SECONDS = 60
# The clocks of the provider and the portal may disagree this much about when a login was.
AUTH_TIME_SKEW_SECONDS = 10
STARTED_AT = "portal_started_at"


class ProviderSignInFailed(Exception):
    """The provider's answer could not be trusted (state, token, audience, expiry, nonce)."""


@dataclass(frozen=True)
class ProviderIdentity:
    issuer: str
    subject: str
    display_name: str
    roles: frozenset[Role]


def build_client(settings: Settings) -> Any:
    """Authlib's client for the configured provider; None without one. Its cache of the
    discovery document and keys is per process, and refetched on an unknown key id."""
    if not settings.uses_identity_provider:
        return None
    oauth = OAuth()
    return oauth.register(
        "library",
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret,
        server_metadata_url=settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs={"scope": "openid profile", "code_challenge_method": "S256"},
    )


async def start(
    client: Any, request: Request, redirect_uri: str
) -> tuple[Response, dict[str, Any]]:
    """The redirect to the provider, and the state to keep until it answers."""
    request.scope["session"] = {}
    try:
        response = await client.authorize_redirect(
            request, redirect_uri, prompt="login", max_age=FRESH_LOGIN_SECONDS
        )
    except (AuthlibBaseError, JoseError, httpx2.HTTPError, ValueError) as error:
        raise ProviderSignInFailed(type(error).__name__) from error
    return response, {**request.scope["session"], STARTED_AT: time.time()}


async def finish(
    client: Any, request: Request, state: dict[str, Any], settings: Settings
) -> ProviderIdentity:
    started_at = state.pop(STARTED_AT, None)
    request.scope["session"] = state
    try:
        token = await client.authorize_access_token(request, leeway=LEEWAY_SECONDS)
    except (AuthlibBaseError, JoseError, httpx2.HTTPError, ValueError, KeyError) as error:
        raise ProviderSignInFailed(type(error).__name__) from error
    claims = token.get("userinfo")
    if not claims or "sub" not in claims:
        raise ProviderSignInFailed("no ID token")
    # The login must have happened during this sign-in: not a session the provider kept
    # from earlier (a staff member's, before the screen was handed to a patron).
    auth_time = claims.get("auth_time")
    if (
        not isinstance(auth_time, int | float)
        or not isinstance(started_at, int | float)
        or not started_at - AUTH_TIME_SKEW_SECONDS
        <= auth_time
        <= time.time() + AUTH_TIME_SKEW_SECONDS
    ):
        raise ProviderSignInFailed("login not fresh")
    return ProviderIdentity(
        issuer=str(claims["iss"]),
        subject=str(claims["sub"]),
        display_name=str(claims.get("name") or claims.get("preferred_username") or ""),
        roles=roles_from_groups(
            claims.get(settings.oidc_groups_claim),
            desk_groups=settings.oidc_desk_groups,
            officer_groups=settings.oidc_officer_groups,
        ),
    )
