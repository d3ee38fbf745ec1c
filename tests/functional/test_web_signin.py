"""Sign-in, PIN setup and throttling through HTTP."""

from __future__ import annotations

from portal.patrons.services import create_patron
from tests.factories import SECRET, make_patron, now, publish, standard_catalog


async def test_wrong_pin_says_nothing_about_which_part_was_wrong(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    wrong_pin = await portal.client.post("/signin", data={"card": patron.card, "pin": "9999"})
    wrong_card = await portal.client.post("/signin", data={"card": "2999999999", "pin": "2580"})
    assert wrong_pin.status_code == wrong_card.status_code == 400
    assert "That card number and PIN do not match" in wrong_pin.text
    assert wrong_pin.text == wrong_card.text


async def test_repeated_failures_are_throttled_even_with_the_right_pin(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    for _ in range(5):
        await portal.client.post("/signin", data={"card": patron.card, "pin": "0000"})
    blocked = await portal.client.post("/signin", data={"card": patron.card, "pin": patron.pin})
    assert blocked.status_code == 429
    assert "Too many tries" in blocked.text


async def test_patron_sets_own_pin_with_setup_code_then_signs_in(portal) -> None:
    await publish(standard_catalog())
    new = await create_patron(SECRET, "2000 5555 6666", now=now(), setup_code_hours=1)
    mismatch = await portal.client.post(
        "/setup-pin",
        data={"card": "2000 5555 6666", "code": new.setup_code, "pin": "4826", "pin_again": "4827"},
    )
    assert mismatch.status_code == 400
    assert "not the same" in mismatch.text
    done = await portal.client.post(
        "/setup-pin",
        data={"card": "2000 5555 6666", "code": new.setup_code, "pin": "4826", "pin_again": "4826"},
    )
    assert done.status_code == 200
    assert "Your PIN is set" in done.text
    signed_in = await portal.client.post("/signin", data={"card": "200055556666", "pin": "4826"})
    assert signed_in.status_code == 303


async def test_sign_out_ends_the_session(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    await portal.client.post("/signin", data={"card": patron.card, "pin": patron.pin})
    assert (await portal.client.get("/privacy")).status_code == 200
    await portal.client.post("/signout")
    assert (await portal.client.get("/privacy")).status_code == 303


async def test_health_and_readiness(portal) -> None:
    assert (await portal.client.get("/healthz")).json() == {"status": "ok"}
    not_ready = await portal.client.get("/readyz")
    assert not_ready.status_code == 503
    await publish(standard_catalog())
    assert (await portal.client.get("/readyz")).json() == {"status": "ready"}
