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
