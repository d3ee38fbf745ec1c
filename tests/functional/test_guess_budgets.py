"""Guessing through HTTP: a spray from a shared network holds back that network but not a
patron with the right PIN and a clean record; a card's wrong PINs add up to a hold that only
its setup code or the desk lifts; an API client's id locks nobody out."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timedelta

import httpx2 as httpx
import pytest

from portal.clock import utcnow
from portal.credentials import throttle
from portal.credentials.models import SignInCounter
from portal.patrons.policy import guess_subject
from portal.patrons.services import create_patron
from portal.staff.models import StaffAuditEvent
from portal.staff.policy import Role
from tests.api import basic, make_client
from tests.desk import make_staff, staff_sign_in
from tests.factories import SECRET, make_patron, now, publish, standard_catalog
from tests.support import BASE_URL
from tests.web import hidden, visible_text

GRANT = {"grant_type": "client_credentials"}
LIBRARY_WIFI = "192.0.2.7"
ELSEWHERE = "198.51.100.20"


def client_on(portal, host: str) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    """A browser on another network than the test's usual client."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=portal.app, client=(host, 5000)),
        base_url=BASE_URL,
        headers={"origin": BASE_URL},
    )


def made_up_card(n: int) -> str:
    return f"29{n:010d}"


async def spray(client: httpx.AsyncClient, cards: range) -> Counter[int]:
    answers = await asyncio.gather(
        *(client.post("/signin", data={"card": made_up_card(n), "pin": "1357"}) for n in cards)
    )
    return Counter(answer.status_code for answer in answers)


def network_limit(portal) -> int:  # type: ignore[no-untyped-def]
    return int(portal.app.state.settings.signin_attempts * throttle.NETWORK_FACTOR)


async def test_a_patron_with_the_right_pin_gets_in_from_a_network_a_spray_holds(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    limit = network_limit(portal)
    async with client_on(portal, LIBRARY_WIFI) as wifi:
        sprayed = await spray(wifi, range(limit + 20))  # in parallel
        assert sprayed == Counter({400: limit, 429: 20}), sprayed
        # The patron and the spray at once, from the same network.
        patron_answer, *more = await asyncio.gather(
            wifi.post("/signin", data={"card": patron.card, "pin": patron.pin}),
            *(
                wifi.post("/signin", data={"card": made_up_card(n), "pin": "1357"})
                for n in range(1000, 1030)
            ),
        )
        assert patron_answer.status_code == 303
        assert {answer.status_code for answer in more} == {429}  # the spray stays held
        assert (await wifi.get("/privacy")).status_code == 200


async def test_pin_setup_with_a_valid_code_works_from_a_network_a_spray_holds(portal) -> None:
    await publish(standard_catalog())
    new = await create_patron(SECRET, "2000 5555 7777", now=now(), setup_code_hours=1)
    async with client_on(portal, LIBRARY_WIFI) as wifi:
        await spray(wifi, range(network_limit(portal)))
        assert (await spray(wifi, range(5000, 5001))) == Counter({429: 1})
        done = await wifi.post(
            "/setup-pin",
            data={
                "card": "2000 5555 7777",
                "code": new.setup_code,
                "pin": "4826",
                "pin_again": "4826",
            },
        )
        assert done.status_code == 200
        assert "Your PIN is set" in done.text


async def test_a_held_network_checks_a_known_card_once_and_answers_as_the_hold(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    async with client_on(portal, LIBRARY_WIFI) as wifi:
        await spray(wifi, range(network_limit(portal)))
        made_up = await wifi.post("/signin", data={"card": made_up_card(9999), "pin": "1357"})
        guesses = await asyncio.gather(
            *(
                wifi.post("/signin", data={"card": patron.card, "pin": f"{n:04d}"})
                for n in range(3000, 3020)
            )
        )
    # Twenty parallel guesses at a real card from the held network: at most one is checked
    # (its failure then holds the card here too; racing first counts may leave none clean),
    # and all answer as a made-up card does.
    assert {guess.status_code for guess in guesses} == {429} == {made_up.status_code}
    assert {visible_text(guess.text) for guess in guesses} == {visible_text(made_up.text)}
    window, _, _ = throttle.card_keys(SECRET, guess_subject(patron.card))
    assert (await SignInCounter.get(key_lookup=window)).attempts <= 1
    # A card with a failure of its own waits like every other card on the held network.
    other = await make_patron()
    async with client_on(portal, LIBRARY_WIFI) as wifi:
        first = await wifi.post("/signin", data={"card": other.card, "pin": "0000"})
        again = await wifi.post("/signin", data={"card": other.card, "pin": other.pin})
    assert (first.status_code, again.status_code) == (429, 429)
    assert (
        await SignInCounter.get(key_lookup=throttle.card_keys(SECRET, other.card)[0])
    ).attempts == 1


async def test_the_desk_sees_and_lifts_a_hold_on_its_own_network(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    staff = await make_staff(Role.DESK)
    async with client_on(portal, LIBRARY_WIFI) as wifi:
        await spray(wifi, range(network_limit(portal)))
        await wifi.post("/signin", data={"card": patron.card, "pin": "0000"})  # a typo
        await staff_sign_in(wifi, staff)
        page = visible_text((await wifi.get("/desk/lookup")).text)
        assert "Sign-in from this library's network is held" in page
        lifted = await wifi.post("/desk/unlock-network")
        assert lifted.status_code == 200
        after = visible_text((await wifi.get("/desk/lookup")).text)
        assert "Sign-in from this library's network is held" not in after
        wifi.cookies.clear()
        back = await wifi.post("/signin", data={"card": patron.card, "pin": patron.pin})
        assert back.status_code == 303
    async with client_on(portal, ELSEWHERE) as elsewhere:
        await staff_sign_in(elsewhere, staff)
        trail = await elsewhere.get("/desk/lookup")
        assert "Sign-in from this library's network is held" not in visible_text(trail.text)
    assert await StaffAuditEvent.filter(action="network_unlocked").count() == 1


# --- a card's budget of wrong PINs ------------------------------------------------------


@pytest.fixture
def moving_clock(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """The throttle's clock, moved by the test (the growing delays are skipped)."""
    moment = [utcnow()]
    monkeypatch.setattr("portal.patrons.access.utcnow", lambda: moment[0])
    monkeypatch.setattr(throttle, "delay_seconds", lambda earlier: 0.0)
    return moment


async def _guess_for_days(portal, card: str, clock: list[datetime], days: int) -> Counter[int]:  # type: ignore[no-untyped-def]
    """Five wrong PINs every sixteen minutes (one window each), four windows a day."""
    statuses: Counter[int] = Counter()
    for _ in range(days):
        for _ in range(4):
            clock[0] += timedelta(minutes=16)
            for n in range(5):
                answer = await portal.client.post("/signin", data={"card": card, "pin": f"13{n}9"})
                statuses[answer.status_code] += 1
        clock[0] += timedelta(days=1)
    return statuses


async def test_wrong_pins_add_up_to_a_hold_that_time_does_not_lift(portal, moving_clock) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    statuses = await _guess_for_days(portal, patron.card, moving_clock, days=5)
    settings = portal.app.state.settings
    assert statuses[400] == settings.pin_guesses_before_hold  # then nothing more is checked
    moving_clock[0] += timedelta(days=40)
    held = await portal.client.post("/signin", data={"card": patron.card, "pin": patron.pin})
    assert held.status_code == 429
    assert "on hold after too many wrong PINs" in visible_text(held.text)


async def test_the_desk_lifts_a_hold_and_the_patron_finds_it_in_their_record(
    portal, moving_clock
) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    await _guess_for_days(portal, patron.card, moving_clock, days=2)
    staff = await make_staff(Role.DESK)
    await staff_sign_in(portal.client, staff)
    found = await portal.client.post("/desk/lookup", data={"card": patron.card})
    assert "On hold after too many wrong PINs" in visible_text(found.text)
    await portal.client.post("/desk/unlock", data={"ref": hidden(found.text, "ref")})
    portal.client.cookies.clear()
    moving_clock[0] = utcnow()  # back to the session's clock
    signed_in = await portal.client.post("/signin", data={"card": patron.card, "pin": patron.pin})
    assert signed_in.status_code == 303
    record = visible_text((await portal.client.get("/privacy/record")).text)
    assert "Sign-in with your card was put on hold on" in record


async def test_a_setup_code_lifts_a_hold(portal, moving_clock) -> None:
    await publish(standard_catalog())
    new = await create_patron(SECRET, "2000 5555 8888", now=now(), setup_code_hours=24 * 60)
    await _guess_for_days(portal, "2000 5555 8888", moving_clock, days=2)
    done = await portal.client.post(
        "/setup-pin",
        data={"card": "2000 5555 8888", "code": new.setup_code, "pin": "4826", "pin_again": "4826"},
    )
    assert done.status_code == 200
    signed_in = await portal.client.post("/signin", data={"card": "2000 5555 8888", "pin": "4826"})
    assert signed_in.status_code == 303


# --- API clients ------------------------------------------------------------------------


async def test_wrong_secrets_for_a_client_id_hold_the_guessing_network_not_the_client(
    portal,
) -> None:
    issued = await make_client()
    async with client_on(portal, LIBRARY_WIFI) as stranger, client_on(portal, ELSEWHERE) as system:
        wrong = await asyncio.gather(
            *(
                stranger.post("/oauth/token", data=GRANT, headers=basic(issued, f"x{n}"))
                for n in range(network_limit(portal) + 5)
            )
        )
        assert Counter(answer.status_code for answer in wrong) == Counter(
            {401: network_limit(portal), 429: 5}
        )
        token = await system.post("/oauth/token", data=GRANT, headers=basic(issued))
        assert token.status_code == 200
        held = await stranger.post("/oauth/token", data=GRANT, headers=basic(issued))
        assert held.status_code == 429
        assert held.headers["retry-after"] == str(portal.app.state.settings.signin_window_seconds)


async def test_five_wrong_secrets_do_not_lock_the_client_out(portal) -> None:
    issued = await make_client()
    async with client_on(portal, LIBRARY_WIFI) as stranger, client_on(portal, ELSEWHERE) as system:
        for n in range(5):
            assert (
                await stranger.post("/oauth/token", data=GRANT, headers=basic(issued, f"x{n}"))
            ).status_code == 401
        assert (
            await system.post("/oauth/token", data=GRANT, headers=basic(issued))
        ).status_code == 200
