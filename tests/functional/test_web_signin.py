"""Sign-in, PIN setup and throttling through HTTP."""

from __future__ import annotations

import asyncio
from collections import Counter

from portal.credentials.models import SignInCounter
from portal.credentials.throttle import Guessing, throttle_keys
from portal.patrons.policy import guess_subject
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


async def test_fifty_parallel_guesses_get_no_more_checks_than_the_limit(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron(pin="4826")
    guesses = [f"{n:04d}" for n in range(1000, 1049)] + [patron.pin]  # the right PIN last
    answers = await asyncio.gather(
        *(portal.client.post("/signin", data={"card": patron.card, "pin": pin}) for pin in guesses)
    )
    statuses = Counter(answer.status_code for answer in answers)
    # The requests race, so the right PIN may win one of the PORTAL_SIGNIN_ATTEMPTS reservations
    # (its success is refunded, and one more wrong PIN may then be checked). Either way no more
    # than five wrong PINs are ever checked, and every other guess is turned away unchecked.
    assert statuses[303] <= 1, statuses
    assert statuses[400] == 5 or (statuses[400] == 4 and statuses[303] == 1), statuses
    assert statuses[429] == len(guesses) - statuses[400] - statuses[303], statuses


async def test_a_successful_sign_in_is_not_counted_as_a_guess(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    for _ in range(4):
        await portal.client.post("/signin", data={"card": patron.card, "pin": "0000"})
    for _ in range(3):
        ok = await portal.client.post("/signin", data={"card": patron.card, "pin": patron.pin})
        assert ok.status_code == 303
    counts = sorted(counter.attempts for counter in await SignInCounter.all())
    # Four failures each on the card's window, day and hold, and on the client's network.
    assert counts == [4, 4, 4, 4]


async def test_the_throttle_message_gives_the_configured_wait(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    for _ in range(5):
        await portal.client.post("/signin", data={"card": patron.card, "pin": "0000"})
    blocked = await portal.client.post("/signin", data={"card": patron.card, "pin": "0000"})
    assert "Please wait 15 minutes" in blocked.text  # PORTAL_SIGNIN_WINDOW_SECONDS = 900


def test_ipv6_clients_are_counted_by_their_64_network_apart_per_purpose() -> None:
    one = throttle_keys(
        SECRET, Guessing.SIGNIN, guess_subject("2000 1111 2222"), "2001:db8:1:2::aaaa"
    )
    other = throttle_keys(
        SECRET, Guessing.SIGNIN, guess_subject("2000 1111 2222"), "2001:db8:1:2:ffff::1"
    )
    elsewhere = throttle_keys(
        SECRET, Guessing.SIGNIN, guess_subject("2000 1111 2222"), "2001:db8:1:3::1"
    )
    assert one[1] == other[1] != elsewhere[1]
    assert (
        throttle_keys(SECRET, Guessing.SIGNIN, guess_subject("2000-1111-2222"), "10.0.0.1")[0]
        == one[0]
    )
