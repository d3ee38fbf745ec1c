"""Every error code has one HTTP status and one message, translated in every locale."""

from __future__ import annotations

import pytest

from portal.errors import ERROR_ENUMS, PatronCode
from portal.i18n import KNOWN_LOCALES, SOURCE_LOCALE, translations, use_locale
from portal.web.problems import PROBLEMS, message_for

CODES = [code for enum in ERROR_ENUMS for code in enum]


def test_codes_are_unique_across_domains() -> None:
    values = [code.value for code in CODES]
    assert len(values) == len(set(values))


@pytest.mark.parametrize("code", CODES, ids=str)
def test_every_code_has_a_status_and_a_message(code: object) -> None:
    problem = PROBLEMS.get(code)  # type: ignore[call-overload]
    assert problem is not None, f"{code} has no line in portal.web.problems.PROBLEMS"
    assert 400 <= problem.status < 600


def test_the_table_holds_nothing_but_codes() -> None:
    assert set(PROBLEMS) == set(CODES)


@pytest.mark.parametrize("locale", [code for code in KNOWN_LOCALES if code != SOURCE_LOCALE])
def test_every_message_is_translated(locale: str) -> None:
    catalog = translations(locale)
    untranslated = []
    for code, problem in PROBLEMS.items():
        if isinstance(problem.message, tuple):
            singular, plural = problem.message
            if catalog.ngettext(singular, plural, 1) == singular:
                untranslated.append(code)
        elif catalog.gettext(problem.message) == problem.message:
            untranslated.append(code)
    assert untranslated == []


def test_the_throttle_message_counts_the_minutes_it_is_given() -> None:
    with use_locale("en"):
        assert "Please wait 1 minute," in message_for(PatronCode.SIGNIN_THROTTLED, num=1)
        assert "Please wait 15 minutes," in message_for(PatronCode.SIGNIN_THROTTLED, num=15)
