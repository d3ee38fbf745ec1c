"""Pure rules for children's notices: which services need a child's version, what is refused
without one, and which text a person reads."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from portal.catalog.jurisdiction import PRESETS, AgeBand
from portal.catalog.parsing import parse_catalog
from portal.catalog.policy import (
    NOTICE_FIELDS,
    CatalogError,
    content_hash,
    offered_below_consent_age,
)
from portal.consent.policy import Party, audience_for
from portal.i18n import KNOWN_LOCALES
from portal.ledger.vocabulary import Audience
from portal.locale_codes import VARIANT_OF
from tests.factories import catalog_text, notice_strings, service_table

STORE_KEYS = ("reading_history", "saved_lists")
ROOT = Path(__file__).resolve().parents[2]
LANGUAGES = {code for code in KNOWN_LOCALES if code not in VARIANT_OF}


def problems_of(text: str, locales: tuple[str, ...] = ("en",)) -> list[str]:
    with pytest.raises(CatalogError) as raised:
        parse_catalog(text, locales, STORE_KEYS)
    return raised.value.problems


def test_a_service_offered_to_children_without_a_childs_version_is_refused() -> None:
    text = catalog_text(service_table("newsletter", child=False))
    assert problems_of(text) == [
        "service 'newsletter': offered below the guardian-consent age, so it needs a child's "
        "version of its notice ([service.child_notice.<locale>]) in every enabled locale"
    ]


def test_a_childs_version_missing_in_one_enabled_locale_is_named() -> None:
    text = catalog_text(service_table("newsletter", locales=("en", "es"))).replace(
        "[service.child_notice.es]", "[service.child_notice.fr]"
    )
    assert "service 'newsletter': child_notice missing in locale(s) es" in problems_of(
        text, ("en", "es")
    )


def test_a_childs_version_missing_a_field_is_named() -> None:
    text = catalog_text(service_table("newsletter")).replace(
        'withdraw = "newsletter withdraw en for a child"', ""
    )
    assert "service 'newsletter': child_notice.en is missing withdraw" in problems_of(text)


def test_a_service_not_offered_to_minors_needs_no_childs_version() -> None:
    text = catalog_text(service_table("fundraising", minimum_age=18, child=False))
    assert parse_catalog(text, ("en",), STORE_KEYS).services[0].child_notices == {}


def test_a_minimum_age_below_a_patrons_own_consent_age_still_needs_one() -> None:
    # A US library (consent below 13) may hold a GDPR-DE patron (below 16): at 14 they are a
    # child for the guardian-consent rules and can meet a service offered from 13.
    text = catalog_text(service_table("ebooks", minimum_age=13, child=False))
    assert any("needs a child's version" in problem for problem in problems_of(text))
    assert offered_below_consent_age(13, PRESETS["US"])
    assert not offered_below_consent_age(16, PRESETS["US"])
    assert offered_below_consent_age(None, PRESETS["GDPR-DK"])


def test_the_childs_version_is_parsed_beside_the_notice() -> None:
    catalog = parse_catalog(catalog_text(service_table("newsletter")), ("en",), STORE_KEYS)
    service = catalog.services[0]
    assert service.child_notices["en"].title == "newsletter title en for a child"
    assert service.notices["en"].title == "newsletter title en"


def test_a_childs_version_has_its_own_hash() -> None:
    catalog = parse_catalog(catalog_text(service_table("newsletter")), ("en",), STORE_KEYS)
    service = catalog.services[0]
    same = service.notices["en"]
    assert content_hash("en", service.terms, same) != content_hash(
        "en", service.terms, same, audience="child"
    )


@pytest.mark.parametrize(
    ("band", "party", "has_child_version", "audience"),
    [
        (AgeBand.CHILD, Party.PATRON, True, Audience.CHILD),
        (AgeBand.CHILD, Party.PATRON, False, Audience.ADULT),
        (AgeBand.CHILD, Party.GUARDIAN, True, Audience.ADULT),
        (AgeBand.TEEN, Party.PATRON, True, Audience.ADULT),
        (AgeBand.ADULT, Party.PATRON, True, Audience.ADULT),
    ],
    ids=["child", "child, no version", "guardian", "teenager", "adult"],
)
def test_who_reads_which_text(
    band: AgeBand, party: Party, has_child_version: bool, audience: Audience
) -> None:
    assert audience_for(band=band, party=party, has_child_version=has_child_version) is audience


def test_the_demo_catalog_has_a_childs_version_in_every_locale_where_one_is_needed() -> None:
    text = (ROOT / "deploy" / "catalog.toml").read_text(encoding="utf-8")
    catalog = parse_catalog(text, tuple(KNOWN_LOCALES), STORE_KEYS)
    library = catalog.jurisdiction
    needing = [s for s in catalog.services if offered_below_consent_age(s.minimum_age, library)]
    assert len(needing) == 6
    for service in needing:
        # A regional variant (zh_Hant_HK) reads its language's child's version.
        assert set(service.child_notices) == LANGUAGES, service.key
        for locale, child in service.child_notices.items():
            adult = service.notices[locale]
            # A child's version is its own text, and shorter than the notice it stands for.
            assert child != adult, (service.key, locale)
            assert (
                sum(map(len, child.as_dict().values()))
                <= sum(map(len, adult.as_dict().values())) * 1.25
            ), (service.key, locale)


NUMBER = re.compile(r"\d+")

# Facts a notice states in words, as each language words them (the same words in a child's
# version as in the adult notice). When a notice states one, its child's version states it.
FACT_WORDS: dict[str, dict[str, str]] = {
    # Only items borrowed after the service is turned on are kept, not the past.
    "from now on": {
        "en": r"from now on",
        "es": r"a partir de ahora",
        "fr": r"à partir de maintenant",
        "zh_Hans": r"从现在起",
        "zh_Hant": r"從現在起",
        "vi": r"kể từ bây giờ",
        "fil": r"mula ngayon",
        "ko": r"지금부터",
        "ru": r"с этого момента",
        "ar": r"من الآن",
    },
    # The period runs from the end of a loan (an e-book loan ends by itself), not a return.
    "after the loan ends": {
        "en": r"loan ends",
        "es": r"termina (?:cada|el) préstamo",
        "fr": r"fin d(?:e chaque|u) prêt",
        "zh_Hans": r"借阅结束",
        "zh_Hant": r"借閱結束",
        "vi": r"mượn kết thúc",
        "fil": r"matapos ang (?:bawat )?paghiram",
        "ko": r"대출이 끝",
        "ru": r"оконча|законч",
        "ar": r"انتهاء",
    },
}


def demo_notices() -> list[tuple[str, str, dict[str, str], dict[str, str]]]:
    """(service, locale, adult notice, child's version) for every child's version."""
    raw = tomllib.loads((ROOT / "deploy" / "catalog.toml").read_text(encoding="utf-8"))
    return [
        (service["key"], locale, service["notice"][locale], child)
        for service in raw["service"]
        for locale, child in service.get("child_notice", {}).items()
    ]


def test_the_demo_catalogs_childs_versions_name_the_same_retention() -> None:
    for key, locale, adult, child in demo_notices():
        # A messaging service's notices also carry its titles and kinds lines.
        extra = {"titles", "kinds"} if "kinds" in adult else set()
        assert set(child) == set(NOTICE_FIELDS) | extra
        adult_numbers = set(NUMBER.findall(adult["retention"]))
        child_numbers = set(NUMBER.findall(child["retention"]))
        assert adult_numbers == child_numbers, (key, locale)


def test_the_demo_catalogs_childs_versions_keep_every_number_and_company() -> None:
    """Every figure of the notice (a period, an age) and every connected company it names."""
    raw = tomllib.loads((ROOT / "deploy" / "catalog.toml").read_text(encoding="utf-8"))
    companies = [system["name"] for system in raw.get("system", [])]
    problems = []
    for key, locale, adult, child in demo_notices():
        adult_text = " ".join(text for _, text in notice_strings(adult))
        child_text = " ".join(text for _, text in notice_strings(child))
        missing = set(NUMBER.findall(adult_text)) - set(NUMBER.findall(child_text))
        missing |= {name for name in companies if name in adult_text and name not in child_text}
        if missing:
            problems.append((key, locale, sorted(missing)))
    assert problems == []


@pytest.mark.parametrize("fact", FACT_WORDS)
def test_the_demo_catalogs_childs_versions_keep_the_facts_stated_in_words(fact: str) -> None:
    words = FACT_WORDS[fact]
    stated = set()
    problems = []
    for key, locale, adult, child in demo_notices():
        for field in NOTICE_FIELDS:
            if re.search(words[locale], adult[field]):
                stated.add(locale)
                if not re.search(words[locale], child[field]):
                    problems.append((key, locale, field, child[field]))
    assert stated == LANGUAGES, "each language's words for the fact are out of date"
    assert problems == []
