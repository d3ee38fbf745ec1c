"""What `portal verify-ledger` and each checkpoint look for, pure: the events as they are now
against the leaves the checkpoints took, and each checkpoint against the events, its
signature and the one before it (RFC 9162 §2.1.4). Each problem names its event or
checkpoint (by its tree size)."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from portal.ledger import merkle

Sign = Callable[[dict[str, Any]], str]
# The claims a checkpoint's signature carries when it verifies with the library's keys.
Verify = Callable[[str], dict[str, Any] | None]


@dataclass(frozen=True)
class Checkpoint:
    tree_size: int
    root_hash: str
    made_at: datetime
    signature: str
    previous_size: int | None
    consistency: tuple[str, ...]
    last_event_id: int


@dataclass(frozen=True)
class Problem:
    """One thing `verify` found: what, and which event or checkpoint (by its tree size)."""

    what: str  # changed, removed, inserted, size, root, signature, consistency, leaves
    message: str
    event_id: int | None = None
    checkpoint: int | None = None


Event = tuple[int, bytes, bytes]  # (id, leaf data, leaf hash), in id order
Leaf = tuple[int, int, bytes]  # (position, event id, leaf hash) as a checkpoint took it


def _covering(sizes: list[int], position: int) -> int | None:
    """The first checkpoint (by its size, `sizes` ascending) whose tree holds the leaf at
    `position`."""
    found = bisect_right(sizes, position)
    return sizes[found] if found < len(sizes) else None


def compare(
    events: list[Event],
    stored: list[Leaf],
    rows: list[Checkpoint],
    verify: Verify,
) -> list[Problem]:
    """Every event the checkpoints took against the leaf they took, and every checkpoint
    against the events, its signature and the one before it."""
    problems: list[Problem] = []
    sizes = [row.tree_size for row in rows]
    if [position for position, _, _ in stored] != list(range(len(stored))) or (
        rows and len(stored) != rows[-1].tree_size
    ):
        problems.append(
            Problem(
                "leaves",
                f"the checkpoints' leaf table holds {len(stored)} leaves, not the "
                f"{rows[-1].tree_size if rows else 0} of the latest checkpoint",
            )
        )
    current = {event_id: value for event_id, _, value in events}
    taken: set[int] = set()
    for position, event_id, value in stored:
        taken.add(event_id)
        where = _covering(sizes, position)
        if event_id not in current:
            problems.append(
                Problem(
                    "removed",
                    f"event {event_id} (leaf {position}, checkpoint {where}) was removed",
                    event_id,
                    where,
                )
            )
        elif current[event_id] != value:
            problems.append(
                Problem(
                    "changed",
                    f"event {event_id} (leaf {position}, checkpoint {where}) was changed",
                    event_id,
                    where,
                )
            )
    last_taken = max((row.last_event_id for row in rows), default=0)
    for event_id, _, _ in events:
        if event_id <= last_taken and event_id not in taken:
            where = next((row.tree_size for row in rows if event_id <= row.last_event_id), None)
            problems.append(
                Problem(
                    "inserted",
                    f"event {event_id} was inserted among the events of checkpoint {where}",
                    event_id,
                    where,
                )
            )
    problems.extend(_check_heads(events, stored, rows, verify))
    return problems


def check_blocks(stored: list[Leaf], blocks: list[bytes]) -> list[Problem]:
    """The whole blocks' hashes, which receipts' proofs are made from, against the leaves."""
    expected = merkle.block_hashes([value for _, _, value in stored])
    if blocks == expected:
        return []
    return [
        Problem(
            "leaves",
            f"block {index} of the leaf table (leaves {index * merkle.BLOCK} onwards) does not "
            "match its leaves: inclusion proofs made from it would not verify",
        )
        for index in range(max(len(blocks), len(expected)))
        if index >= len(blocks) or index >= len(expected) or blocks[index] != expected[index]
    ]


def _check_heads(
    events: list[Event],
    stored: list[Leaf],
    rows: list[Checkpoint],
    verify: Verify,
) -> list[Problem]:
    problems: list[Problem] = []
    ids = [event_id for event_id, _, _ in events]  # in id order
    now_sizes = {row.tree_size: bisect_right(ids, row.last_event_id) for row in rows}
    by_events = merkle.roots_at((value for _, _, value in events), now_sizes.values())
    by_leaves = merkle.roots_at((value for _, _, value in stored), [row.tree_size for row in rows])
    previous: tuple[int, bytes] | None = None
    for row in rows:
        size = row.tree_size
        signed = _signed_root(row, verify)
        if signed is None:
            problems.append(
                Problem(
                    "signature",
                    f"checkpoint {size}: its signature does not verify with the library's "
                    "keys, or does not sign its size and root",
                    checkpoint=size,
                )
            )
            signed = merkle.from_hex(row.root_hash) or b""
        if now_sizes[size] != size:
            problems.append(
                Problem(
                    "size",
                    f"checkpoint {size}: the ledger now holds {now_sizes[size]} events up to "
                    f"event {row.last_event_id}, not {size}",
                    checkpoint=size,
                )
            )
        elif by_events.get(size) != signed:
            problems.append(
                Problem(
                    "root",
                    f"checkpoint {size}: the ledger's events up to event {row.last_event_id} "
                    "no longer give its signed root",
                    checkpoint=size,
                )
            )
        if by_leaves.get(size) != signed:
            problems.append(
                Problem(
                    "leaves",
                    f"checkpoint {size}: the leaf table no longer gives its signed root",
                    checkpoint=size,
                )
            )
        if previous is not None:
            proof = [merkle.from_hex(value) or b"" for value in row.consistency]
            if row.previous_size != previous[0] or not merkle.verify_consistency(
                previous[0], size, previous[1], signed, proof
            ):
                problems.append(
                    Problem(
                        "consistency",
                        f"checkpoint {size}: its consistency proof from checkpoint "
                        f"{previous[0]} does not verify",
                        checkpoint=size,
                    )
                )
        previous = (size, signed)
    return problems


def _signed_root(row: Checkpoint, verify: Verify) -> bytes | None:
    """The root the checkpoint's signature vouches for, when it matches its row."""
    claims = verify(row.signature)
    if (
        claims is None
        or claims.get("log") != merkle.CHECKPOINT_LOG
        or claims.get("tree_size") != row.tree_size
        or claims.get("root_hash") != row.root_hash
    ):
        return None
    return merkle.from_hex(row.root_hash)
