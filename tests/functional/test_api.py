"""The integration API: library systems hand over loans; without consent nothing is kept."""

from __future__ import annotations

from datetime import date, timedelta

from portal.api.services import issue_client
from portal.clock import local_date
from portal.stores.reading_history import HistoryEntry
from tests.factories import SECRET, make_patron, now, publish, standard_catalog
from tests.web import choose, sign_in

LOAN = {"title": "Kindred", "author": "Octavia E. Butler", "borrowed_on": "2026-05-05"}


async def bearer() -> dict[str, str]:
    return {"authorization": f"Bearer {await issue_client(SECRET, 'ils', now=now())}"}


async def test_loans_are_refused_without_consent_and_nothing_is_stored(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    response = await portal.client.post(
        "/api/v1/loans", json={"card_number": patron.card, "loans": [LOAN]}, headers=await bearer()
    )
    assert response.status_code == 409
    assert response.json()["error"] == "no_current_consent"
    assert await HistoryEntry.all().count() == 0


async def test_loans_are_kept_with_consent(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    await sign_in(portal.client, patron)
    await choose(portal.client, "reading_history", "yes")
    headers = await bearer()
    response = await portal.client.post(
        "/api/v1/loans", json={"card_number": patron.card, "loans": [LOAN]}, headers=headers
    )
    assert response.status_code == 201
    assert response.json() == {"recorded": 1}
    check = await portal.client.post(
        "/api/v1/consent-check",
        json={"card_number": patron.card, "service": "reading_history"},
        headers=headers,
    )
    assert check.json() == {"service": "reading_history", "status": "on"}


async def test_api_needs_a_valid_token(portal) -> None:
    await publish(standard_catalog())
    response = await portal.client.post(
        "/api/v1/loans",
        json={"card_number": "2000", "loans": [LOAN]},
        headers={"authorization": "Bearer nope"},
    )
    assert response.status_code == 401


async def test_malformed_loans_are_refused_clearly(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    headers = await bearer()
    for body in (
        {"card_number": patron.card, "loans": []},
        {"card_number": patron.card, "loans": [{"title": "x", "borrowed_on": "yesterday"}]},
        {"loans": [LOAN]},
    ):
        response = await portal.client.post("/api/v1/loans", json=body, headers=headers)
        assert response.status_code == 400, body
    garbage = await portal.client.post("/api/v1/loans", content=b"{", headers=headers)
    assert garbage.json()["error"] == "invalid_json"


async def test_a_loan_dated_after_today_is_refused_and_nothing_stored(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    await sign_in(portal.client, patron)
    await choose(portal.client, "reading_history", "yes")
    headers = await bearer()
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
