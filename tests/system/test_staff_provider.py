"""Staff sign in through a real OpenID Connect provider on loopback (node-oidc-provider),
with Authlib doing the portal's side: code + PKCE, discovery, JWKS, nonce, audience, expiry."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace

import httpx2 as httpx
import pytest

from portal.app import create_app
from portal.settings import Settings
from portal.staff.models import StaffAuditEvent, StaffMember, StaffSession
from tests.oidc_provider import Provider, log_in, running_provider
from tests.support import BASE_URL, portal_client
from tests.web import visible_text

CALLBACK = f"{BASE_URL}/staff/provider/callback"


def _with_provider(settings: Settings, provider: Provider) -> Settings:
    return replace(
        settings,
        oidc_issuer=provider.issuer,
        oidc_client_id=provider.client_id,
        oidc_client_secret=provider.client_secret,
    )


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with running_provider(CALLBACK) as running:
        yield running


@pytest.fixture
def portal_settings(settings: Settings, provider: Provider) -> Settings:
    return _with_provider(settings, provider)


@pytest.fixture
async def browser() -> AsyncIterator[httpx.AsyncClient]:
    """The person's browser at the provider: its own cookies."""
    async with httpx.AsyncClient() as client:
        yield client


async def _sign_in(portal, browser: httpx.AsyncClient, login: str) -> httpx.Response:  # type: ignore[no-untyped-def]
    start = await portal.client.get("/staff/provider")
    assert start.status_code == 302, start.text
    assert "code_challenge_method=S256" in start.headers["location"]
    assert "prompt=login" in start.headers["location"]
    callback = await log_in(start.headers["location"], login, browser)
    return await portal.client.get(callback.removeprefix(BASE_URL))


async def test_a_desk_staff_member_signs_in_through_the_provider(portal, browser) -> None:
    signed_in = await _sign_in(portal, browser, "desk-dana")
    assert signed_in.status_code == 303
    assert signed_in.headers["location"] == "/desk"
    desk = await portal.client.get("/desk")
    assert desk.status_code == 200
    assert "Dana (desk)" in visible_text(desk.text)
    member = await StaffMember.get()
    assert member.source == "oidc"
    assert member.username is None
    assert await StaffAuditEvent.filter(action="signed_in").count() == 1
    signed_out = await portal.client.post("/staff/signout")
    assert signed_out.headers["location"] == "/staff/signin"
    assert await StaffSession.all().count() == 0
    assert (await portal.client.get("/desk")).headers["location"] == "/staff/signin"


async def test_the_privacy_officer_group_gives_the_officer_role_only(portal, browser) -> None:
    signed_in = await _sign_in(portal, browser, "officer-omar")
    assert signed_in.headers["location"] == "/staff/trail"
    assert (await portal.client.get("/staff/trail")).status_code == 200
    assert (await portal.client.get("/desk")).status_code == 403


async def test_someone_in_no_staff_group_is_refused_with_a_clear_page(portal, browser) -> None:
    refused = await _sign_in(portal, browser, "reader-rita")
    assert refused.status_code == 403
    assert "in no library staff group" in visible_text(refused.text)
    assert await StaffSession.all().count() == 0


async def test_a_replayed_callback_is_refused(portal, browser) -> None:
    start = await portal.client.get("/staff/provider")
    callback = (await log_in(start.headers["location"], "desk-dana", browser)).removeprefix(
        BASE_URL
    )
    state_cookie = portal.client.cookies.get("portal_staff_signin")
    assert (await portal.client.get(callback)).status_code == 303
    portal.client.cookies.clear()
    portal.client.cookies.set("portal_staff_signin", state_cookie or "")
    replayed = await portal.client.get(callback)
    assert replayed.status_code == 400
    assert "did not complete" in visible_text(replayed.text)
    assert await StaffSession.all().count() == 1  # only the first


async def test_a_callback_with_another_browsers_state_is_refused(portal, browser) -> None:
    start = await portal.client.get("/staff/provider")
    callback = (await log_in(start.headers["location"], "desk-dana", browser)).removeprefix(
        BASE_URL
    )
    portal.client.cookies.clear()  # a different browser, which started no sign-in
    assert (await portal.client.get(callback)).status_code == 400
    assert await StaffSession.all().count() == 0


@pytest.mark.parametrize("misbehave", ["audience", "expired"])
async def test_a_token_for_another_audience_or_expired_is_refused(
    settings: Settings, browser: httpx.AsyncClient, misbehave: str
) -> None:
    with running_provider(CALLBACK, misbehave=misbehave) as wrong:
        app = create_app(_with_provider(settings, wrong))
        async with app.router.lifespan_context(app), portal_client(app) as client:
            start = await client.get("/staff/provider")
            callback = await log_in(start.headers["location"], "desk-dana", browser)
            refused = await client.get(callback.removeprefix(BASE_URL))
            assert refused.status_code == 400
            assert "did not complete" in visible_text(refused.text)
            assert await StaffSession.all().count() == 0


async def test_local_sign_in_is_off_when_the_provider_signs_staff_in(portal) -> None:
    page = await portal.client.get("/staff/signin")
    assert "/staff/provider" in page.text
    assert 'name="password"' not in page.text
