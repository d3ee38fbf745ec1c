"""POST /oauth/token: the client credentials grant (RFC 6749 §4.4) with Authlib's
authorization-server pieces, for library systems. Clients authenticate with
`client_secret_basic` or `client_secret_post` (§2.3.1) and receive a signed access token
(portal.api.policy) that lives five minutes; nothing about the token is stored.

Authlib's server is synchronous and has no Starlette integration: this module is the glue.
The client a request names is read from the database first (asynchronously), then Authlib
runs its checks against that one record. Failed client authentication counts against the
caller's network, never the client id, in the database as sign-in guesses do
(portal.credentials.throttle, Guessing.OAUTH)."""

from __future__ import annotations

import base64
import time
from collections import Counter
from typing import Any

from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    ClientMixin,
    OAuth2Error,
    OAuth2Payload,
    OAuth2Request,
)
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from portal.api import services
from portal.api.policy import (
    ACCESS_TOKEN_SECONDS,
    Scope,
    parse_scopes,
    scope_text,
    secret_matches,
    sign_access_token,
)
from portal.api.services import ClientRecord
from portal.clock import utcnow
from portal.credentials import throttle
from portal.credentials.throttle import Guessing
from portal.errors import ApiCode
from portal.patrons.access import count_network_guess
from portal.web.problems import json_error
from portal.web.requests import settings_of

REALM = "portal"
AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
GRANT_TYPE = "client_credentials"
FORM_TYPE = "application/x-www-form-urlencoded"
# RFC 6749 §5.1 and §5.2: token responses are never cached.
NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}

_CODES = {
    "invalid_request": ApiCode.OAUTH_INVALID_REQUEST,
    "invalid_client": ApiCode.OAUTH_INVALID_CLIENT,
    "invalid_scope": ApiCode.OAUTH_INVALID_SCOPE,
    "unsupported_grant_type": ApiCode.OAUTH_UNSUPPORTED_GRANT_TYPE,
}


class _Client(ClientMixin):  # type: ignore[misc]  # Authlib ships no types
    """Authlib's view of one client record: confidential, token endpoint only."""

    def __init__(self, record: ClientRecord, secret: str) -> None:
        self.record = record
        self._secret = secret

    def get_client_id(self) -> str | None:
        return self.record.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_response_type(self, response_type: str) -> bool:
        return False

    def get_allowed_scope(self, scope: str | None) -> str | None:
        """No scope asked: every scope the client holds. Otherwise exactly those asked, if it
        holds them all; None (invalid_scope) if not."""
        if not scope:
            return scope_text(self.record.scopes)
        asked = parse_scopes(scope)
        if not asked or not asked <= self.record.scopes:
            return None
        return scope_text(asked)

    def check_client_secret(self, client_secret: str) -> bool:
        return secret_matches(self._secret, client_secret, self.record.secret_lookup)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in AUTH_METHODS

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == GRANT_TYPE


class _ClientCredentials(ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS


class _Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, form: dict[str, str]) -> None:
        self._form = form

    @property
    def data(self) -> dict[str, str]:
        return self._form

    @property
    def datalist(self) -> dict[str, list[str]]:
        return {key: [value] for key, value in self._form.items()}


class _TokenRequest(OAuth2Request):  # type: ignore[misc]
    def __init__(self, request: Request, form: dict[str, str]) -> None:
        # Authlib refuses a plain-HTTP URI (RFC 6749 §1.6). TLS ends at the reverse proxy
        # in front of the portal (deploy/README.md), so the URL the app sees never says
        # https: that check is the deployment's, as for every card number the API receives.
        super().__init__(
            request.method, str(request.url.replace(scheme="https")), headers=request.headers
        )
        self._form = form
        self.payload = _Payload(form)

    @property
    def form(self) -> dict[str, str]:
        return self._form

    @property
    def args(self) -> dict[str, str]:
        return {}


class _TokenServer(AuthorizationServer):  # type: ignore[misc]
    """One per token request: it knows the one client the request names."""

    def __init__(self, client: ClientRecord | None, secret: str) -> None:
        super().__init__(scopes_supported=[scope.value for scope in Scope])
        self._client = _Client(client, secret) if client is not None else None
        self._secret = secret
        self.register_grant(_ClientCredentials)
        self.register_token_generator(
            "default",
            BearerTokenGenerator(self._sign, expires_generator=ACCESS_TOKEN_SECONDS),
        )

    def query_client(self, client_id: str) -> _Client | None:
        if self._client is not None and client_id == self._client.get_client_id():
            return self._client
        return None

    def _sign(self, *, client: _Client, grant_type: str, user: Any, scope: str) -> str:
        record = client.record
        return sign_access_token(
            self._secret,
            client=record.id,
            client_id=record.client_id or "",
            name=record.name,
            generation=record.generation,
            scopes=parse_scopes(scope) or frozenset(),
            now=int(time.time()),
            system=record.system,
        )

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        """Nothing to save: the token is signed, and checked without the database."""

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        """No signals are listened to."""

    def create_oauth2_request(self, request: OAuth2Request) -> OAuth2Request:
        return request

    def handle_response(
        self, status: int, body: dict[str, Any], headers: list[tuple[str, str]]
    ) -> Response:
        return JSONResponse(body, status_code=status, headers=dict(headers))

    def handle_error_response(self, request: OAuth2Request, error: OAuth2Error) -> Response:
        return _refusal(_CODES.get(error.error, ApiCode.OAUTH_INVALID_REQUEST))


def _refusal(code: ApiCode, *, retry_after: int | None = None) -> Response:
    """RFC 6749 §5.2 errors with the portal's message: `{"error", "message"}`. An unknown
    client or wrong secret is always 401 with a Basic challenge (§2.3.1 allows it for
    every method; it is required when the client used the Authorization header)."""
    headers = dict(NO_STORE)
    if code is ApiCode.OAUTH_INVALID_CLIENT:
        headers["www-authenticate"] = f'Basic realm="{REALM}"'
    if retry_after is not None:
        headers["retry-after"] = str(retry_after)
    return json_error(code, headers=headers)


async def _form(request: Request) -> dict[str, str] | None:
    """The urlencoded parameters; None when the body is not that or repeats a parameter
    (§3.2: parameters must not be included more than once)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        return None
    try:
        items = (await request.form()).multi_items()
    except (ValueError, UnicodeDecodeError):
        return None
    if any(count > 1 for count in Counter(key for key, _ in items).values()):
        return None
    if not all(isinstance(value, str) for _, value in items):
        return None
    return {key: str(value) for key, value in items}


def _unreadable_basic(request: Request) -> bool:
    """An `Authorization: Basic` header whose credentials are missing or not base64 of UTF-8 text.
    Authlib decodes them strictly and raises on such bytes; they authenticate no client."""
    kind, _, credentials = request.headers.get("authorization", "").partition(" ")
    if kind.lower() != "basic":
        return False
    if not credentials.strip():
        return True  # "Basic " and nothing after: Authlib's split fails on it
    try:
        base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except ValueError:  # not base64 (binascii.Error), or not UTF-8 (UnicodeDecodeError)
        return True
    return False


async def token(request: Request) -> Response:
    settings = settings_of(request)
    form = await _form(request)
    if form is None or "grant_type" not in form:
        return _refusal(ApiCode.OAUTH_INVALID_REQUEST)
    if _unreadable_basic(request):
        return _refusal(ApiCode.OAUTH_INVALID_CLIENT)
    basic_id, _ = extract_basic_authorization(request.headers)
    if basic_id is not None and (
        "client_secret" in form or form.get("client_id", basic_id) != basic_id
    ):
        return _refusal(ApiCode.OAUTH_INVALID_REQUEST)  # §2.3: one method per request
    named = basic_id or form.get("client_id")
    if not named:
        return _refusal(ApiCode.OAUTH_INVALID_CLIENT)
    # Counted before the secret is checked, so parallel guesses cannot outrun the limit; by
    # the network alone: a client id is no secret, and a 256-bit secret cannot be guessed, so
    # a stranger who knows the id must not lock its library system out.
    reservation = await count_network_guess(request, Guessing.OAUTH)
    if reservation is None:
        return _refusal(ApiCode.OAUTH_THROTTLED, retry_after=settings.signin_window_seconds)
    record = await services.client_for_authentication(named)
    oauth_request = _TokenRequest(request, form)
    response: Response = _TokenServer(record, settings.secret_key).create_token_response(
        oauth_request
    )
    if oauth_request.client is not None:  # authenticated: not a guess, whatever came after
        await throttle.refund(reservation)
    if response.status_code == 200 and record is not None:
        await services.note_token_issued(record.id, now=utcnow())
    return response


routes = [Route("/oauth/token", token, methods=["POST"], name="oauth.token")]
