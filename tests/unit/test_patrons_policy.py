"""Card and PIN rules, pure: how a card number is read and which PINs are refused."""

from __future__ import annotations

import re

import pytest

from portal.credentials import throttle
from portal.patrons.policy import PinRejected, check_new_pin, new_setup_code, normalise_card


def test_card_numbers_are_normalised() -> None:
    assert normalise_card(" 2000-1111 2222 ") == "200011112222"
    assert normalise_card("abc") is None


def test_setup_codes_are_twelve_grouped_random_digits() -> None:
    codes = {new_setup_code() for _ in range(1000)}
    assert all(re.fullmatch(r"\d{4}-\d{4}-\d{4}", code) for code in codes)
    assert len(codes) == 1000


@pytest.mark.parametrize("pin", ["12", "1111", "1234", "9876", "12a4", "1" * 13])
def test_weak_or_malformed_pins_are_rejected(pin: str) -> None:
    with pytest.raises(PinRejected):
        check_new_pin(pin)


def test_ipv4_clients_seen_through_ipv6_count_as_themselves() -> None:
    assert throttle.client_network("::ffff:192.0.2.7") == "192.0.2.7"
    assert throttle.client_network("::ffff:192.0.2.8") != throttle.client_network(
        "::ffff:192.0.2.7"
    )
