"""The ledger's Merkle tree against RFC 6962/9162's published vectors (as the Go reference,
transparency-dev/merkle, carries them) and against an independent reading of RFC 9162
(tests/rfc9162.py): every proof verifies, and any altered leaf, order or size fails."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal.ledger import merkle
from tests import rfc9162

LEAF_INPUTS = [
    bytes.fromhex(value)
    for value in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
# Tree heads by size 1..8 (transparency-dev/merkle testonly.RootHashes).
ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (leaf number from 1, tree size, audit path): proof/verify_test.go's inclusionProofs.
INCLUSION = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (3, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        2,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
# (size1, size2, proof): proof/verify_test.go's consistencyProofs.
CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]
LEAVES = [merkle.leaf_hash(data) for data in LEAF_INPUTS]


def _hex(values: list[str]) -> list[bytes]:
    return [bytes.fromhex(value) for value in values]


def test_the_empty_tree_is_the_hash_of_nothing() -> None:
    assert merkle.root([]).hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )


@pytest.mark.parametrize("size", range(1, 9))
def test_tree_heads_match_the_published_vectors(size: int) -> None:
    assert merkle.root(LEAVES, size).hex() == ROOTS[size - 1]
    assert merkle.roots_at(LEAVES, [size])[size].hex() == ROOTS[size - 1]


def test_heads_of_every_size_in_one_pass() -> None:
    heads = merkle.roots_at(LEAVES, range(9))
    assert [heads[size].hex() for size in range(1, 9)] == ROOTS


@pytest.mark.parametrize(("number", "size", "path"), INCLUSION)
def test_inclusion_proofs_match_the_published_vectors(
    number: int, size: int, path: list[str]
) -> None:
    assert merkle.inclusion_proof(LEAVES, number - 1, size) == _hex(path)
    root = bytes.fromhex(ROOTS[size - 1])
    assert merkle.verify_inclusion(LEAVES[number - 1], number - 1, size, _hex(path), root)


@pytest.mark.parametrize(("first", "second", "path"), CONSISTENCY)
def test_consistency_proofs_match_the_published_vectors(
    first: int, second: int, path: list[str]
) -> None:
    assert merkle.consistency_proof(LEAVES, first, second) == _hex(path)
    old, new = bytes.fromhex(ROOTS[first - 1]), bytes.fromhex(ROOTS[second - 1])
    assert merkle.verify_consistency(first, second, old, new, _hex(path))


@pytest.mark.parametrize(("number", "size", "path"), INCLUSION[1:])
def test_a_mangled_inclusion_proof_fails(number: int, size: int, path: list[str]) -> None:
    # The corruptions the Go reference tries (proof/verify_test.go, corruptInclusionProof).
    index, proof, root = number - 1, _hex(path), bytes.fromhex(ROOTS[size - 1])
    leaf = LEAVES[index]
    some = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")
    flipped = [bytes([proof[0][0] ^ 8]) + proof[0][1:], *proof[1:]]
    for args in [
        (leaf, index - 1, size, proof, root),
        (leaf, index + 1, size, proof, root),
        (leaf, index ^ 2, size, proof, root),
        (leaf, index, size * 2, proof, root),
        (leaf, index, size // 2, proof, root),
        (merkle.leaf_hash(b"WrongLeaf"), index, size, proof, root),
        (leaf, index, size, proof, merkle.EMPTY_ROOT),
        (leaf, index, size, proof, some),
        (leaf, index, size, [*proof, root], root),
        (leaf, index, size, [root, *proof], root),
        (leaf, index, size, proof[:-1], root),
        (leaf, index, size, flipped, root),
        (leaf, index, size, [proof[0], some, *proof[1:]], root),
    ]:
        assert not merkle.verify_inclusion(*args), args[1:3]


@pytest.mark.parametrize(("first", "second", "path"), CONSISTENCY[1:])
def test_a_mangled_consistency_proof_fails(first: int, second: int, path: list[str]) -> None:
    proof = _hex(path)
    old, new = bytes.fromhex(ROOTS[first - 1]), bytes.fromhex(ROOTS[second - 1])
    flipped = [bytes([proof[0][0] ^ 16]) + proof[0][1:], *proof[1:]]
    for args in [
        (first - 1, second, old, new, proof),
        (first + 1, second, old, new, proof),
        (first ^ 2, second, old, new, proof),
        (first, second * 2, old, new, proof),
        (first, second // 2, old, new, proof),
        (first, second, new, old, proof),
        (first, second, old, new, []),
        (first, second, old, new, [*proof, old]),
        (first, second, old, new, [*proof, new]),
        (first, second, old, new, [old, *proof]),
        (first, second, old, new, [proof[0], *proof]),
        (first, second, old, new, proof[:-1]),
        (first, second, old, new, flipped),
    ]:
        assert not merkle.verify_consistency(*args), args[:2]


def test_the_independent_reading_agrees_on_the_vectors() -> None:
    # So that the property tests below compare with something known to be right.
    assert [rfc9162.mth(LEAVES[:size]).hex() for size in range(1, 9)] == ROOTS
    for number, size, path in INCLUSION:
        assert rfc9162.path(number - 1, LEAVES[:size]) == _hex(path)
    for first, second, path in CONSISTENCY[1:]:
        assert rfc9162.proof(first, LEAVES[:second]) == _hex(path)


trees = st.lists(st.binary(max_size=8), min_size=1, max_size=70)


@settings(max_examples=150, deadline=None)
@given(trees, st.data())
def test_every_inclusion_proof_verifies_and_agrees(data: list[bytes], draw: st.DataObject) -> None:
    leaves = [merkle.leaf_hash(value) for value in data]
    size = draw.draw(st.integers(1, len(leaves)))
    index = draw.draw(st.integers(0, size - 1))
    head = merkle.root(leaves, size)
    proof = merkle.inclusion_proof(leaves, index, size)
    assert head == rfc9162.mth(leaves[:size])
    assert proof == rfc9162.path(index, leaves[:size])
    assert merkle.verify_inclusion(leaves[index], index, size, proof, head)
    assert rfc9162.included(leaves[index], index, size, proof, head)


@settings(max_examples=150, deadline=None)
@given(trees, st.data())
def test_every_consistency_proof_verifies_and_agrees(
    data: list[bytes], draw: st.DataObject
) -> None:
    leaves = [merkle.leaf_hash(value) for value in data]
    second = draw.draw(st.integers(1, len(leaves)))
    first = draw.draw(st.integers(1, second))
    old, new = merkle.root(leaves, first), merkle.root(leaves, second)
    proof = merkle.consistency_proof(leaves, first, second)
    if first < second:
        assert proof == rfc9162.proof(first, leaves[:second])
    assert merkle.verify_consistency(first, second, old, new, proof)
    assert rfc9162.consistent(first, second, old, new, proof)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=8), min_size=2, max_size=40, unique=True), st.data())
def test_an_altered_leaf_order_or_size_fails(data: list[bytes], draw: st.DataObject) -> None:
    leaves = [merkle.leaf_hash(value) for value in data]
    n = len(leaves)
    index = draw.draw(st.integers(0, n - 1))
    head = merkle.root(leaves)
    proof = merkle.inclusion_proof(leaves, index, n)
    # Another leaf at the place, the leaf at another place, the head of another size (the
    # size itself is bound by the signed checkpoint: a leftmost path can fit two sizes).
    other = draw.draw(st.integers(0, n - 1).filter(lambda i: i != index))
    assert not merkle.verify_inclusion(leaves[other], index, n, proof, head)
    assert not merkle.verify_inclusion(leaves[index], other, n, proof, head)
    assert not merkle.verify_inclusion(leaves[index], index, n, proof, merkle.root(leaves, n - 1))
    # Any edit, removal, swap or insertion among the first leaves changes the head, and no
    # consistency proof from the original prefix verifies to a head built on the change.
    first = draw.draw(st.integers(1, n - 1))
    old = merkle.root(leaves, first)
    spot = draw.draw(st.integers(0, first - 1))
    edited = list(leaves)
    edited[spot] = merkle.leaf_hash(b"changed" + data[spot])
    removed = leaves[:spot] + leaves[spot + 1 :]
    swapped = list(leaves)
    swapped[spot], swapped[other] = swapped[other], swapped[spot]
    inserted = [*leaves[:spot], merkle.leaf_hash(b"inserted"), *leaves[spot:]]
    for changed in (edited, removed, swapped, inserted):
        if changed == leaves:
            continue
        size = len(changed)
        assert merkle.root(changed) != head
        proof = merkle.consistency_proof(changed, first, size)
        assert not merkle.verify_consistency(first, size, old, merkle.root(changed), proof)


def test_a_leaf_is_every_column_as_sorted_json() -> None:
    event = {name: None for name in merkle.LEAF_FIELDS} | {
        "id": 7,
        "patron_id": 3,
        "kind": "given",
        "purposes": ["loans"],
        "occurred_at": datetime(2026, 12, 7, 19, 15, 36, 120, tzinfo=UTC),
        "detail": {"b": 1, "a": "é"},
    }
    data = merkle.leaf_data(event)
    assert data.decode("utf-8") == (
        '{"acting_guardian_id":null,"actor":null,"channel":null,"detail":{"a":"é","b":1},'
        '"id":7,"kind":"given","locale":null,"method":null,"notice_audience":null,'
        '"notice_hash":null,"notice_version_id":null,"occurred_at":"2026-12-07T19:15:36.000120Z",'
        '"patron_id":3,"purposes":["loans"],"service_id":null,"v":1,"witnessed_by":null}'
    )
    for name in merkle.LEAF_FIELDS:
        changed = dict(event, **{name: "x" if event[name] != "x" else "y"})
        assert merkle.leaf_data(changed) != data, name


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 5 * merkle.BLOCK + 7), st.data())
def test_a_proof_from_blocks_is_the_proof_from_every_leaf(size: int, draw: st.DataObject) -> None:
    leaves = [merkle.leaf_hash(n.to_bytes(4, "big")) for n in range(size)]
    index = draw.draw(st.integers(0, size - 1))
    blocks = merkle.block_hashes(leaves)
    assert len(blocks) == size // merkle.BLOCK
    start, tail = index - index % merkle.BLOCK, size - size % merkle.BLOCK
    needed = {
        position: leaves[position]
        for position in [*range(start, min(start + merkle.BLOCK, size)), *range(tail, size)]
    }
    proof = merkle.blocked_inclusion_proof(index, size, blocks, needed)
    assert proof == rfc9162.path(index, leaves)


def _numbered(size: int) -> list[bytes]:
    return [merkle.leaf_hash(n.to_bytes(4, "big")) for n in range(size)]


def _kept(leaves: list[bytes], first: int, second: int) -> dict[int, bytes]:
    """What a checkpoint holds of the leaves: those of the block holding leaf `first` and of
    the last, partial block of `second`; every other leaf only through its block's hash."""
    start, tail = first - first % merkle.BLOCK, second - second % merkle.BLOCK
    wanted = [*range(start, min(start + merkle.BLOCK, second)), *range(tail, second)]
    return {position: leaves[position] for position in wanted}


B = merkle.BLOCK
EDGES = [0, 1, B - 1, B, B + 1, 2 * B - 1, 2 * B, 2 * B + 1, 3 * B + 7, 4 * B, 5 * B + 200]


@pytest.mark.parametrize("size", EDGES)
def test_a_root_from_blocks_is_the_root_from_every_leaf(size: int) -> None:
    leaves = _numbered(size)
    blocks = merkle.block_hashes(leaves)
    tail = leaves[size - size % B :]
    assert merkle.blocked_root(size, blocks, tail) == merkle.root(leaves) == rfc9162.mth(leaves)


def _previous_sizes(size: int) -> set[int]:
    near = {0, 1, size - 1, size, B - 1, B, B + 1, 2 * B - 1, 2 * B, 2 * B + 1}
    return {first for first in near if 0 < first <= size}


@pytest.mark.parametrize("second", [size for size in EDGES if size > 0])
def test_a_consistency_proof_from_blocks_is_the_proof_from_every_leaf(second: int) -> None:
    leaves = _numbered(second)
    blocks = merkle.block_hashes(leaves)
    with pytest.raises(ValueError, match="sizes"):  # from the empty tree: no proof at all
        merkle.blocked_consistency_proof(0, second, blocks, _kept(leaves, 0, second))
    for first in _previous_sizes(second):
        proof = merkle.blocked_consistency_proof(
            first, second, blocks, _kept(leaves, first, second)
        )
        assert proof == merkle.consistency_proof(leaves, first, second)
        if first < second:
            assert proof == rfc9162.proof(first, leaves)
        assert rfc9162.consistent(
            first, second, rfc9162.mth(leaves[:first]), rfc9162.mth(leaves), proof
        )


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 9 * merkle.BLOCK + 7), st.data())
def test_any_consistency_proof_from_blocks_is_the_proof_from_every_leaf(
    second: int, draw: st.DataObject
) -> None:
    leaves = _numbered(second)
    first = draw.draw(st.integers(1, second))
    blocks = merkle.block_hashes(leaves)
    proof = merkle.blocked_consistency_proof(first, second, blocks, _kept(leaves, first, second))
    assert proof == merkle.consistency_proof(leaves, first, second)
    tail = leaves[second - second % B :]
    assert merkle.blocked_root(second, blocks, tail) == rfc9162.mth(leaves)


def test_a_frontier_takes_blocks_and_leaves_in_any_aligned_mix() -> None:
    leaves = _numbered(3 * B + 5)
    frontier = merkle.Frontier()
    for value in merkle.block_hashes(leaves[: 2 * B]):
        frontier.add(value, B)
    for value in leaves[2 * B :]:
        frontier.add(value)
    assert (frontier.size, frontier.head()) == (3 * B + 5, rfc9162.mth(leaves))
    with pytest.raises(ValueError, match="aligned"):
        frontier.add(leaves[0], B)  # 3 * B + 5 is not a multiple of a block


@settings(max_examples=300, deadline=None)
@given(st.datetimes(timezones=st.timezones()))
def test_a_leafs_time_is_utc_to_the_microsecond_whatever_its_zone(moment: datetime) -> None:
    if moment.astimezone(UTC).year < 1000:  # strftime's %Y pads no year before 1000
        return
    event = dict.fromkeys(merkle.LEAF_FIELDS) | {"occurred_at": moment}
    expected = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert f'"occurred_at":"{expected}"' in merkle.leaf_data(event).decode()


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 4 * merkle.BLOCK + 9), st.integers(1, 3 * merkle.BLOCK), st.data())
def test_a_tree_grown_from_its_blocks_is_the_tree_of_every_leaf(
    first: int, added: int, draw: st.DataObject
) -> None:
    leaves = _numbered(first + added)
    start = first - first % B
    grown = merkle.Growing(first, merkle.block_hashes(leaves[:first]), leaves[start:first])
    for value in leaves[first:]:
        grown.add(value)
    assert grown.head() == rfc9162.mth(leaves)
    if first:
        proof = merkle.blocked_consistency_proof(first, grown.size, grown.blocks, grown.leaves())
        assert proof == rfc9162.proof(first, leaves)
