"""Hong Kong Chinese: a variant of Traditional Chinese with Hong Kong's words and dates, for
Hong Kong's, Macao's and Cantonese readers; every other word is Traditional Chinese's."""

from __future__ import annotations

from datetime import date

import pytest
from babel.dates import format_date
from babel.messages.pofile import read_po

from portal import i18n
from portal.i18n import KNOWN_LOCALES, LOCALES_DIR

ENABLED = tuple(KNOWN_LOCALES)
# Taiwan's words, and what Hong Kong says instead.
TAIWAN_WORDS = {
    "借閱證": "圖書證",
    "列印": "打印",
    "螢幕": "屏幕",
    "透過": "通過",
    "入口網站": "網站",
    "使用者": "用戶",
    "線上": "網上",
    "網路": "網絡",
}


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("zh-HK", "zh_Hant_HK"),
        ("zh-MO", "zh_Hant_HK"),
        ("zh-Hant-HK", "zh_Hant_HK"),
        ("yue", "zh_Hant_HK"),
        ("yue-HK,en;q=0.5", "zh_Hant_HK"),
        ("zh-Hans-HK", "zh_Hans"),
        ("zh-TW", "zh_Hant"),
        ("zh-Hant", "zh_Hant"),
    ],
)
def test_hong_kong_macao_and_cantonese_browsers_get_hong_kong_words(
    header: str, expected: str
) -> None:
    assert i18n.negotiate(ENABLED, "en", accept_language=header) == expected


def test_without_the_variant_hong_kong_readers_get_traditional_chinese() -> None:
    enabled = tuple(code for code in ENABLED if code != "zh_Hant_HK")
    assert i18n.negotiate(enabled, "en", accept_language="zh-HK") == "zh_Hant"
    assert i18n.negotiate(enabled, "en", accept_language="yue") == "zh_Hant"


def _template() -> list:
    with (LOCALES_DIR / "messages.pot").open("rb") as handle:
        return [m for m in read_po(handle) if m.id]


def _rendered(message, register: str | None) -> list[str]:
    with i18n.use_locale("zh_Hant_HK"), i18n.use_register(register):
        if isinstance(message.id, tuple):
            singular, plural = message.id[:2]
            if message.context:
                return [i18n.npgettext(message.context, singular, plural, 2, number=2)]
            return [i18n.ngettext(singular, plural, 2, number=2)]
        if message.context:
            return [i18n.pgettext(message.context, message.id)]
        return [i18n.gettext(message.id)]


def test_no_message_shows_a_hong_kong_reader_taiwans_words() -> None:
    """Every message, in the adult register and in a child's, with its fallbacks."""
    problems = []
    for message in _template():
        for register in (None, i18n.CHILD):
            for shown in _rendered(message, register):
                found = [word for word in TAIWAN_WORDS if word in shown]
                if found:
                    problems.append((register, message.id, found))
    assert problems == []


def test_words_that_do_not_differ_come_from_traditional_chinese() -> None:
    with i18n.use_locale("zh_Hant"):
        traditional = i18n.gettext("My privacy")
    with i18n.use_locale("zh_Hant_HK"):
        assert i18n.gettext("My privacy") == traditional != "My privacy"
        assert i18n.gettext("Please enter your card number and your PIN.") == (
            "請輸入您的圖書證號碼和 PIN 碼。"
        )


def test_hong_kong_dates_follow_cldr_for_hong_kong() -> None:
    with i18n.use_locale("zh_Hant_HK"):
        shown = i18n.format_day(date(2026, 3, 1), "Asia/Hong_Kong")
    assert shown == format_date(date(2026, 3, 1), format="long", locale="zh_Hant_HK")
    assert KNOWN_LOCALES["zh_Hant_HK"].html_lang == "zh-Hant-HK"
