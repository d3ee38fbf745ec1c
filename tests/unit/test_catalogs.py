"""Every enabled locale's catalog is complete: no missing, empty or fuzzy entry, every
placeholder kept, every plural form present, and it compiles."""

from __future__ import annotations

import re

import pytest
from babel.messages.pofile import read_po

from portal.i18n import KNOWN_LOCALES, LOCALES_DIR, SOURCE_LOCALE, translations

TRANSLATED = [code for code in KNOWN_LOCALES if code != SOURCE_LOCALE]
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def template_ids() -> set[str]:
    with (LOCALES_DIR / "messages.pot").open("rb") as handle:
        return {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(handle) if m.id}


def load(code: str):
    with (LOCALES_DIR / code / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=KNOWN_LOCALES[code].babel_id)


@pytest.mark.parametrize("code", TRANSLATED)
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
