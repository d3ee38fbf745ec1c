"""One word per idea: no catalog string and no demo privacy notice (the full one or the
child's version) uses a variant that locales/glossary.toml rejects (a bare "notice" that
reads as a notification, a calque, a second speech level, a plain space where French wants
U+202F …). The child's texts (msgctxt "child", [service.child_notice.<locale>]) keep their
own, informal register: a rule marked `adult_only` does not apply to them, every other
rule does. A rule marked `child_only` (the simpler word a child reads) applies to them only."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from portal.i18n import KNOWN_LOCALES, LOCALES_DIR, SOURCE_LOCALE
from portal.locale_codes import fallbacks
from tests.factories import notice_strings

GLOSSARY = LOCALES_DIR / "glossary.toml"
DEMO_CATALOG = Path(__file__).resolve().parents[2] / "deploy" / "catalog.toml"
CORE_CONCEPTS = {"service", "notice", "consent", "guardian", "delete", "library card", "PIN"}


def terms() -> list[dict[str, object]]:
    with GLOSSARY.open("rb") as handle:
        return list(tomllib.load(handle)["term"])


def texts(code: str) -> Iterator[tuple[str, str, str, bool]]:
    """(where, msgid, text, for a child) for every string a patron or staff member reads in
    `code`."""
    if code == SOURCE_LOCALE:
        with (LOCALES_DIR / "messages.pot").open("rb") as handle:
            catalog = read_po(handle)
    else:
        with (LOCALES_DIR / code / "LC_MESSAGES" / "messages.po").open("rb") as handle:
            catalog = read_po(handle, locale=KNOWN_LOCALES[code].babel_id)
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        if code == SOURCE_LOCALE:
            strings: tuple[str, ...] = ids
        else:
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for string in strings:
            yield "messages.po", ids[0], string, message.context == "child"
    with DEMO_CATALOG.open("rb") as handle:
        demo = tomllib.load(handle)
    for service in demo["service"]:
        for table in ("notice", "child_notice"):
            # A regional variant without its own notices reads its language's.
            shown = next((c for c in fallbacks(code) if c in service.get(table, {})), code)
            for field, value in notice_strings(service.get(table, {}).get(shown, {})):
                where = f"deploy/catalog.toml {table}.{shown} {service['key']}.{field}"
                yield where, "", value, table == "child_notice"


@pytest.mark.parametrize("code", list(KNOWN_LOCALES))
def test_no_string_uses_a_rejected_variant(code: str) -> None:
    found = []
    # A regional variant's texts keep its language's rules too (its own entries and the
    # language's that it falls back to).
    for term in (t for t in terms() if t["locale"] in fallbacks(code)):
        scope = re.compile(str(term["msgid"])) if "msgid" in term else None
        patterns = [re.compile(str(p)) for p in term["reject"]]  # type: ignore[attr-defined]
        for where, msgid, text, for_child in texts(code):
            if scope is not None and not scope.search(msgid):
                continue
            if for_child and term.get("adult_only", False):
                continue
            if not for_child and term.get("child_only", False):
                continue
            for pattern in patterns:
                if match := pattern.search(text):
                    found.append(f"{where}: {match.group()!r} in {text!r}: {term['why']}")
    assert found == []


@pytest.mark.parametrize("code", list(KNOWN_LOCALES))
def test_glossary_names_the_core_words_of_every_locale(code: str) -> None:
    concepts = {t["concept"] for t in terms() if t["locale"] in fallbacks(code)}
    assert CORE_CONCEPTS - concepts == set()


def test_glossary_entries_are_complete() -> None:
    for term in terms():
        assert {"locale", "concept", "use", "reject", "why"} <= set(term), term
        assert term["locale"] in KNOWN_LOCALES, term
        for pattern in term["reject"]:  # type: ignore[attr-defined]
            re.compile(pattern)


def test_the_child_notices_are_read() -> None:
    # Every locale's child's versions are checked, not only the full privacy notices.
    for code in KNOWN_LOCALES:
        child = [where for where, _, _, for_child in texts(code) if "child_notice" in where]
        assert child, code
        assert all(for_child for where, _, _, for_child in texts(code) if where in child)


def test_adult_only_rules_are_about_the_register() -> None:
    # Only a speech-level rule may spare the child's texts; the words themselves never do.
    for term in terms():
        if term.get("adult_only", False):
            assert term["concept"] == "register", term


def test_a_rejected_variant_is_caught() -> None:
    # The check itself works: the old English service title would fail it.
    notice = next(t for t in terms() if t["locale"] == "en" and t["concept"] == "notice")
    assert any(re.search(str(p), "Text message notices") for p in notice["reject"])  # type: ignore[attr-defined]
    assert not any(re.search(str(p), "Read the privacy notice") for p in notice["reject"])  # type: ignore[attr-defined]
