"""Behind HTTPS every cookie is Secure and browsers are told to stay on HTTPS."""

from __future__ import annotations

from dataclasses import replace

import pytest

from portal.api.policy import Scope
from tests.api import bearer
from tests.factories import make_patron, publish, standard_catalog


@pytest.fixture
def portal_settings(settings):
    return replace(settings, https=True, locales=("en", "es"))


async def test_cookies_are_secure_behind_https(portal) -> None:
    await publish(standard_catalog(("en", "es")), ("en", "es"))
    patron = await make_patron()
    signin = await portal.client.post("/signin", data={"card": patron.card, "pin": patron.pin})
    cookie = signin.headers["set-cookie"]
    assert cookie.startswith("__Host-portal_session=")
    assert "secure" in cookie.lower()
    assert "path=/" in cookie.lower()
    assert "domain" not in cookie.lower()
    assert signin.headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"
    token = cookie.split(";", 1)[0].split("=", 1)[1]
    portal.client.cookies.clear()  # an http:// test client would not send a Secure cookie
    page = await portal.client.get("/privacy", headers={"cookie": f"__Host-portal_session={token}"})
    assert page.status_code == 200


async def test_library_systems_are_told_to_stay_on_https_too(portal) -> None:
    await publish(standard_catalog(("en", "es")), ("en", "es"))
    headers = await bearer(Scope.CONSENT_READ)
    answer = await portal.client.post(
        "/api/v1/consent-check", json={"card_number": "1", "service": "x"}, headers=headers
    )
    assert answer.headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"
    token = await portal.client.post("/oauth/token", data={"grant_type": "client_credentials"})
    assert token.headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"


async def test_the_language_cookie_is_host_only_behind_https(portal) -> None:
    chosen = await portal.client.post("/language", data={"locale": "es", "next": "/signin"})
    cookie = chosen.headers["set-cookie"]
    assert cookie.startswith("__Host-portal_lang=es;")
    assert "secure" in cookie.lower()
    assert "path=/" in cookie.lower()
    assert "domain" not in cookie.lower()
    portal.client.cookies.clear()  # an http:// test client would not send a Secure cookie
    page = await portal.client.get("/signin", headers={"cookie": "__Host-portal_lang=es"})
    assert '<html lang="es"' in page.text
    # The name without the prefix could be set by a sibling host or plain HTTP: not read.
    ignored = await portal.client.get("/signin", headers={"cookie": "portal_lang=es"})
    assert '<html lang="en"' in ignored.text
