"""Bad input gets a clear answer and changes nothing: oversized bodies, ids past the
database's range, control characters, deep JSON, forged languages and log lines."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import pytest
from starlette.routing import Route

from portal.ledger.models import ConsentEvent
from portal.stores.reading_history.services import history
from portal.stores.saved_lists.services import saved_lists
from tests.api import bearer
from tests.factories import make_patron, publish, standard_catalog
from tests.web import choose, hidden, sign_in

LOCALES = ("en", "ar")


@pytest.fixture
def portal_settings(settings):
    return replace(settings, locales=("en", "ar"))


async def test_oversized_bodies_are_refused_before_they_are_read(portal) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    announced = await portal.client.post("/signin", data={"card": "1" * 70_000, "pin": "1"})
    assert announced.status_code == 413

    async def stream(kilobytes: int):  # no Content-Length: counted as it arrives
        for _ in range(kilobytes):
            yield b"x" * 1024

    streamed = await portal.client.post(
        "/signin",
        content=stream(100),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert streamed.status_code == 413
    api = await portal.client.post(
        "/api/v1/loans", content=b"[" * 2_000_000, headers=await bearer()
    )
    assert (api.status_code, api.json()["error"]) == (413, "body_too_large")
    api_streamed = await portal.client.post(
        "/api/v1/loans", content=stream(1100), headers=await bearer()
    )
    assert (api_streamed.status_code, api_streamed.json()["error"]) == (413, "body_too_large")


async def test_ids_past_the_database_range_are_not_found(portal) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    await sign_in(portal.client, await make_patron())
    await choose(portal.client, "saved_lists", "yes")
    for list_id in ("9" * 30, str(2**31), "٣"):  # too long, past int32, not ASCII
        answer = await portal.client.post(
            "/saved-lists/items", data={"list_id": list_id, "title": "Dune"}
        )
        assert answer.status_code == 404


async def test_control_characters_are_never_stored(portal) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    patron = await make_patron()
    await sign_in(portal.client, patron)
    await choose(portal.client, "saved_lists", "yes")
    await portal.client.post("/saved-lists", data={"name": "Sci\x00fi\x1b lists"})
    [saved] = await saved_lists(patron.id)
    assert saved.name == "Scifi lists"


async def test_hostile_json_is_refused_clearly(portal) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    patron = await make_patron()
    await sign_in(portal.client, patron)
    await choose(portal.client, "reading_history", "yes")
    deep = await portal.client.post(
        "/api/v1/loans", content=b"[" * 100_000 + b"]" * 100_000, headers=await bearer()
    )
    assert (deep.status_code, deep.json()["error"]) == (400, "invalid_json")
    nul = await portal.client.post(
        "/api/v1/consent-check",
        json={"card_number": patron.card, "service": "reading\x00history"},
        headers=await bearer(),
    )
    assert (nul.status_code, nul.json()["error"]) == (404, "unknown_service")
    surrogate = await portal.client.post(
        "/api/v1/loans",
        content=json.dumps(
            {
                "card_number": patron.card,
                "loans": [{"title": "Half\ud800 a pair", "borrowed_on": "2026-05-05"}],
            }
        ).encode(),
        headers=await bearer(),
    )
    assert surrogate.status_code == 201
    [entry] = await history(patron.id)
    assert entry.title == "Half a pair"


async def test_the_language_recorded_is_the_language_of_the_page(portal) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    patron = await make_patron()
    await sign_in(portal.client, patron)
    await portal.client.post("/language", data={"locale": "ar", "next": "/"})
    arabic = await portal.client.get("/services/newsletter")
    arabic_version = hidden(arabic.text, "notice_version")
    await portal.client.post("/language", data={"locale": "en", "next": "/"})
    english = await portal.client.get("/services/newsletter")
    forged = await portal.client.post(
        "/services/newsletter/decision",
        data={
            "decision": "yes",
            "notice_version": arabic_version,
            "revision": hidden(english.text, "revision"),
        },
    )
    assert forged.status_code == 400
    assert await ConsentEvent.filter(patron_id=patron.id).count() == 0


async def test_the_access_log_writes_route_templates_not_what_was_typed(portal, caplog) -> None:
    await publish(standard_catalog(LOCALES), LOCALES)
    caplog.set_level(logging.INFO, logger="portal.access")
    await portal.client.get("/privacy%0AGET%20/forged%20200")
    await portal.client.get("/card/2000000000001")
    await portal.client.get("/services/newsletter")
    logged = [record.getMessage() for record in caplog.records]
    assert all("forged" not in line and "2000000000001" not in line for line in logged)
    assert any(line.startswith("GET (no route) 404") for line in logged)
    assert any(line.startswith("GET /services/{key:catalog_key} ") for line in logged)


async def test_an_api_failure_answers_json_with_the_security_headers(portal) -> None:
    async def broken(request):
        raise RuntimeError("a bug")

    portal.app.router.routes.append(Route("/api/v1/broken", broken, methods=["GET"]))
    client = portal.client
    client._transport.raise_app_exceptions = False  # type: ignore[attr-defined]
    answer = await client.get("/api/v1/broken")
    assert answer.status_code == 500
    assert answer.json() == {"error": "server_error"}
    assert answer.headers["content-security-policy"].startswith("default-src 'none'")
