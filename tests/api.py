"""Helpers for tests of the integration API: OAuth clients made through the real services,
access tokens from the real token endpoint or signed as it signs them."""

from __future__ import annotations

import base64
import itertools
import time

import httpx2 as httpx

from portal.api import services
from portal.api.policy import Scope, sign_access_token
from portal.api.services import IssuedSecret
from tests.factories import SECRET, now

ALL_SCOPES = frozenset(Scope)
_names = itertools.count(1)


async def make_client(
    *scopes: Scope, name: str | None = None, system: str | None = None
) -> IssuedSecret:
    """A client holding `scopes` (every scope when none are named), speaking for `system`."""
    return await services.add_client(
        SECRET,
        name or f"ils-{next(_names)}",
        frozenset(scopes) or ALL_SCOPES,
        now=now(),
        system=system,
    )


def basic(issued: IssuedSecret, secret: str | None = None) -> dict[str, str]:
    """`client_secret_basic`: RFC 6749 §2.3.1."""
    pair = f"{issued.client_id}:{issued.secret if secret is None else secret}"
    return {"authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


async def token_from_endpoint(
    client: httpx.AsyncClient, issued: IssuedSecret, scope: str | None = None
) -> str:
    form = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    answer = await client.post("/oauth/token", data=form, headers=basic(issued))
    assert answer.status_code == 200, answer.text
    token: str = answer.json()["access_token"]
    return token


async def signed_token(
    issued: IssuedSecret, *, at: int | None = None, scopes: frozenset[Scope] | None = None
) -> str:
    """A token as the token endpoint signs it for the client's current secret, issued `at`
    (Unix seconds; now when omitted)."""
    [record] = [c for c in await services.list_clients() if c.client_id == issued.client_id]
    return sign_access_token(
        SECRET,
        client=record.id,
        client_id=issued.client_id,
        name=record.name,
        generation=record.generation,
        scopes=issued.scopes if scopes is None else scopes,
        now=int(time.time()) if at is None else at,
        system=record.system,
    )


async def bearer(*scopes: Scope, system: str | None = None) -> dict[str, str]:
    """The Authorization header of a new client holding `scopes` (every scope when none)."""
    issued = await make_client(*scopes, system=system)
    return {"authorization": f"Bearer {await signed_token(issued)}"}
