"""The guardian's page "What your child is shown" says which word of the child's version
stands for the child ('"You" in it means your child'). That word must be the one the child's
versions use: they speak to the child informally (tú, tu, ты, 你, em, mo …), so a sentence
naming the adult's «usted», «vous» or 您 points the guardian at a word that is not there."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from portal.i18n import KNOWN_LOCALES, LOCALES_DIR, SOURCE_LOCALE
from portal.locale_codes import VARIANT_OF
from tests.factories import notice_strings

DEMO_CATALOG = Path(__file__).resolve().parents[2] / "deploy" / "catalog.toml"
MSGID = 'This is the privacy notice the library shows your child. "You" in it means your child.'
QUOTED = re.compile(r'[«“「‘"]\s*([^»”」’"]+?)\s*[»”」’"]')
# Scripts written without spaces between words: a word is found as a substring.
UNSPACED = ("zh", "ko", "ja")


def translation(code: str) -> str:
    if code == SOURCE_LOCALE:
        return MSGID
    with (LOCALES_DIR / code / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle, locale=KNOWN_LOCALES[code].babel_id)
    message = catalog.get(MSGID)
    assert message is not None, code
    assert message.string, code
    return str(message.string)


def child_versions(code: str) -> str:
    with DEMO_CATALOG.open("rb") as handle:
        demo = tomllib.load(handle)
    return "\n".join(
        value
        for service in demo["service"]
        for _, value in notice_strings(service.get("child_notice", {}).get(code, {}))
    )


def used(word: str, text: str, code: str) -> bool:
    if code.startswith(UNSPACED):
        return word in text
    return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text, re.IGNORECASE) is not None


# A regional variant (zh_Hant_HK) shows its language's notices and, unless it words the
# sentence itself, its language's sentence: that language's test covers it.
@pytest.mark.parametrize("code", [code for code in KNOWN_LOCALES if code not in VARIANT_OF])
def test_the_word_for_the_child_is_the_one_the_child_reads(code: str) -> None:
    text = child_versions(code)
    assert text, code
    missing = [w for w in QUOTED.findall(translation(code)) if not used(w, text, code)]
    assert missing == [], f"{code}: {missing} not in the child's versions"


def test_the_check_reads_the_quoted_words() -> None:
    # The check itself works: the adult's «usted» is not in the Spanish child's versions.
    assert QUOTED.findall("En él, «usted» se refiere al menor.") == ["usted"]
    assert not used("usted", child_versions("es"), "es")
    assert used("tú", "Tú puedes decir que no.", "es")
