"""The integration API: library systems get access tokens with the client credentials grant
and hand over loans; without consent nothing is kept; a token does only what its scopes
allow, and stops working when it expires or its client is revoked or rotated."""

from __future__ import annotations

import time
from datetime import date, timedelta

import httpx2 as httpx
import pytest

from portal.api import services
from portal.api.models import ApiClient
from portal.api.policy import ACCESS_TOKEN_SECONDS, Scope, secret_lookup
from portal.api.standings import REFRESH_SECONDS, ClientStandings
from portal.clock import local_date
from portal.credentials import throttle
from portal.stores.reading_history.models import HistoryEntry
from tests.api import basic, make_client, signed_token, token_from_endpoint
from tests.factories import SECRET, make_patron, now, publish, standard_catalog
from tests.support import BASE_URL
from tests.web import choose, sign_in

LOAN = {"title": "Kindred", "author": "Octavia E. Butler", "borrowed_on": "2026-05-05"}
GRANT = {"grant_type": "client_credentials"}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(portal) -> FakeClock:
    """The portal's cache of clients' standing, on a clock the test moves."""
    fake = FakeClock()
    portal.app.state.client_standings.clock = fake
    return fake


async def _loans(portal, card: str, token: str):  # type: ignore[no-untyped-def]
    return await portal.client.post(
        "/api/v1/loans", json={"card_number": card, "loans": [LOAN]}, headers=bearer(token)
    )


async def _check(portal, card: str, token: str):  # type: ignore[no-untyped-def]
    return await _check_with(portal.client, card, token)


async def _check_with(client: httpx.AsyncClient, card: str, token: str) -> httpx.Response:
    return await client.post(
        "/api/v1/consent-check",
        json={"card_number": card, "service": "reading_history"},
        headers=bearer(token),
    )


# --- loans and consent ------------------------------------------------------------------


async def test_loans_are_refused_without_consent_and_nothing_is_stored(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    token = await token_from_endpoint(portal.client, await make_client())
    response = await _loans(portal, patron.card, token)
    assert response.status_code == 409
    assert response.json()["error"] == "no_current_consent"
    assert await HistoryEntry.all().count() == 0


async def test_loans_are_kept_with_consent_and_name_the_client_that_sent_them(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    await sign_in(portal.client, patron)
    await choose(portal.client, "reading_history", "yes")
    issued = await make_client(Scope.LOANS_WRITE, Scope.CONSENT_READ, name="koha")
    token = await token_from_endpoint(portal.client, issued)
    response = await _loans(portal, patron.card, token)
    assert response.status_code == 201
    assert response.json() == {"recorded": 1}
    [entry] = await HistoryEntry.filter(patron_id=patron.id)
    sender = await ApiClient.get(id=entry.recorded_by_client)
    assert sender.name == "koha"
    check = await _check(portal, patron.card, token)
    assert check.json() == {"service": "reading_history", "status": "on"}


async def test_malformed_loans_are_refused_clearly(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    headers = bearer(await signed_token(await make_client()))
    for body in (
        {"card_number": patron.card, "loans": []},
        {"card_number": patron.card, "loans": [{"title": "x", "borrowed_on": "yesterday"}]},
        {"loans": [LOAN]},
    ):
        response = await portal.client.post("/api/v1/loans", json=body, headers=headers)
        assert response.status_code == 400, body
    garbage = await portal.client.post("/api/v1/loans", content=b"{", headers=headers)
    assert garbage.json()["error"] == "invalid_json"


# --- the token endpoint -----------------------------------------------------------------


async def test_a_client_gets_a_token_with_basic_or_form_authentication(portal) -> None:
    issued = await make_client(Scope.CONSENT_READ, Scope.LOANS_WRITE)
    with_basic = await portal.client.post("/oauth/token", data=GRANT, headers=basic(issued))
    with_form = await portal.client.post(
        "/oauth/token",
        data={**GRANT, "client_id": issued.client_id, "client_secret": issued.secret},
    )
    for answer in (with_basic, with_form):
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == ACCESS_TOKEN_SECONDS
        assert body["scope"] == "consent:read loans:write"
        assert answer.headers["cache-control"] == "no-store"
    [client] = await services.list_clients()
    assert client.last_token_at is not None


async def test_a_token_holds_only_the_scopes_asked_for(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    issued = await make_client(Scope.CONSENT_READ, Scope.LOANS_WRITE)
    token = await token_from_endpoint(portal.client, issued, scope="consent:read")
    assert (await _check(portal, patron.card, token)).status_code == 200
    assert (await _loans(portal, patron.card, token)).status_code == 403


async def test_scopes_the_client_does_not_hold_are_refused(portal) -> None:
    issued = await make_client(Scope.CONSENT_READ)
    for scope in ("loans:write", "consent:read loans:write", "admin"):
        answer = await portal.client.post(
            "/oauth/token", data={**GRANT, "scope": scope}, headers=basic(issued)
        )
        assert (answer.status_code, answer.json()["error"]) == (400, "invalid_scope"), scope


async def test_a_wrong_secret_or_unknown_client_is_invalid_client(portal) -> None:
    issued = await make_client()
    wrong = await portal.client.post("/oauth/token", data=GRANT, headers=basic(issued, "guess"))
    unknown = await portal.client.post(
        "/oauth/token", data={**GRANT, "client_id": "nobody", "client_secret": "guess"}
    )
    anonymous = await portal.client.post("/oauth/token", data=GRANT)
    for answer in (wrong, unknown, anonymous):
        assert answer.status_code == 401
        assert answer.json() == {
            "error": "invalid_client",
            "message": "The client id or secret is not valid.",
        }
        assert answer.headers["www-authenticate"] == 'Basic realm="portal"'


async def test_malformed_token_requests_get_rfc_6749_errors(portal) -> None:
    issued = await make_client()
    both = {**GRANT, "client_id": issued.client_id, "client_secret": issued.secret}
    cases = [
        ({"data": {}, "headers": basic(issued)}, "invalid_request"),
        ({"json": GRANT, "headers": basic(issued)}, "invalid_request"),
        ({"data": both, "headers": basic(issued)}, "invalid_request"),  # two methods
        ({"content": "grant_type=client_credentials&scope=a&scope=b"}, "invalid_request"),
        ({"data": {"grant_type": "password"}, "headers": basic(issued)}, "unsupported_grant_type"),
    ]
    for request, error in cases:
        if "content" in request:
            request["headers"] = {
                **basic(issued),
                "content-type": "application/x-www-form-urlencoded",
            }
        answer = await portal.client.post("/oauth/token", **request)
        assert (answer.status_code, answer.json()["error"]) == (400, error), request


async def test_failed_client_authentication_is_throttled_by_network(portal) -> None:
    issued = await make_client()
    limit = portal.app.state.settings.signin_attempts * throttle.NETWORK_FACTOR
    for n in range(limit):
        wrong = await portal.client.post("/oauth/token", data=GRANT, headers=basic(issued, f"x{n}"))
        assert wrong.status_code == 401
    held = await portal.client.post("/oauth/token", data=GRANT, headers=basic(issued))
    assert (held.status_code, held.json()["error"]) == (429, "too_many_requests")
    assert held.headers["retry-after"] == str(portal.app.state.settings.signin_window_seconds)


async def test_successful_client_authentication_is_not_counted(portal) -> None:
    issued = await make_client()
    for _ in range(portal.app.state.settings.signin_attempts + 2):
        answer = await portal.client.post("/oauth/token", data=GRANT, headers=basic(issued))
        assert answer.status_code == 200


async def test_the_secret_is_stored_only_as_a_keyed_hash(portal) -> None:
    issued = await make_client()
    [row] = await ApiClient.filter(client_id=issued.client_id).values()
    assert issued.secret not in " ".join(map(str, row.values()))
    assert row["secret_lookup"] == secret_lookup(SECRET, issued.secret)


# --- access tokens at the API -----------------------------------------------------------


async def test_a_missing_scope_is_refused_naming_the_scope(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    token = await token_from_endpoint(portal.client, await make_client(Scope.CONSENT_READ))
    answer = await _loans(portal, patron.card, token)
    assert answer.status_code == 403
    assert answer.json() == {
        "error": "insufficient_scope",
        "scope": "loans:write",
        "message": "The access token does not grant the scope this request needs.",
    }
    assert answer.headers["www-authenticate"] == (
        'Bearer realm="portal", error="insufficient_scope", scope="loans:write"'
    )


async def test_without_the_scope_the_api_reveals_nothing_about_the_patron(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    await sign_in(portal.client, patron)
    await choose(portal.client, "reading_history", "yes")
    token = await token_from_endpoint(portal.client, await make_client(Scope.DELETIONS_READ))
    answers = [
        await _check(portal, patron.card, token),
        await _check(portal, "2999 9999 9999", token),
        await portal.client.post("/api/v1/consent-check", content=b"{", headers=bearer(token)),
        await _loans(portal, patron.card, token),
        await _loans(portal, "2999 9999 9999", token),
    ]
    assert [answer.status_code for answer in answers] == [403] * 5
    assert answers[0].content == answers[1].content == answers[2].content
    assert answers[3].content == answers[4].content
    assert await HistoryEntry.all().count() == 0


async def test_no_token_gets_a_bare_challenge_and_a_bad_one_invalid_token(portal) -> None:
    await publish(standard_catalog())
    none = await portal.client.post("/api/v1/loans", json={"card_number": "2000"})
    bad = await portal.client.post(
        "/api/v1/loans", json={"card_number": "2000"}, headers=bearer("nope")
    )
    assert (none.status_code, bad.status_code) == (401, 401)
    assert none.json()["error"] == bad.json()["error"] == "unauthorised"
    assert none.headers["www-authenticate"] == 'Bearer realm="portal"'
    assert bad.headers["www-authenticate"] == 'Bearer realm="portal", error="invalid_token"'


async def test_an_expired_token_is_refused(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    issued = await make_client()
    issued_at = int(time.time()) - ACCESS_TOKEN_SECONDS
    expired = await _check(portal, patron.card, await signed_token(issued, at=issued_at))
    current = await _check(portal, patron.card, await signed_token(issued, at=issued_at + 2))
    assert expired.status_code == 401
    assert expired.headers["www-authenticate"].endswith('error="invalid_token"')
    assert current.status_code == 200


async def test_a_revoked_client_is_refused_within_the_stated_bound(portal, clock) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    issued = await make_client()
    token = await token_from_endpoint(portal.client, issued)
    assert (await _check(portal, patron.card, token)).status_code == 200
    # Revoked from the command line: another process, which only the database tells.
    await services.revoke_client(issued.name, now=now())
    again = await portal.client.post("/oauth/token", data=GRANT, headers=basic(issued))
    assert again.status_code == 401  # no new token at once
    clock.now += REFRESH_SECONDS
    refused = await _check(portal, patron.card, token)
    assert (refused.status_code, refused.json()["error"]) == (401, "unauthorised")


async def test_rotation_ends_the_old_secret_and_its_tokens(portal, clock) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    issued = await make_client()
    old_token = await token_from_endpoint(portal.client, issued)
    assert (await _check(portal, patron.card, old_token)).status_code == 200
    rotated = await services.rotate_client(SECRET, issued.name, None, now=now())
    old_secret = await portal.client.post("/oauth/token", data=GRANT, headers=basic(issued))
    assert old_secret.status_code == 401
    new_token = await token_from_endpoint(portal.client, rotated)
    # This process has not read the rotation yet, and the new token works all the same.
    assert (await _check(portal, patron.card, new_token)).status_code == 200
    clock.now += REFRESH_SECONDS
    assert (await _check(portal, patron.card, old_token)).status_code == 401
    assert (await _check(portal, patron.card, new_token)).status_code == 200


async def test_checking_tokens_costs_no_query_per_request(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    token = await token_from_endpoint(portal.client, await make_client())
    reads = []

    async def counted() -> dict[int, services.Standing]:
        reads.append(1)
        return await services.client_standings()

    portal.app.state.client_standings = ClientStandings(counted, clock=FakeClock())
    for _ in range(20):
        assert (await _check(portal, patron.card, token)).status_code == 200
    assert reads == [1]  # one read of every client's standing, then memory


async def test_hostile_token_requests_are_refused_without_a_server_error(portal) -> None:
    issued = await make_client()
    for client_id in ("nul\x00byte", "x" * 5000, "é" * 16, issued.client_id + "\x00"):
        answer = await portal.client.post(
            "/oauth/token", data={**GRANT, "client_id": client_id, "client_secret": "x\x00"}
        )
        assert (answer.status_code, answer.json()["error"]) == (401, "invalid_client"), client_id
    for empty in ("Basic ", "Basic  ", "basic\t"):  # found by the form fuzzer: a 500 before
        answer = await portal.client.post(
            "/oauth/token", data={"grant_type": ""}, headers={"authorization": empty}
        )
        assert (answer.status_code, answer.json()["error"]) == (401, "invalid_client"), empty


async def test_library_systems_send_no_browser_origin_and_need_none(portal) -> None:
    """The cross-site guard's exemption for /api/ and /oauth/ (portal.web.origin): a server
    sends no Origin header, and neither endpoint reads a cookie."""
    await publish(standard_catalog())
    patron = await make_patron()
    issued = await make_client()
    transport = httpx.ASGITransport(app=portal.app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as system:
        token = await token_from_endpoint(system, issued)
        answer = await _check_with(system, patron.card, token)
    assert answer.json() == {"service": "reading_history", "status": "never_asked"}


async def test_a_loan_dated_after_today_is_refused_and_nothing_stored(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    await sign_in(portal.client, patron)
    await choose(portal.client, "reading_history", "yes")
    headers = bearer(await signed_token(await make_client()))
    today = local_date(now(), portal.app.state.settings.timezone)
    for day in (date(9999, 12, 31), today + timedelta(days=1)):
        loan = {**LOAN, "borrowed_on": day.isoformat()}
        response = await portal.client.post(
            "/api/v1/loans", json={"card_number": patron.card, "loans": [loan]}, headers=headers
        )
        assert response.status_code == 400
        assert response.json()["error"] == "loans_invalid"
    assert await HistoryEntry.all().count() == 0
    loan = {**LOAN, "borrowed_on": today.isoformat()}
    response = await portal.client.post(
        "/api/v1/loans", json={"card_number": patron.card, "loans": [loan]}, headers=headers
    )
    assert response.status_code == 201
