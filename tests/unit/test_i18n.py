"""Language negotiation, translation fallbacks and locale formatting."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from portal import child_wording, i18n

ENABLED = tuple(i18n.KNOWN_LOCALES)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("vi-VN,vi;q=0.9,en;q=0.5", "vi"),
        ("en;q=0.4, ar;q=0.9", "ar"),
        ("zh-TW", "zh_Hant"),
        ("zh-Hant-HK", "zh_Hant_HK"),
        ("zh-CN,zh;q=0.9", "zh_Hans"),
        ("zh", "zh_Hans"),
        ("fil-PH", "fil"),
        ("tl", "fil"),
        ("tl-PH,en;q=0.5", "fil"),
        ("de-DE, *;q=0.1", "en"),
        ("ar;q=0", "en"),
        ("garbage;;;q=abc", "en"),
        ("", "en"),
    ],
)
def test_accept_language(header: str, expected: str) -> None:
    assert i18n.negotiate(ENABLED, "en", accept_language=header) == expected


def test_explicit_choice_beats_the_browser() -> None:
    assert i18n.negotiate(ENABLED, "en", chosen="ko", accept_language="ru") == "ko"


def test_choice_of_a_disabled_locale_is_ignored() -> None:
    assert i18n.negotiate(("en", "es"), "es", chosen="ar", accept_language="fr") == "es"


def test_arabic_is_right_to_left_and_the_rest_left_to_right() -> None:
    assert {code for code in ENABLED if i18n.text_direction(code) == "rtl"} == {"ar"}


def test_translation_missing_a_placeholder_falls_back_to_the_source(monkeypatch) -> None:
    class Broken:
        def gettext(self, message: str) -> str:
            return "Bonjour %(nom)s"  # the translator renamed the placeholder

    monkeypatch.setattr(i18n, "translations", lambda code: Broken())
    with i18n.use_locale("fr"):
        assert i18n.gettext("Hello %(name)s", name="Ana") == "Hello Ana"


def test_texts_outside_a_request_take_an_explicit_locale() -> None:
    with i18n.use_locale("es"):
        spanish = i18n.gettext("My privacy")
    with i18n.use_locale("ko"):
        korean = i18n.gettext("My privacy")
    assert spanish != "My privacy"
    assert korean not in (spanish, "My privacy")
    assert i18n.current_locale() == "en"


def test_variables_are_escaped_and_direction_isolated_in_templates() -> None:
    with i18n.use_locale("ar"):
        rendered = i18n.markup_gettext("%(title)s is on.", title="<b>Kindred</b>")
    assert "<bdi>&lt;b&gt;Kindred&lt;/b&gt;</bdi>" in rendered
    assert "<b>" not in rendered


def test_dates_are_formatted_for_the_locale_in_the_library_time_zone() -> None:
    late_evening_utc = datetime(2026, 3, 1, 2, 30, tzinfo=UTC)  # still 28 Feb in New York
    with i18n.use_locale("fr"):
        assert i18n.format_day(late_evening_utc, "America/New_York") == "28 février 2026"
    with i18n.use_locale("ko"):
        assert i18n.format_day(date(2026, 3, 1), "UTC") == "2026년 3월 1일"
    with i18n.use_locale("ar"):
        assert "مارس" in i18n.format_day(date(2026, 3, 1), "UTC")


def test_numbers_are_formatted_for_the_locale() -> None:
    with i18n.use_locale("fr"):
        assert i18n.format_count(12345) == "12\u202f345"
    with i18n.use_locale("en"):
        assert i18n.format_count(12345) == "12,345"


def test_latin_names_in_right_to_left_notice_text_are_isolated() -> None:
    text = "المكتبة، وشركة TextRelay Messaging Inc. التي ترسل الرسائل إلى Lantern eBooks."
    with i18n.use_locale("ar"):
        html = str(i18n.isolate_latin(text))
    # The abbreviation's full stop belongs to the name; the sentence's stays outside.
    assert '<bdi dir="ltr">TextRelay Messaging Inc.</bdi> التي' in html
    assert '<bdi dir="ltr">Lantern eBooks</bdi>.' in html
    assert html.replace('<bdi dir="ltr">', "").replace("</bdi>", "") == text


def test_isolation_escapes_and_leaves_left_to_right_text_alone() -> None:
    with i18n.use_locale("ar"):
        html = str(i18n.isolate_latin("نص <script> نص"))
    assert "<script>" not in html
    assert html.startswith("نص &lt;")
    with i18n.use_locale("en"):
        assert i18n.isolate_latin("TextRelay Messaging Inc.") == "TextRelay Messaging Inc."


@pytest.mark.parametrize(
    "header", ["zh-HK", "zh-MO", "zh-Hant-HK", "zh-HK,zh;q=0.9,en;q=0.8", "yue-HK", "yue"]
)
def test_hong_kong_and_macau_read_hong_kong_chinese(header: str) -> None:
    # README, Languages: Hong Kong's words over Traditional Chinese, never Simplified Chinese
    # or English.
    assert i18n.negotiate(ENABLED, "en", accept_language=header) == "zh_Hant_HK"


def test_hong_kong_without_traditional_chinese_enabled_falls_to_the_next_language() -> None:
    enabled = tuple(code for code in ENABLED if code not in {"zh_Hant", "zh_Hant_HK"})
    assert i18n.negotiate(enabled, "en", accept_language="zh-HK,en;q=0.5") == "en"


def test_filipino_has_one_code_and_the_old_one_still_reads() -> None:
    assert "tl" not in i18n.KNOWN_LOCALES
    info = i18n.KNOWN_LOCALES["fil"]
    assert (info.code, info.babel_id, info.html_lang) == ("fil", "fil", "fil")
    assert "Tagalog" in info.native_name
    # A ledger entry or a patron preference written as "tl" reads as Filipino.
    assert i18n.KNOWN_LOCALES["tl"] is info
    assert i18n.negotiate(ENABLED, "en", chosen="tl") == "fil"
    with i18n.use_locale("tl"):
        assert i18n.current_locale() == "fil"


def test_the_child_register_reads_the_child_entry_first() -> None:
    with i18n.use_locale("es"), i18n.use_register(i18n.CHILD):
        assert i18n.gettext("You said yes") == "Dijiste que sí"
        assert (
            i18n.ngettext(
                "You have %(number)s parent or guardian linked.",
                "You have %(number)s parents or guardians linked.",
                2,
                number=2,
            )
            == "Tienes 2 padres o tutores vinculados."
        )
    with i18n.use_locale("es"):  # the adult register is unchanged
        assert i18n.current_register() is None
        assert i18n.gettext("You said yes") == "Usted dijo que sí"


def test_the_child_register_falls_back_to_the_plain_translation() -> None:
    # No child entry for "Sign out": the plain Spanish, never the English.
    with i18n.use_locale("es"), i18n.use_register(i18n.CHILD):
        assert i18n.gettext("Sign out") == "Cerrar sesión"
        assert i18n.ngettext("%(number)s title", "%(number)s titles", 3, number=3) == ("3 títulos")
        assert i18n.pgettext("child", "Sign out") == "Cerrar sesión"
        assert i18n.npgettext("child", "%(number)s title", "%(number)s titles", 1, number=1) == (
            "1 título"
        )
    with i18n.use_locale("en"), i18n.use_register(i18n.CHILD):
        assert i18n.gettext("You said yes") == "You said yes"


def test_every_child_entry_exists_in_the_plain_catalog_too() -> None:
    # A child entry is the child's wording of a message the pages already show.
    plain = set(i18n.translations("es")._catalog)  # type: ignore[attr-defined]
    for message in child_wording.MESSAGES:
        assert message in plain, message
    for singular, _plural in child_wording.PLURALS:
        assert (singular, 0) in plain, singular
