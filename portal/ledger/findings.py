"""What `portal verify-ledger` and each checkpoint look for, pure: the events as they are now
against the leaves the checkpoints took, and each checkpoint against the events, its
signature and the one before it (RFC 9162 §2.1.4). Each problem names its event or
checkpoint (by its tree size); the first LIMIT are named, the rest counted."""

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


# At most this many problems are named; the rest are counted (a rewritten ledger of a
# hundred million events would otherwise name a hundred million).
LIMIT = 1000


class Findings:
    """The problems found so far: the first LIMIT named, the rest counted."""

    def __init__(self, limit: int | None = None) -> None:
        self.limit = LIMIT if limit is None else limit
        self.named: list[Problem] = []
        self.more = 0

    def add(self, problem: Problem) -> None:
        if len(self.named) < self.limit:
            self.named.append(problem)
        else:
            self.more += 1


def covering(sizes: list[int], position: int) -> int | None:
    """The first checkpoint (by its size, `sizes` ascending) whose tree holds the leaf at
    `position`."""
    found = bisect_right(sizes, position)
    return sizes[found] if found < len(sizes) else None


def changed(event_id: int, position: int, where: int | None) -> Problem:
    return Problem(
        "changed",
        f"event {event_id} (leaf {position}, checkpoint {where}) was changed",
        event_id,
        where,
    )


def removed(event_id: int, position: int, where: int | None) -> Problem:
    return Problem(
        "removed",
        f"event {event_id} (leaf {position}, checkpoint {where}) was removed",
        event_id,
        where,
    )


class Audit:
    """`portal verify-ledger`'s walk, pure: the events (in id order) and the stored leaves (in
    position order) are handed in side by side as they are read in batches. It keeps O(log n)
    hashes a tree, the checkpoints and one block's leaves, whatever the ledger's size: each
    event is compared with the leaf a checkpoint took of it, and the tree heads at every
    checkpoint are computed from the events and from the leaves as they pass."""

    def __init__(self, rows: list[Checkpoint], findings: Findings) -> None:
        self.rows = rows
        self.found = findings
        self.sizes = [row.tree_size for row in rows]
        self.last_taken = max((row.last_event_id for row in rows), default=0)
        self.by_id = sorted(rows, key=lambda row: row.last_event_id)
        self.events = merkle.Frontier()
        self.leaves = merkle.Frontier()
        self.now_sizes: dict[int, int] = {}  # tree size -> events now up to its last event
        self.by_events: dict[int, bytes] = {}
        self.by_leaves: dict[int, bytes] = {}
        self.block: list[bytes] = []
        self.out_of_place = 0
        self._next_position = 0
        self._last_leaf_event = 0
        self._threshold = 0  # into by_id: the first checkpoint whose events are still passing
        self._wanted = 0  # into rows: the first checkpoint whose leaves are still passing

    def _pass_checkpoints(self, event_id: int | None) -> None:
        """Record the events' head at every checkpoint whose last event comes before
        `event_id` (None: at every checkpoint left)."""
        while self._threshold < len(self.by_id) and (
            event_id is None or event_id > self.by_id[self._threshold].last_event_id
        ):
            row = self.by_id[self._threshold]
            self.now_sizes[row.tree_size] = self.events.size
            self.by_events[row.tree_size] = self.events.head()
            self._threshold += 1

    def event(self, event_id: int, value: bytes, leaf: tuple[int, bytes] | None) -> None:
        """One event as it is now, with the leaf (position, hash) stored for it, if any."""
        self._pass_checkpoints(event_id)
        self.events.add(value)
        if leaf is not None:
            position, stored = leaf
            if stored != value:
                self.found.add(changed(event_id, position, covering(self.sizes, position)))
        elif event_id <= self.last_taken:
            where = self.by_id[self._threshold].tree_size
            self.found.add(
                Problem(
                    "inserted",
                    f"event {event_id} was inserted among the events of checkpoint {where}",
                    event_id,
                    where,
                )
            )

    def leaf(self, position: int, event_id: int, value: bytes) -> bytes | None:
        """One stored leaf, in position order; the hash of the block it completes, if any."""
        if position != self._next_position or event_id <= self._last_leaf_event:
            self.out_of_place += 1
        self._next_position = position + 1
        self._last_leaf_event = max(self._last_leaf_event, event_id)
        self.leaves.add(value)
        while self._wanted < len(self.rows) and self.sizes[self._wanted] <= self.leaves.size:
            if self.sizes[self._wanted] == self.leaves.size:
                self.by_leaves[self.leaves.size] = self.leaves.head()
            self._wanted += 1
        self.block.append(value)
        if len(self.block) < merkle.BLOCK:
            return None
        made = merkle.root(self.block)
        self.block = []
        return made

    def missing(self, position: int, event_id: int) -> None:
        """The stored leaf's event is no longer in the ledger."""
        self.found.add(removed(event_id, position, covering(self.sizes, position)))

    def block_differs(self, index: int) -> None:
        self.found.add(
            Problem(
                "leaves",
                f"block {index} of the leaf table (leaves {index * merkle.BLOCK} onwards) does "
                "not match its leaves: inclusion proofs made from it would not verify",
            )
        )

    def finish(self, verify: Verify) -> None:
        self._pass_checkpoints(None)
        expected = self.sizes[-1] if self.sizes else 0
        if self.out_of_place or self.leaves.size != expected:
            self.found.add(
                Problem(
                    "leaves",
                    f"the checkpoints' leaf table holds {self.leaves.size} leaves"
                    + (f" ({self.out_of_place} out of place)" if self.out_of_place else "")
                    + f", not the {expected} of the latest checkpoint",
                )
            )
        for problem in check_heads(
            self.rows, self.now_sizes, self.by_events, self.by_leaves, verify
        ):
            self.found.add(problem)


def check_heads(
    rows: list[Checkpoint],
    now_sizes: dict[int, int],
    by_events: dict[int, bytes],
    by_leaves: dict[int, bytes],
    verify: Verify,
) -> list[Problem]:
    """Every checkpoint against the events now up to its last one (`now_sizes`, their head
    `by_events`), the leaves it took (`by_leaves`), its signature and the one before it."""
    problems: list[Problem] = []
    previous: tuple[int, bytes] | None = None
    for row in rows:
        size = row.tree_size
        signed = signed_root(row, verify)
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
        if now_sizes.get(size) != size:
            problems.append(
                Problem(
                    "size",
                    f"checkpoint {size}: the ledger now holds {now_sizes.get(size)} events up "
                    f"to event {row.last_event_id}, not {size}",
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


def signed_root(row: Checkpoint, verify: Verify) -> bytes | None:
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
