"""The portal practises what it preaches (docs/PROMISES.md promise 7): no card number, PIN or
address in logs or URLs, only necessary cookies with safe flags, nothing from elsewhere."""

from __future__ import annotations

import logging
import re

from tests.factories import make_patron, publish, standard_catalog
from tests.web import choose, sign_in

PAGES = [
    "/privacy",
    "/services/reading_history",
    "/reading-history",
    "/saved-lists",
    "/privacy/record",
    "/signin",
    "/setup-pin",
]


async def test_logs_hold_no_card_number_pin_or_address(portal, caplog) -> None:
    await publish(standard_catalog())
    # Long PINs: at DEBUG the database log holds hex hashes, where a 4-digit PIN could turn
    # up by chance; an 8-digit one cannot.
    patron = await make_patron(pin="48260391")
    caplog.set_level(logging.DEBUG)
    await portal.client.post("/signin", data={"card": patron.card, "pin": "73015529"})
    await sign_in(portal.client, patron)
    await choose(portal.client, "reading_history", "yes")
    for path in PAGES:
        await portal.client.get(path)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "GET /privacy 200" in logged  # the access log is really there
    for secret in (patron.card, "48260391", "73015529", "127.0.0.1", "testclient"):
        assert secret not in logged


async def test_no_identifier_in_any_url(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    await sign_in(portal.client, patron)
    await choose(portal.client, "saved_lists", "yes")
    await portal.client.post("/saved-lists", data={"name": "Mine"})
    for path in PAGES:
        html = (await portal.client.get(path)).text
        for url in re.findall(r'(?:href|action|hx-post|src)="([^"]*)"', html):
            assert patron.card not in url
            assert not re.search(r"/\d+(/|$)", url), f"numeric id in {url}"


async def test_nothing_is_loaded_from_another_origin(portal) -> None:
    await publish(standard_catalog())
    await sign_in(portal.client, await make_patron())
    for path in PAGES:
        response = await portal.client.get(path)
        for url in re.findall(r'(?:href|src|action)="([^"]*)"', response.text):
            assert url.startswith(("/", "#")), f"{path} references {url}"
        csp = response.headers["content-security-policy"]
        assert "default-src 'none'" in csp
        assert "unsafe-inline" not in csp
        assert "<style" not in response.text
        assert " style=" not in response.text
        assert "<script>" not in response.text  # scripts only from files


async def test_the_csp_sent_allows_nothing_but_the_portal_itself(portal) -> None:
    await publish(standard_catalog())
    for path in ("/signin", "/static/portal.css", "/no-such-page"):
        header = (await portal.client.get(path)).headers["content-security-policy"]
        directives = dict(part.strip().split(" ", 1) for part in header.split(";"))
        assert directives["default-src"] == "'none'"
        assert {"script-src", "style-src", "form-action", "frame-ancestors"} <= set(directives)
        for directive, value in directives.items():
            assert value in ("'self'", "'none'"), f"{path}: {directive} {value}"


async def test_only_necessary_cookies_with_safe_flags(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    language = await portal.client.post("/language", data={"locale": "en", "next": "/signin"})
    signin = await portal.client.post("/signin", data={"card": patron.card, "pin": patron.pin})
    cookies = language.headers.get_list("set-cookie") + signin.headers.get_list("set-cookie")
    names = {cookie.split("=", 1)[0] for cookie in cookies}
    assert names == {"portal_lang", "portal_session"}
    for cookie in cookies:
        lowered = cookie.lower()
        assert "httponly" in lowered
        assert "samesite=lax" in lowered


async def test_cross_site_posts_are_refused(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    await sign_in(portal.client, patron)
    forged = await portal.client.post(
        "/privacy/everything-off", headers={"origin": "https://evil.example"}
    )
    assert forged.status_code == 403
    fetch_meta = await portal.client.post(
        "/privacy/everything-off",
        headers={"sec-fetch-site": "cross-site", "origin": "http://portal.test"},
    )
    assert fetch_meta.status_code == 403
    no_headers = await portal.client.post("/privacy/everything-off", headers={"origin": ""})
    assert no_headers.status_code == 403


async def test_shared_terminals_never_remember_a_card_number(portal) -> None:
    for path in ("/signin", "/setup-pin"):
        page = (await portal.client.get(path)).text
        card = re.search(r'<input id="card"[^>]*>', page)
        assert card, path
        assert 'autocomplete="off"' in card.group(0)
