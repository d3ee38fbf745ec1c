"""Accounts and sign-in: the patron alone sets the PIN; failures say nothing specific."""

from __future__ import annotations

from datetime import timedelta

import pytest

from portal.credentials import throttle
from portal.credentials.models import SignInCounter
from portal.credentials.throttle import Guessing
from portal.patrons import services
from portal.patrons.models import Patron, PinSetupCode
from portal.patrons.policy import guess_subject
from tests.factories import SECRET, make_patron, now

CARD = "2000 1111 2222"
pytestmark = pytest.mark.usefixtures("db")


async def test_a_reasonable_pin_becomes_the_patrons_pin() -> None:
    new = await services.create_patron(SECRET, CARD, now=now(), setup_code_hours=1)
    patron_id = await services.set_pin_with_code(SECRET, CARD, new.setup_code, "2580", now=now())
    assert patron_id == new.patron_id
    assert await services.authenticate(SECRET, CARD, "2580") == new.patron_id


async def test_card_number_is_not_stored() -> None:
    new = await services.create_patron(SECRET, CARD, now=now(), setup_code_hours=1)
    patron = await Patron.get(id=new.patron_id)
    assert "200011112222" not in patron.card_lookup
    assert patron.pin_hash is None  # nobody but the patron sets it


async def test_setup_code_sets_pin_once() -> None:
    new = await services.create_patron(SECRET, CARD, now=now(), setup_code_hours=1)
    await services.set_pin_with_code(SECRET, CARD, new.setup_code, "2580", now=now())
    assert await services.authenticate(SECRET, CARD, "2580") == new.patron_id
    with pytest.raises(services.PatronError) as raised:
        await services.set_pin_with_code(SECRET, CARD, new.setup_code, "3691", now=now())
    assert raised.value.code == "setup_code_invalid"
    assert await PinSetupCode.all().count() == 0


async def test_expired_setup_code_is_refused() -> None:
    new = await services.create_patron(SECRET, CARD, now=now(), setup_code_hours=1)
    with pytest.raises(services.PatronError):
        await services.set_pin_with_code(
            SECRET, CARD, new.setup_code, "2580", now=now() + timedelta(hours=2)
        )


async def test_setup_code_only_works_with_its_own_card() -> None:
    new = await services.create_patron(SECRET, CARD, now=now(), setup_code_hours=1)
    await services.create_patron(SECRET, "2000 3333 4444", now=now(), setup_code_hours=1)
    with pytest.raises(services.PatronError):
        await services.set_pin_with_code(
            SECRET, "2000 3333 4444", new.setup_code, "2580", now=now()
        )


async def test_wrong_pin_and_unknown_card_fail_alike() -> None:
    patron = await make_patron()
    codes = set()
    for card, pin in ((patron.card, "9999"), ("2999 9999 9999", patron.pin), ("x", "1")):
        with pytest.raises(services.PatronError) as raised:
            await services.authenticate(SECRET, card, pin)
        codes.add(raised.value.code)
    assert codes == {"signin_failed"}


async def test_duplicate_card_is_refused() -> None:
    await services.create_patron(SECRET, CARD, now=now(), setup_code_hours=1)
    with pytest.raises(services.PatronError) as raised:
        await services.create_patron(SECRET, "2000-1111-2222", now=now(), setup_code_hours=1)
    assert raised.value.code == "card_exists"


async def test_session_expires_when_idle() -> None:
    patron = await make_patron()
    token = await services.start_session(SECRET, patron.id, now=now(), minutes=30, hours=12)
    assert await services.session_identity(SECRET, token, now=now(), minutes=30) is not None
    later = now() + timedelta(minutes=31)
    assert await services.session_identity(SECRET, token, now=later, minutes=30) is None


async def test_a_session_ends_after_its_absolute_lifetime_however_active() -> None:
    patron = await make_patron()
    started = now()
    token = await services.start_session(SECRET, patron.id, now=started, minutes=30, hours=2)
    moment = started
    for _ in range(7):  # active every 20 minutes for 2 hours 20 minutes
        moment += timedelta(minutes=20)
        alive = await services.session_identity(SECRET, token, now=moment, minutes=30)
        assert (alive is not None) == (moment < started + timedelta(hours=2))


async def test_staff_unlock_clears_the_cards_count_but_not_the_networks() -> None:
    card, network = throttle.limits(
        throttle.throttle_keys(SECRET, Guessing.SIGNIN, guess_subject(CARD), "10.1.2.3"), 5, 900
    )
    for _ in range(5):
        assert await throttle.reserve((card,), network, now=now())
    assert await throttle.reserve((card,), network, now=now()) is None
    assert await throttle.unlock(SECRET, Guessing.SIGNIN, guess_subject(CARD)) == 5
    assert await throttle.reserve((card,), network, now=now())
    assert (await SignInCounter.get(key_lookup=network.key)).attempts == 6


async def test_a_shared_network_holds_back_only_after_many_cards_failed() -> None:
    allowed = []
    for n in range(5 * throttle.NETWORK_FACTOR + 1):  # a busy branch, one typo per patron
        card, network = throttle.limits(
            throttle.throttle_keys(
                SECRET, Guessing.SIGNIN, guess_subject(f"2000 0000 {n:04d}"), "192.0.2.7"
            ),
            5,
            900,
        )
        allowed.append(await throttle.reserve((card,), network, now=now()) is not None)
    assert allowed == [True] * (5 * throttle.NETWORK_FACTOR) + [False]


async def test_link_code_guesses_never_lock_anyone_out_of_signing_in() -> None:
    code, code_network = throttle.limits(
        throttle.throttle_keys(SECRET, Guessing.LINK_CODE, "17", "10.1.2.3"), 5, 900
    )
    for _ in range(5):
        assert await throttle.reserve((code,), code_network, now=now())
    assert await throttle.reserve((code,), code_network, now=now()) is None
    card, network = throttle.limits(
        throttle.throttle_keys(SECRET, Guessing.SIGNIN, guess_subject(CARD), "10.1.2.3"), 5, 900
    )
    assert await throttle.reserve((card,), network, now=now())
