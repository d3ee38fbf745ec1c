"""Every plural message picks, for a count, the form CLDR's plural rules say that count takes.

A catalog's `Plural-Forms` header decides which msgstr[i] a count gets; its forms are written
in CLDR's order (zero, one, two, few, many, other). A header with another order or another
split shows "30 يوم" where Arabic needs "30 يومًا" on every receipt.
"""

from __future__ import annotations

import gettext
from collections.abc import Callable

import pytest
from babel import Locale
from babel.messages.pofile import read_po

from portal import i18n
from portal.i18n import KNOWN_LOCALES, LOCALES_DIR, SOURCE_LOCALE

TRANSLATED = [code for code in KNOWN_LOCALES if code != SOURCE_LOCALE]
COUNTS = (0, 1, 2, 3, 11, 100, 101, 1095)
CLDR_ORDER = ("zero", "one", "two", "few", "many", "other")


def load(code: str):
    with (LOCALES_DIR / code / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=KNOWN_LOCALES[code].babel_id)


def header_rule(catalog) -> Callable[[int], int]:
    """The form index the catalog's `Plural-Forms` header gives a count (as gettext does)."""
    return gettext.c2py(catalog.plural_expr)


def plural_messages(code: str) -> list:
    return [m for m in load(code) if m.id and isinstance(m.id, tuple)]


@pytest.mark.parametrize("code", TRANSLATED)
def test_the_header_chooses_the_form_of_cldrs_category(code: str) -> None:
    """The same category always gets the same form, categories keep CLDR's order, and a
    catalog with room for every category gives each its own form."""
    catalog = load(code)
    cldr = Locale.parse(KNOWN_LOCALES[code].babel_id).plural_form
    form_of = {n: header_rule(catalog)(n) for n in COUNTS}  # what the header chooses
    category_of = {n: cldr(n) for n in COUNTS}
    categories = sorted(set(category_of.values()), key=CLDR_ORDER.index)
    problems = []
    for n in COUNTS:
        for m in COUNTS:
            same_category = category_of[n] == category_of[m]
            if same_category and form_of[n] != form_of[m]:
                problems.append(f"{n} and {m} are both {category_of[n]} but get two forms")
            earlier = CLDR_ORDER.index(category_of[n]) < CLDR_ORDER.index(category_of[m])
            if earlier and form_of[n] > form_of[m]:
                problems.append(
                    f"{n} ({category_of[n]}) gets form {form_of[n]}, after "
                    f"{m} ({category_of[m]}) with form {form_of[m]}"
                )
            enough_forms = catalog.num_plurals >= len(categories)
            if enough_forms and not same_category and form_of[n] == form_of[m]:
                problems.append(f"{n} and {m} share form {form_of[n]}")
    assert problems == []


@pytest.mark.parametrize("code", TRANSLATED)
@pytest.mark.parametrize("count", COUNTS)
def test_every_plural_message_renders_the_form_of_its_count(code: str, count: int) -> None:
    """What a page shows for `count` is the form of its CLDR category, with the count in it
    wherever the form keeps the placeholder."""
    cldr = Locale.parse(KNOWN_LOCALES[code].babel_id).plural_form
    catalog = load(code)
    # The categories the counts fall in, in CLDR's order; a catalog with fewer forms (one
    # for Vietnamese, Korean, Chinese) uses its last form for the rest.
    categories = sorted({cldr(n) for n in COUNTS}, key=CLDR_ORDER.index)
    index = min(categories.index(cldr(count)), catalog.num_plurals - 1)
    problems = []
    with i18n.use_locale(code):
        for message in plural_messages(code):
            singular, plural = message.id[:2]
            if message.context:
                shown = i18n.npgettext(message.context, singular, plural, count, number=count)
            else:
                shown = i18n.ngettext(singular, plural, count, number=count)
            variables = {"number": count, "num": count}
            expected = i18n._interpolate(message.string[index], singular, variables)
            if shown != expected:
                problems.append((message.context, singular, shown, expected))
    assert problems == []


# Arabic marks the counted noun after 11 to 99 (CLDR "many") with tanween fath (يومًا,
# عنصرًا); after 100, 101 … (CLDR "other") it takes the genitive singular (يوم). A form
# for "many" without the mark, or one for "other" with it, sits in the other's place.
TANWEEN_FATH = "\u064b"


def test_arabic_many_and_other_forms_are_not_swapped() -> None:
    catalog = load("ar")
    problems = []
    for message in plural_messages("ar"):
        many = message.string[header_rule(catalog)(11)]
        other = message.string[header_rule(catalog)(100)]
        # Only the words that differ: "جدًا" elsewhere in the sentence carries the mark too.
        many_words = " ".join(set(many.split()) - set(other.split()))
        other_words = " ".join(set(other.split()) - set(many.split()))
        if many != other and (TANWEEN_FATH not in many_words or TANWEEN_FATH in other_words):
            problems.append((message.id[0], many, other))
    assert problems == []


@pytest.mark.parametrize(
    ("count", "expected"),
    [(30, "30 يومًا"), (90, "90 يومًا"), (1095, "1095 يومًا"), (100, "100 يوم"), (2, "يومان")],
)
def test_arabic_retention_periods_read_right(count: int, expected: str) -> None:
    with i18n.use_locale("ar"):
        assert i18n.ngettext("%(number)s day", "%(number)s days", count, number=count) == expected


def test_arabic_two_minutes_take_the_dual() -> None:
    with i18n.use_locale("ar"):
        shown = i18n.ngettext(
            "Too many tries. Please wait %(num)s minute, or ask library staff for help.",
            "Too many tries. Please wait %(num)s minutes, or ask library staff for help.",
            2,
        )
    assert "دقيقتين" in shown
