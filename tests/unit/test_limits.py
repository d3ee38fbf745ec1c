"""What a Content-Length header announces, read without trusting it."""

from __future__ import annotations

import pytest

from portal.web.limits import API_BYTES, announced_too_large


@pytest.mark.parametrize(
    ("declared", "too_large"),
    [
        ("", False),
        ("0", False),
        (str(API_BYTES), False),
        (str(API_BYTES + 1), True),
        ("0" * 30 + "12", False),  # leading zeros are still a small number
        ("9" * 5000, True),  # past int()'s digit limit: decided without it
        ("²", False),  # a digit to str.isdigit, not to HTTP
        ("1e9", False),
        ("-5", False),
    ],
)
def test_what_a_content_length_announces(declared: str, too_large: bool) -> None:
    assert announced_too_large(declared, API_BYTES) is too_large
