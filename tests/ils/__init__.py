"""A stand-in for a library system's SIP2 service (tests/ils/server.py), on pysip2's server,
run as its own process on loopback by the SIP2 tests (tests/ils_process.py) and `make run-sip2`.
DEMO_PATRONS are the cards the demo serves; a test passes its own list."""

from __future__ import annotations

from datetime import date


def _years_ago(today: date, years: int) -> date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February in a year that has none
        return today.replace(year=today.year - years, day=28)


def _demo_patrons(today: date) -> list[dict[str, object]]:
    child_born = _years_ago(today, 10).strftime("%Y%m%d")
    patrons: list[dict[str, object]] = [
        {"card": "21000000000001", "pin": "1234", "name": "Sam Rivera", "born": "19850315"},
        {"card": "21000000000002", "pin": "1234", "name": "Robin Rivera", "born": child_born},
        {"card": "21000000000003", "pin": "1234", "name": "Zoë Müller-Ñúñez", "born": "19900704"},
        # No password at the library system: Koha answers CQ=Y to an empty PIN for this card.
        {"card": "21000000000004", "pin": None, "name": "Pat Nopin", "born": "19720101"},
    ]
    return [{**patron, "valid": True} for patron in patrons]


DEMO_PATRONS = _demo_patrons(date.today())  # noqa: DTZ011 (the demo machine's own day)
