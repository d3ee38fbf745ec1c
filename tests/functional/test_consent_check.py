"""The consent check for library systems: one pair or a batch of up to 100, each answered
on / off / never asked / paused / not offered at this age, from one database query."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest

from portal.api.access import Scope
from portal.api.check import admitted, known_hosts
from portal.api.services import check_consents
from portal.catalog.services import forget_published_catalog, published_catalog
from portal.consent.models import ConsentState
from portal.consent.policy import Decision
from portal.settings import Settings
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
    """Alone and in a batch: one pair and many are asked with different queries."""
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
    paused = await make_patron()
    await decides(paused.id, "newsletter", Decision.YES)
    # Paused: on, but waiting for the patron (as after coming of age).
    await ConsentState.filter(patron_id=paused.id).update(suspended_at=now())
    headers = await bearer()
    pairs = [
        (patron.card, "reading_history", {"status": "on"}),
        (patron.card, "saved_lists", {"status": "off"}),
        (patron.card, "newsletter", {"status": "never_asked"}),
        (child.card, "fundraising", {"status": "not_offered"}),
        (patron.card, "fundraising", {"status": "never_asked"}),
        (paused.card, "newsletter", {"status": "paused"}),
        ("29999999999", "newsletter", {"error": "card_unknown"}),
    ]
    for card, service, expected in pairs:
        answer = await _check(portal, {"card_number": card, "service": service}, headers)
        if "error" in expected:  # alone, a refusal is the response's status
            assert (answer.status_code, answer.json()["error"]) == (404, expected["error"])
        else:
            assert answer.json() == {"service": service, **expected}
    batch = [{"card_number": card, "service": service} for card, service, _ in pairs]
    answer = await _check(portal, {"checks": batch}, headers)
    assert answer.json() == {"results": [{"service": s, **e} for _, s, e in pairs]}


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
# does for every other request must be done here too. Some tests call the app as a server
# does, to see what it reads of the body and where the request went.

MACHINE_CSP = "default-src 'none'; frame-ancestors 'none'"


@dataclass
class Exchange:
    scope: dict[str, Any]
    sent: list[dict[str, Any]]
    body_read: bool

    @property
    def status(self) -> int | None:
        return self.sent[0]["status"] if self.sent else None

    def json(self) -> Any:
        return json.loads(b"".join(m.get("body", b"") for m in self.sent[1:]))


async def exchange(
    portal,  # type: ignore[no-untyped-def]
    headers: list[tuple[bytes, bytes]],
    body: bytes | None,
    *,
    host: bytes = b"portal.test",  # the configured public address, as library systems send it
) -> Exchange:
    """One request straight into the app. `body` None: the caller hangs up instead."""
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/v1/consent-check",
        "raw_path": b"/api/v1/consent-check",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", host), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    sent: list[dict[str, Any]] = []
    read = False

    async def receive() -> dict[str, Any]:
        nonlocal read
        read = True
        if body is None:
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await portal.app(scope, receive, send)
    return Exchange(scope, sent, read)


def access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "portal.access"]


async def test_the_check_is_answered_ahead_of_the_router(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    token = (await bearer())["authorization"].encode()
    body = json.dumps({"card_number": patron.card, "service": "newsletter"}).encode()
    answered = await exchange(portal, [(b"authorization", token)], body)
    assert answered.json() == {"service": "newsletter", "status": "never_asked"}
    assert "route" not in answered.scope  # the router, which would set it, never saw it


@pytest.mark.parametrize(
    "host", [b"evil.example", b"portal.test.evil.example", b"", b"portal.test@evil.example"]
)
async def test_the_lane_answers_no_host_the_guard_refuses(portal, host: bytes) -> None:
    """The lane runs in front of the host guard: a check naming another host must still be
    refused by it (400), never answered."""
    await publish(standard_catalog())
    patron = await make_patron()
    token = (await bearer())["authorization"].encode()
    body = json.dumps({"card_number": patron.card, "service": "newsletter"}).encode()
    answered = await exchange(portal, [(b"authorization", token)], body, host=host)
    assert answered.status == 400
    assert b"never_asked" not in b"".join(m.get("body", b"") for m in answered.sent)


@pytest.mark.parametrize("host", [b"PORTAL.test", b"portal.test:8443", b"portal.test:80"])
async def test_a_host_the_guard_admits_is_answered_either_way(
    portal, host: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """The lane knows the public host by heart (any case, the public port); any other form
    the guard admits (another port) is answered the ordinary way, the same answer."""
    await publish(standard_catalog())
    patron = await make_patron()
    token = (await bearer())["authorization"].encode()
    body = json.dumps({"card_number": patron.card, "service": "newsletter"}).encode()
    caplog.set_level(logging.INFO, logger="portal.access")
    answered = await exchange(portal, [(b"authorization", token)], body, host=host)
    assert answered.json() == {"service": "newsletter", "status": "never_asked"}
    assert [line.rsplit(" ", 1)[0] for line in access_lines(caplog)] == [
        "POST /api/v1/consent-check 200"
    ]  # one line, whichever way it went


def test_the_lane_knows_only_plain_host_names() -> None:
    settings = Settings(
        database_url="sqlite://:memory:",
        secret_key=SECRET,
        public_url="https://Portal.Example.org:8443",
        allowed_hosts=("ils.internal", "*.example.org", "::1"),
    )
    names = known_hosts(settings)
    assert names == {b"portal.example.org", b"ils.internal"}
    assert known_hosts(Settings(database_url="sqlite://:memory:", secret_key=SECRET)) is None
    for host in (b"portal.example.org", b"PORTAL.example.org:8443", b"ils.internal:80"):
        assert admitted(host, names)
    for host in (b"a.example.org", b"portal.example.org:", b"portal.example.org:x", b"[::1]"):
        assert not admitted(host, names)
    for host in (b"portal.example.org:\xd9\xa3", b"portal.example.org :1", b"ils.internal\t"):
        assert not admitted(host, names)  # digits other than ASCII, spaces: the guard decides


async def test_the_check_sends_the_machine_headers_and_one_log_line(
    portal, caplog: pytest.LogCaptureFixture
) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    headers = await bearer()
    caplog.set_level(logging.INFO, logger="portal.access")
    pair = {"card_number": patron.card, "service": "newsletter"}
    answer = await _check(portal, pair, headers)
    assert answer.json() == {"service": "newsletter", "status": "never_asked"}
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["content-security-policy"] == MACHINE_CSP
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in answer.headers  # plain HTTP in this setup
    refused = await _check(portal, {"card_number": "nope", "service": "newsletter"}, headers)
    assert (refused.status_code, refused.headers["cache-control"]) == (400, "no-store")
    assert refused.headers["content-security-policy"] == MACHINE_CSP
    lines = access_lines(caplog)  # every line: one per request, nothing else
    assert [line.rsplit(" ", 1)[0] for line in lines] == [
        "POST /api/v1/consent-check 200",
        "POST /api/v1/consent-check 400",
    ]
    assert all(patron.card not in line for line in lines)


async def test_every_api_answer_sends_the_same_headers_as_the_check(portal) -> None:
    await publish(standard_catalog())
    loans = await portal.client.post("/api/v1/loans", json={}, headers=await bearer())
    assert loans.status_code == 403  # the consent:read token lacks loans:write
    assert loans.headers["content-security-policy"] == MACHINE_CSP
    assert loans.headers["cache-control"] == "no-store"
    page = await portal.client.get("/signin")
    assert page.headers["content-security-policy"] != MACHINE_CSP


async def test_a_body_announced_too_large_is_refused_unread(portal) -> None:
    await publish(standard_catalog())
    token = (await bearer())["authorization"].encode()
    for headers in ([(b"authorization", token)], []):  # as for the rest of the API: 413 first
        refused = await exchange(portal, [*headers, (b"content-length", b"2000000")], b"{}")
        assert (refused.status, refused.json()["error"]) == (413, "body_too_large")
        assert not refused.body_read
        assert (b"content-security-policy", MACHINE_CSP.encode()) in refused.sent[0]["headers"]


async def test_a_body_streamed_too_large_is_refused(portal) -> None:
    await publish(standard_catalog())

    async def stream():  # no Content-Length: counted as it arrives
        for _ in range(1100):
            yield b" " * 1024

    streamed = await portal.client.post(
        "/api/v1/consent-check", content=stream(), headers=await bearer()
    )
    assert (streamed.status_code, streamed.json()["error"]) == (413, "body_too_large")


async def test_the_check_asks_for_its_token_before_reading_the_body(portal) -> None:
    await publish(standard_catalog())
    anonymous = await exchange(portal, [(b"content-length", b"8")], b"not json")
    assert (anonymous.status, anonymous.body_read) == (401, False)
    assert (b"www-authenticate", b'Bearer realm="portal"') in anonymous.sent[0]["headers"]
    assert (await portal.client.get("/api/v1/consent-check")).status_code == 405


async def test_the_first_authorization_header_counts_as_everywhere_else(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    token = (await bearer())["authorization"].encode()
    body = json.dumps({"card_number": patron.card, "service": "newsletter"}).encode()
    forged = b"Bearer forged"
    first = await exchange(portal, [(b"authorization", token), (b"authorization", forged)], body)
    assert first.status == 200
    second = await exchange(portal, [(b"authorization", forged), (b"authorization", token)], body)
    assert second.status == 401


async def test_a_service_key_that_cannot_be_encoded_is_named_unknown(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    pair = f'{{"card_number": "{patron.card}", "service": "news\\ud800letter"}}'
    body = ('{"checks": [' + pair + "]}").encode()  # a lone surrogate, escaped as JSON allows
    answer = await portal.client.post("/api/v1/consent-check", content=body, headers=await bearer())
    assert answer.status_code == 200
    assert answer.json() == {"results": [{"service": "news?letter", "error": "unknown_service"}]}


async def test_a_bug_in_the_check_answers_json_and_is_logged(
    portal, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    headers = await bearer()

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("portal.api.services.check_consents", broken)
    caplog.set_level(logging.INFO, logger="portal.access")
    portal.client._transport.raise_app_exceptions = False  # type: ignore[attr-defined]
    pair = {"card_number": patron.card, "service": "newsletter"}
    answer = await _check(portal, pair, headers)
    assert (answer.status_code, answer.json()) == (500, {"error": "server_error"})
    assert answer.headers["content-security-policy"] == MACHINE_CSP
    assert [line.rsplit(" ", 1)[0] for line in access_lines(caplog)] == [
        "POST /api/v1/consent-check 500"
    ]


async def test_a_caller_that_hangs_up_gets_nothing_and_is_logged(
    portal, caplog: pytest.LogCaptureFixture
) -> None:
    await publish(standard_catalog())
    token = (await bearer())["authorization"].encode()
    caplog.set_level(logging.INFO, logger="portal.access")
    gone = await exchange(portal, [(b"authorization", token)], None)
    assert gone.sent == []
    assert [line.rsplit(" ", 1)[0] for line in access_lines(caplog)] == [
        "POST /api/v1/consent-check 499"
    ]
