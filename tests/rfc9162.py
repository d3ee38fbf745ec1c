"""An independent reading of RFC 9162 §2.1, with hashlib alone, to check the portal's Merkle
tree against: the definitions as the RFC writes them (recursion over lists), and proofs
checked by rebuilding the heads from those definitions rather than by the RFC's bit-walking
algorithms, which the portal follows. Nothing here imports the portal."""

from __future__ import annotations

import hashlib


def _h(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaf(data: bytes) -> bytes:
    return _h(b"\x00" + data)


def node(left: bytes, right: bytes) -> bytes:
    return _h(b"\x01" + left + right)


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(hashes: list[bytes]) -> bytes:
    """MTH over leaf hashes: D[n] already hashed as leaves."""
    if not hashes:
        return _h(b"")
    if len(hashes) == 1:
        return hashes[0]
    k = _k(len(hashes))
    return node(mth(hashes[:k]), mth(hashes[k:]))


def path(m: int, hashes: list[bytes]) -> list[bytes]:
    if len(hashes) <= 1:
        return []
    k = _k(len(hashes))
    if m < k:
        return [*path(m, hashes[:k]), mth(hashes[k:])]
    return [*path(m - k, hashes[k:]), mth(hashes[:k])]


def proof(m: int, hashes: list[bytes]) -> list[bytes]:
    def sub(m: int, d: list[bytes], b: bool) -> list[bytes]:
        if m == len(d):
            return [] if b else [mth(d)]
        k = _k(len(d))
        if m <= k:
            return [*sub(m, d[:k], b), mth(d[k:])]
        return [*sub(m - k, d[k:], False), mth(d[:k])]

    return sub(m, hashes, True)


def included(leaf_hash: bytes, m: int, n: int, audit: list[bytes], root: bytes) -> bool:
    """Rebuild the head from PATH's definition: the last element is the sibling at the top."""

    def rebuild(m: int, n: int, audit: list[bytes]) -> bytes | None:
        if n == 1:
            return leaf_hash if not audit else None
        if not audit:
            return None
        k = _k(n)
        below = rebuild(m, k, audit[:-1]) if m < k else rebuild(m - k, n - k, audit[:-1])
        if below is None:
            return None
        return node(below, audit[-1]) if m < k else node(audit[-1], below)

    return 0 <= m < n and rebuild(m, n, list(audit)) == root


def consistent(m: int, n: int, old: bytes, new: bytes, audit: list[bytes]) -> bool:
    """Rebuild both heads from SUBPROOF's definition."""

    def rebuild(m: int, n: int, audit: list[bytes], b: bool) -> tuple[bytes, bytes] | None:
        if m == n:
            if b:
                return (old, old) if not audit else None
            return (audit[0], audit[0]) if len(audit) == 1 else None
        if not audit:
            return None
        k = _k(n)
        if m <= k:
            below = rebuild(m, k, audit[:-1], b)
            return None if below is None else (below[0], node(below[1], audit[-1]))
        below = rebuild(m - k, n - k, audit[:-1], False)
        if below is None:
            return None
        return node(audit[-1], below[0]), node(audit[-1], below[1])

    if m == n:
        return not audit and old == new
    if not 0 < m < n:
        return False
    heads = rebuild(m, n, list(audit), True)
    return heads == (old, new)
