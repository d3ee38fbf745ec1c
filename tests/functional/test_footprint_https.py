"""Behind HTTPS every cookie is Secure and browsers are told to stay on HTTPS."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.factories import make_patron, publish, standard_catalog


@pytest.fixture
def portal_settings(settings):
    return replace(settings, https=True)


async def test_cookies_are_secure_behind_https(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    signin = await portal.client.post("/signin", data={"card": patron.card, "pin": patron.pin})
    assert "secure" in signin.headers["set-cookie"].lower()
    assert "strict-transport-security" in signin.headers
