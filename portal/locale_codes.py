"""Locale codes that were renamed. What is stored keeps the spelling it was written with
(ledger entries, published notice versions: their content hash includes the code); everything
reads an old code as its new one. Tagalog/Filipino is `fil` since the 2026-11 rename."""

from __future__ import annotations

RENAMED: dict[str, str] = {"tl": "fil"}


def canonical(code: str) -> str:
    return RENAMED.get(code, code)


def spellings(code: str) -> tuple[str, ...]:
    """Every spelling a stored value in `code` may have: the code and its old names."""
    return (code, *(old for old, new in RENAMED.items() if new == code))


# A regional variant: its catalog holds only the words that differ from its language's
# (Hong Kong's 圖書證, 打印, 屏幕 for Taiwan's 借閱證, 列印, 螢幕) and everything else, the
# catalog's privacy notices included, comes from the language it varies.
VARIANT_OF: dict[str, str] = {"zh_Hant_HK": "zh_Hant"}


def fallbacks(code: str) -> tuple[str, ...]:
    """The locale, then each one it falls back to: ("zh_Hant_HK", "zh_Hant")."""
    chain = [canonical(code)]
    while chain[-1] in VARIANT_OF:
        chain.append(VARIANT_OF[chain[-1]])
    return tuple(chain)
