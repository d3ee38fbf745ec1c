"""The consent check for library systems: one pair or a batch of up to 100, each answered
on / off / never asked / paused / not offered at this age, from one database query."""

from __future__ import annotations

import logging
from datetime import date

import pytest

from portal.api.access import Scope
from portal.api.services import check_consents
from portal.catalog.services import forget_published_catalog, published_catalog
from portal.consent.policy import Decision
from tests.api import bearer as api_bearer
from tests.factories import (
    SECRET,
    catalog_text,
    decides,
    make_patron,
    now,
    publish,
    service_table,
    standard_catalog,
)


async def bearer() -> dict[str, str]:
    return await api_bearer(Scope.CONSENT_READ)


async def _check(portal, body: dict[str, object], headers: dict[str, str]):  # type: ignore[no-untyped-def]
    return await portal.client.post("/api/v1/consent-check", json=body, headers=headers)


async def test_each_answer_a_library_system_can_get(portal) -> None:
    await publish(
        catalog_text(
            service_table("reading_history", store="reading_history"),
            service_table("saved_lists", store="saved_lists"),
            service_table("newsletter"),
            service_table("fundraising", minimum_age=18),
        )
    )
    patron = await make_patron()
    child = await make_patron(born_on=date(now().year - 10, 1, 1))
    await decides(patron.id, "reading_history", Decision.YES)
    await decides(patron.id, "saved_lists", Decision.NO)
    headers = await bearer()
    pairs = [
        (patron.card, "reading_history", "on"),
        (patron.card, "saved_lists", "off"),
        (patron.card, "newsletter", "never_asked"),
        (child.card, "fundraising", "not_offered"),
        (patron.card, "fundraising", "never_asked"),
    ]
    for card, service, expected in pairs:
        answer = await _check(portal, {"card_number": card, "service": service}, headers)
        assert answer.json() == {"service": service, "status": expected}


async def test_a_changed_notice_pauses_the_answer(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    await decides(patron.id, "newsletter", Decision.YES)
    changed = catalog_text(
        service_table("reading_history", store="reading_history"),
        service_table("saved_lists", store="saved_lists"),
        service_table("newsletter", data_categories=("email", "phone")),
    )
    await publish(changed)
    forget_published_catalog()
    answer = await _check(
        portal, {"card_number": patron.card, "service": "newsletter"}, await bearer()
    )
    assert answer.json()["status"] == "paused"


async def test_unknown_cards_and_services_are_named_errors(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    headers = await bearer()
    unknown_card = await _check(
        portal, {"card_number": "29999999999", "service": "newsletter"}, headers
    )
    assert (unknown_card.status_code, unknown_card.json()["error"]) == (404, "card_unknown")
    unknown_service = await _check(portal, {"card_number": patron.card, "service": "x"}, headers)
    assert unknown_service.json()["error"] == "unknown_service"
    malformed = await _check(portal, {"card_number": "12", "service": "newsletter"}, headers)
    assert malformed.json()["error"] == "card_format"


async def test_a_batch_answers_each_pair_in_order(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    other = await make_patron()
    await decides(other.id, "newsletter", Decision.YES)
    checks = [
        {"card_number": patron.card, "service": "newsletter"},
        {"card_number": other.card, "service": "newsletter"},
        {"card_number": "29999999999", "service": "newsletter"},
        {"card_number": other.card, "service": "nope"},
    ]
    answer = await _check(portal, {"checks": checks}, await bearer())
    assert answer.status_code == 200
    assert answer.json() == {
        "results": [
            {"service": "newsletter", "status": "never_asked"},
            {"service": "newsletter", "status": "on"},
            {"service": "newsletter", "error": "card_unknown"},
            {"service": "nope", "error": "unknown_service"},
        ]
    }


@pytest.mark.parametrize("size", [0, 101])
async def test_a_batch_holds_one_to_a_hundred_pairs(portal, size: int) -> None:
    await publish(standard_catalog())
    checks = [{"card_number": "20000000001", "service": "newsletter"}] * size
    answer = await _check(portal, {"checks": checks}, await bearer())
    assert (answer.status_code, answer.json()["error"]) == (400, "checks_invalid")


async def test_a_batch_of_a_hundred_costs_one_query(
    portal, caplog: pytest.LogCaptureFixture
) -> None:
    await publish(standard_catalog())
    patrons = [await make_patron() for _ in range(10)]
    for patron in patrons[:5]:
        await decides(patron.id, "newsletter", Decision.YES)
    pairs = [
        (patron.card, service)
        for patron in patrons
        for service in ("newsletter", "reading_history", "saved_lists")
    ] * 3 + [(patrons[0].card, "newsletter")] * 10
    assert len(pairs) == 100
    await published_catalog()  # held in memory between publications, as in a running server
    caplog.set_level(logging.DEBUG, logger="tortoise.db_client")
    caplog.clear()
    results = await check_consents(SECRET, pairs, now=now(), timezone="UTC")
    statements = [r.getMessage() for r in caplog.records if r.name == "tortoise.db_client"]
    assert len(statements) == 1, statements
    assert [r.answer.value for r in results[:3] if r.answer] == ["on", "never_asked", "never_asked"]


# Its own lane (portal.api.check): ahead of the middleware stack, so everything the stack
# does for every other request must be done here too.

MACHINE_CSP = "default-src 'none'; frame-ancestors 'none'"


async def test_the_check_sends_the_machine_headers_and_one_log_line(
    portal, caplog: pytest.LogCaptureFixture
) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    caplog.set_level(logging.INFO, logger="portal.access")
    pair = {"card_number": patron.card, "service": "newsletter"}
    answer = await _check(portal, pair, await bearer())
    assert answer.json() == {"service": "newsletter", "status": "never_asked"}
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["content-security-policy"] == MACHINE_CSP
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in answer.headers  # plain HTTP in this setup
    refused = await _check(portal, {"card_number": "nope", "service": "newsletter"}, await bearer())
    assert (refused.status_code, refused.headers["cache-control"]) == (400, "no-store")
    assert refused.headers["content-security-policy"] == MACHINE_CSP
    lines = [r.getMessage() for r in caplog.records if r.name == "portal.access"]
    checks = [line for line in lines if line.startswith("POST /api/v1/consent-check ")]
    assert [line.split()[2] for line in checks] == ["200", "400"]
    assert all(patron.card not in line for line in lines)


async def test_every_api_answer_sends_the_same_headers_as_the_check(portal) -> None:
    await publish(standard_catalog())
    loans = await portal.client.post("/api/v1/loans", json={}, headers=await bearer())
    assert loans.status_code == 403  # the consent:read token lacks loans:write
    assert loans.headers["content-security-policy"] == MACHINE_CSP
    assert loans.headers["cache-control"] == "no-store"
    page = await portal.client.get("/signin")
    assert page.headers["content-security-policy"] != MACHINE_CSP


async def test_the_check_refuses_an_oversized_body_announced_or_streamed(portal) -> None:
    await publish(standard_catalog())
    announced = await portal.client.post(
        "/api/v1/consent-check", content=b" " * 1_100_000, headers=await bearer()
    )
    assert (announced.status_code, announced.json()["error"]) == (413, "body_too_large")
    assert announced.headers["content-security-policy"] == MACHINE_CSP

    async def stream():  # no Content-Length: counted as it arrives
        for _ in range(1100):
            yield b" " * 1024

    streamed = await portal.client.post(
        "/api/v1/consent-check", content=stream(), headers=await bearer()
    )
    assert (streamed.status_code, streamed.json()["error"]) == (413, "body_too_large")


async def test_the_check_asks_for_its_token_before_reading_the_body(portal) -> None:
    await publish(standard_catalog())
    answer = await portal.client.post("/api/v1/consent-check", content=b"not json")
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == 'Bearer realm="portal"'
    assert (await portal.client.get("/api/v1/consent-check")).status_code == 405


async def test_a_bug_in_the_check_answers_json_and_is_logged(
    portal, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    await publish(standard_catalog())
    patron = await make_patron()

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("portal.api.services.check_consents", broken)
    caplog.set_level(logging.INFO, logger="portal.access")
    portal.client._transport.raise_app_exceptions = False  # type: ignore[attr-defined]
    pair = {"card_number": patron.card, "service": "newsletter"}
    answer = await _check(portal, pair, await bearer())
    assert (answer.status_code, answer.json()) == (500, {"error": "server_error"})
    assert answer.headers["content-security-policy"] == MACHINE_CSP
    lines = [r.getMessage() for r in caplog.records if r.name == "portal.access"]
    assert any(line.startswith("POST /api/v1/consent-check 500 ") for line in lines)


async def test_a_caller_that_hangs_up_gets_nothing_and_is_logged(
    portal, caplog: pytest.LogCaptureFixture
) -> None:
    await publish(standard_catalog())
    authorization = (await bearer())["authorization"].encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/consent-check",
        "raw_path": b"/api/v1/consent-check",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"authorization", authorization)],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    sent: list[object] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.disconnect"}

    async def send(message: object) -> None:
        sent.append(message)

    caplog.set_level(logging.INFO, logger="portal.access")
    await portal.app(scope, receive, send)
    assert sent == []
    lines = [r.getMessage() for r in caplog.records if r.name == "portal.access"]
    assert any(line.startswith("POST /api/v1/consent-check 499 ") for line in lines)
