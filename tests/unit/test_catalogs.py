"""Every enabled locale's catalog is complete: no missing, empty or fuzzy entry, every
placeholder kept, every plural form present, and it compiles. A regional variant's catalog
(zh_Hant_HK) holds only the entries whose words differ from its language's, which it falls
back to for the rest."""

from __future__ import annotations

import re

import pytest
from babel.messages.pofile import read_po

from portal.i18n import KNOWN_LOCALES, LOCALES_DIR, SOURCE_LOCALE, translations
from portal.locale_codes import VARIANT_OF

TRANSLATED = [code for code in KNOWN_LOCALES if code != SOURCE_LOCALE]
COMPLETE = [code for code in TRANSLATED if code not in VARIANT_OF]
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def template_ids() -> set[str]:
    with (LOCALES_DIR / "messages.pot").open("rb") as handle:
        return {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(handle) if m.id}


def template_keys() -> set[tuple[str | None, str]]:
    with (LOCALES_DIR / "messages.pot").open("rb") as handle:
        return {(m.context, m.id if isinstance(m.id, str) else m.id[0]) for m in read_po(handle)}


def load(code: str):
    with (LOCALES_DIR / code / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=KNOWN_LOCALES[code].babel_id)


@pytest.mark.parametrize("code", COMPLETE)
def test_catalog_has_every_message_translated(code: str) -> None:
    catalog = load(code)
    present = {m.id if isinstance(m.id, str) else m.id[0] for m in catalog if m.id}
    assert template_ids() - present == set(), "run `make messages` and translate"
    problems = []
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        if message.fuzzy:
            problems.append(("fuzzy", message.id))
        if isinstance(message.id, tuple) and len(strings) != catalog.num_plurals:
            problems.append(("plural forms", message.id))
        if any(not s.strip() for s in strings):
            problems.append(("empty", message.id))
    assert problems == []


@pytest.mark.parametrize("code", TRANSLATED)
def test_placeholders_are_kept(code: str) -> None:
    problems = []
    for message in load(code):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        wanted = set(PLACEHOLDER.findall(" ".join(ids)))
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        for string in strings:
            found = set(PLACEHOLDER.findall(string))
            # A plural form may spell out its number ("one item") instead of %(count)s.
            allowed = found <= wanted if isinstance(message.id, tuple) else found == wanted
            if not allowed:
                problems.append((message.id, string))
    assert problems == []


@pytest.mark.parametrize("code", TRANSLATED)
def test_catalog_compiles(code: str) -> None:
    assert translations(code).gettext("My privacy") != "My privacy"


@pytest.mark.parametrize("variant", sorted(VARIANT_OF))
def test_a_variants_catalog_holds_only_the_words_that_differ(variant: str) -> None:
    """Each entry is a message of today's template, translated (not fuzzy, every plural form)
    and worded otherwise than its language's: an entry that says the same would hide a later
    fix to that language's wording."""
    catalog, parent = load(variant), load(VARIANT_OF[variant])
    known = template_keys()
    problems = []
    for message in catalog:
        if not message.id:
            continue
        key = message.id if isinstance(message.id, str) else message.id[0]
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        theirs = parent.get(message.id, context=message.context)
        if (message.context, key) not in known:
            problems.append(("not in messages.pot: remove it", key))
        elif message.fuzzy or any(not s.strip() for s in strings):
            problems.append(("fuzzy or empty", key))
        elif isinstance(message.id, tuple) and len(strings) != catalog.num_plurals:
            problems.append(("plural forms", key))
        elif theirs is not None and theirs.string == message.string:
            problems.append(("the same as its language's: remove it", key))
    assert problems == []


def test_make_messages_leaves_every_variant_alone() -> None:
    """`make messages` would fill a variant's catalog with every message, hiding its fallback."""
    makefile = (LOCALES_DIR.parent / "Makefile").read_text(encoding="utf-8")
    listed = next(line for line in makefile.splitlines() if line.startswith("VARIANTS :="))
    assert set(listed.split(":=")[1].split()) == set(VARIANT_OF)
