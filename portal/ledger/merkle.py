"""The consent ledger as a Merkle tree, after RFC 9162 §2.1 (Certificate Transparency 2.0): the
hashing with its leaf and node prefixes, the tree head of any size, inclusion and consistency
proofs and the algorithms that verify them. Pure: hashes in, hashes out.

A leaf is one ledger event's canonical bytes (`leaf_data`): every column of the row as JSON
with sorted keys, no whitespace, UTF-8, the time in UTC to the microsecond, and a format
version. Changing any column, the id included, changes the leaf and so the root. The ledger
holds no titles and no card numbers (patrons are row numbers, notices are versions and
hashes), so erasure never needs to touch a leaf."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

HASH_SIZE = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = hashlib.sha256(b"").digest()  # MTH({}) = HASH() (RFC 9162 §2.1.1)

# The leaf format's version, inside every leaf: a later format is a new value, never a
# silent change to the bytes of leaves already signed.
LEAF_VERSION = 1
LEAF_FIELDS = (
    "id",
    "patron_id",
    "service_id",
    "kind",
    "notice_version_id",
    "notice_hash",
    "locale",
    "notice_audience",
    "purposes",
    "occurred_at",
    "method",
    "actor",
    "channel",
    "acting_guardian_id",
    "detail",
    "witnessed_by",
)

# The JWS "typ" of a checkpoint: no receipt passes for one, nor one for a receipt.
CHECKPOINT_TYPE = "ledger-checkpoint+jwt"
CHECKPOINT_LOG = "consent-ledger"


def _moment(value: datetime) -> str:
    # The same text as strftime("%Y-%m-%dT%H:%M:%S.%fZ"), at a third of its cost: a first
    # checkpoint formats a hundred million of them.
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


# One encoder for every leaf: json.dumps with these options builds a new one per call.
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
_PLAIN = (str, int, type(None), list, dict)


def leaf_data(event: Mapping[str, Any]) -> bytes:
    """The canonical bytes of one event: the columns of LEAF_FIELDS (enums by their value)."""
    document: dict[str, Any] = {"v": LEAF_VERSION}
    for name in LEAF_FIELDS:
        value = event[name]
        if type(value) in _PLAIN:
            pass
        elif isinstance(value, datetime):
            value = _moment(value)
        elif hasattr(value, "value"):  # an enum member
            value = value.value
        document[name] = value
    return _ENCODER.encode(document).encode("utf-8")


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _mth(leaves: Sequence[bytes], lo: int, hi: int) -> bytes:
    n = hi - lo
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return leaves[lo]
    k = _split(n)
    return node_hash(_mth(leaves, lo, lo + k), _mth(leaves, lo + k, hi))


def root(leaves: Sequence[bytes], size: int | None = None) -> bytes:
    """MTH(D[0:size]) over leaf hashes (RFC 9162 §2.1.1)."""
    size = len(leaves) if size is None else size
    if not 0 <= size <= len(leaves):
        raise ValueError("size out of range")
    return _mth(leaves, 0, size)


class Frontier:
    """The perfect subtrees of a prefix of the leaves, largest first: O(log n) hashes from
    which MTH of the prefix folds from the right, as the left-balanced tree of §2.1.1 is
    built. Leaves pass one at a time, or a whole aligned subtree (a block) at once."""

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []  # (leaves covered, hash), widths decreasing

    def add(self, value: bytes, width: int = 1) -> None:
        """Append a leaf hash, or MTH of `width` leaves (a power of two, the prefix a
        multiple of it)."""
        if width < 1 or width & (width - 1) or self.size % width:
            raise ValueError("a subtree that is not aligned")
        self.size += width
        while self._stack and self._stack[-1][0] == width:
            left = self._stack.pop()
            width, value = width * 2, node_hash(left[1], value)
        self._stack.append((width, value))

    def head(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        folded = self._stack[-1][1]
        for _, left_hash in reversed(self._stack[:-1]):
            folded = node_hash(left_hash, folded)
        return folded


def roots_at(leaves: Iterable[bytes], sizes: Iterable[int]) -> dict[int, bytes]:
    """The tree head at each of `sizes`, in one pass over the leaves (a Frontier)."""
    wanted = set(sizes)
    heads: dict[int, bytes] = {}
    if 0 in wanted:
        heads[0] = EMPTY_ROOT
    frontier = Frontier()
    for leaf in leaves:
        frontier.add(leaf)
        if frontier.size in wanted:
            heads[frontier.size] = frontier.head()
    return heads


Range = Callable[[int, int], bytes]  # MTH(D[lo:hi]), however it is found


def _path(mth: Range, m: int, lo: int, hi: int) -> list[bytes]:
    n = hi - lo
    if n <= 1:
        return []
    k = _split(n)
    if m < k:
        return [*_path(mth, m, lo, lo + k), mth(lo + k, hi)]
    return [*_path(mth, m - k, lo + k, hi), mth(lo, lo + k)]


def inclusion_proof(leaves: Sequence[bytes], index: int, size: int) -> list[bytes]:
    """PATH(index, D[0:size]) (RFC 9162 §2.1.3.1)."""
    if not 0 <= index < size <= len(leaves):
        raise ValueError("index or size out of range")
    return _path(lambda lo, hi: _mth(leaves, lo, hi), index, 0, size)


# A proof for a patron's receipt is made from the hashes of whole blocks of BLOCK leaves,
# kept at checkpoint time, and the leaves of two blocks: a few thousand hashes for a
# million events rather than a million. Every range PATH asks for that is longer than a
# block starts on a block's edge (it starts at a multiple of the power of two at least its
# length), so it splits into whole blocks and at most the last, partial one.
BLOCK = 256


def block_hashes(leaves: Sequence[bytes]) -> list[bytes]:
    """MTH of each whole block of BLOCK leaves, in order."""
    return [_mth(leaves, lo, lo + BLOCK) for lo in range(0, len(leaves) - BLOCK + 1, BLOCK)]


def _blocked(blocks: Sequence[bytes], leaves: Mapping[int, bytes]) -> Range:
    """MTH(D[lo:hi]) from whole blocks where the range is aligned whole blocks, and from the
    leaves (by position) where it lies inside one block."""

    def mth(lo: int, hi: int) -> bytes:
        if hi - lo == BLOCK and lo % BLOCK == 0:
            return blocks[lo // BLOCK]
        if hi - lo > BLOCK:
            k = _split(hi - lo)
            return node_hash(mth(lo, lo + k), mth(lo + k, hi))
        return _mth([leaves[position] for position in range(lo, hi)], 0, hi - lo)

    return mth


def blocked_inclusion_proof(
    index: int, size: int, blocks: Sequence[bytes], leaves: Mapping[int, bytes]
) -> list[bytes]:
    """PATH(index, D[0:size]) from the whole blocks' hashes and the leaves (by position) of
    the block holding `index` and of the last, partial block."""
    if not 0 <= index < size or len(blocks) < size // BLOCK:
        raise ValueError("index, size or blocks out of range")
    return _path(_blocked(blocks, leaves), index, 0, size)


def blocked_root(size: int, blocks: Sequence[bytes], tail: Sequence[bytes]) -> bytes:
    """MTH(D[0:size]) from the whole blocks' hashes and the leaves after the last whole
    block (size % BLOCK of them, in order): what a checkpoint keeps, without every leaf."""
    whole = size // BLOCK
    if len(blocks) < whole or len(tail) != size % BLOCK:
        raise ValueError("blocks or tail out of range")
    frontier = Frontier()
    for value in blocks[:whole]:
        frontier.add(value, BLOCK)
    for value in tail:
        frontier.add(value)
    return frontier.head()


def blocked_consistency_proof(
    first: int, second: int, blocks: Sequence[bytes], leaves: Mapping[int, bytes]
) -> list[bytes]:
    """PROOF(first, D[0:second]) from the whole blocks' hashes and the leaves (by position)
    of the block holding leaf `first` and of the last, partial block: every other range the
    proof asks for is made of whole aligned blocks (see BLOCK)."""
    if not 0 < first <= second or len(blocks) < second // BLOCK:
        raise ValueError("sizes or blocks out of range")
    if first == second:
        return []
    return _subproof(_blocked(blocks, leaves), first, 0, second, True)


class Growing:
    """The tree as new leaves join it, kept as the whole blocks' hashes, the leaves of the
    block the previous checkpoint ended in and those of the last, partial block: what the
    new head and the consistency proof from the previous size are made of."""

    def __init__(self, size: int, blocks: list[bytes], tail: list[bytes]) -> None:
        self.size = size
        self.blocks = blocks
        self.block = list(tail)
        self._first = size - size % BLOCK
        self._kept = {self._first + offset: value for offset, value in enumerate(tail)}

    def add(self, value: bytes) -> None:
        if self.size < self._first + BLOCK:
            self._kept[self.size] = value
        self.size += 1
        self.block.append(value)
        if len(self.block) == BLOCK:
            self.blocks.append(root(self.block))
            self.block = []

    def head(self) -> bytes:
        return blocked_root(self.size, self.blocks, self.block)

    def leaves(self) -> dict[int, bytes]:
        last = self.size - len(self.block)
        return {**self._kept, **{last + offset: v for offset, v in enumerate(self.block)}}


def _subproof(mth: Range, m: int, lo: int, hi: int, whole: bool) -> list[bytes]:
    n = hi - lo
    if m == n:
        return [] if whole else [mth(lo, hi)]
    k = _split(n)
    if m <= k:
        return [*_subproof(mth, m, lo, lo + k, whole), mth(lo + k, hi)]
    return [*_subproof(mth, m - k, lo + k, hi, False), mth(lo, lo + k)]


def consistency_proof(leaves: Sequence[bytes], first: int, second: int) -> list[bytes]:
    """PROOF(first, D[0:second]) (RFC 9162 §2.1.4.1); empty when the sizes are equal."""
    if not 0 < first <= second <= len(leaves):
        raise ValueError("sizes out of range")
    if first == second:
        return []
    return _subproof(lambda lo, hi: _mth(leaves, lo, hi), first, 0, second, True)


def _hashes(values: Sequence[bytes]) -> bool:
    return all(len(value) == HASH_SIZE for value in values)


def verify_inclusion(
    leaf: bytes, index: int, size: int, path: Sequence[bytes], root_hash: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: whether `leaf` (a leaf hash) is at `index` of the tree of `size`
    leaves whose head is `root_hash`."""
    if not (0 <= index < size and _hashes([leaf, root_hash, *path])):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root_hash


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, path: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: whether the tree of `second` leaves extends the tree of `first`,
    nothing in the first changed, removed or reordered."""
    if not (0 <= first <= second and _hashes([first_root, second_root, *path])):
        return False
    if first == second:
        return not path and first_root == second_root
    if first == 0:
        return not path  # the empty tree is a prefix of every tree
    if not path:
        return False
    proof = list(path)
    if first & (first - 1) == 0:  # an exact power of two: its head is a node of the second
        proof.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root


def checkpoint_claims(size: int, root_hash: bytes, made_at: datetime) -> dict[str, Any]:
    """What a checkpoint signs: the tree's size and head, and when."""
    return {
        "log": CHECKPOINT_LOG,
        "tree_size": size,
        "root_hash": root_hash.hex(),
        "time": made_at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "iat": int(made_at.timestamp()),
    }


def from_hex(value: object) -> bytes | None:
    """A hash written as 64 hex digits, or None."""
    if not (isinstance(value, str) and len(value) == 2 * HASH_SIZE):
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None


def bundle_holds(bundle: Mapping[str, Any], signed: Mapping[str, Any]) -> bool:
    """Whether an inclusion bundle (its leaf as text, index, tree size and audit path, as
    portal.ledger.checkpoints.Inclusion.bundle makes it) proves its leaf is in the tree whose
    size and head `signed` holds: the claims of a checkpoint whose signature verified."""
    leaf, index, size = bundle.get("leaf"), bundle.get("leaf_index"), bundle.get("tree_size")
    path, head = bundle.get("audit_path"), from_hex(signed.get("root_hash"))
    if not (
        isinstance(leaf, str)
        and isinstance(index, int)
        and isinstance(size, int)
        and isinstance(path, list)
        and head is not None
        and signed.get("log") == CHECKPOINT_LOG
        and signed.get("tree_size") == size
    ):
        return False
    hashes = [from_hex(value) for value in path]
    if any(value is None for value in hashes):
        return False
    return verify_inclusion(
        leaf_hash(leaf.encode("utf-8")), index, size, [h for h in hashes if h], head
    )
