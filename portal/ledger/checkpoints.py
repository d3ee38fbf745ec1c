"""Checkpoints of the consent ledger (RFC 9162's signed tree heads, portal.ledger.merkle): the
tree is computed here, at checkpoint time, from the events in id order; writing an event stays
one insert. A checkpoint is signed by whoever calls (the receipt key: portal.rights); a
night's run reads and hashes only the events since the latest checkpoint, and signs only when
the ledger still holds what that checkpoint signed (`_held`). `verify` checks every event."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from tortoise.connection import connections
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from portal.ledger import merkle, reads
from portal.ledger.findings import (
    Audit,
    Checkpoint,
    Findings,
    Problem,
    Sign,
    Verify,
    changed,
    covering,
    removed,
    signed_root,
)
from portal.ledger.models import ConsentEvent, LedgerBlock, LedgerCheckpoint, LedgerLeaf

__all__ = [
    "Checkpoint",
    "Inclusion",
    "Made",
    "Problem",
    "Sign",
    "Verdict",
    "Verify",
    "checkpoint",
    "checkpoints",
    "inclusion",
    "latest",
    "make_checkpoint",
    "verify",
]


@dataclass(frozen=True)
class Made:
    checkpoint: Checkpoint | None  # None: nothing new since the last one, or refused
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True)
class Inclusion:
    """An event's inclusion proof against a checkpoint: what a patron's receipt carries."""

    event_id: int
    leaf: str  # merkle.leaf_data, as text
    index: int
    path: tuple[str, ...]
    checkpoint: Checkpoint

    def bundle(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "leaf": self.leaf,
            "leaf_index": self.index,
            "tree_size": self.checkpoint.tree_size,
            "audit_path": list(self.path),
            "checkpoint": self.checkpoint.signature,
        }


def _checkpoint(row: LedgerCheckpoint) -> Checkpoint:
    return Checkpoint(
        tree_size=row.tree_size,
        root_hash=row.root_hash,
        made_at=row.made_at,
        signature=row.signature,
        previous_size=row.previous_size,
        consistency=tuple(row.consistency),
        last_event_id=row.last_event_id,
    )


async def checkpoints() -> list[Checkpoint]:
    return [_checkpoint(row) for row in await LedgerCheckpoint.all().order_by("tree_size")]


async def checkpoint(size: int) -> Checkpoint | None:
    row = await LedgerCheckpoint.get_or_none(tree_size=size)
    return _checkpoint(row) if row else None


async def latest() -> Checkpoint | None:
    row = await LedgerCheckpoint.all().order_by("-tree_size").first()
    return _checkpoint(row) if row else None


# --- reading the tree ----------------------------------------------------------------------


async def _horizon() -> int:
    """The newest event a checkpoint may take. On PostgreSQL an event's id is drawn when it is
    inserted, not when it commits: a SHARE lock waits for the transactions writing the ledger
    now, so no event below the horizon can appear after the checkpoint (a withdrawal waits at
    most that long, once a run). SQLite writes one transaction at a time."""
    async with in_transaction() as connection:
        if connections.get("default").capabilities.dialect == "postgres":
            await connection.execute_script("LOCK TABLE consent_event IN SHARE MODE")
        rows = await connection.execute_query_dict("SELECT max(id) AS top FROM consent_event")
    top = rows[0]["top"]
    return int(top) if top is not None else 0


T = TypeVar("T")


class _Cursor(Generic[T]):
    """One item at a time, with a look ahead, from batches read as they are needed."""

    def __init__(self, batches: AsyncIterator[list[T]]) -> None:
        self._batches = batches
        self._items: list[T] = []
        self._at = 0
        self._done = False

    async def peek(self) -> T | None:
        while self._at >= len(self._items):
            if self._done:
                return None
            try:
                self._items, self._at = await anext(self._batches), 0
            except StopAsyncIteration:
                self._done = True
        return self._items[self._at]

    async def next(self) -> T | None:
        item = await self.peek()
        if item is not None:
            self._at += 1
        return item


@dataclass(frozen=True)
class Verdict:
    events: int
    checkpoints: int
    problems: tuple[Problem, ...]  # the first findings.LIMIT
    more: int = 0  # problems found beyond those


async def verify(check: Verify) -> Verdict:
    """Recompute the tree from the ledger as it is now and check every checkpoint: its root,
    its signature (`check`), its consistency with the one before; each problem named. The
    events and the stored leaves are read side by side in batches, so the memory it needs
    does not grow with the ledger (findings.Audit). Leaves and blocks past the latest
    checkpoint read at the start are a checkpoint made meanwhile, and left to the next run
    (which refuses to sign when the leaf table does not end where the latest checkpoint does)."""
    rows = await checkpoints()
    size = rows[-1].tree_size if rows else 0
    found = Findings()
    audit = Audit(rows, found)
    events = _Cursor(reads.event_batches())
    blocks = _Cursor(reads.block_batches())
    index = 0
    async for batch in reads.leaf_batches(0, size):
        for position, event_id, value in batch:
            while (ahead := await events.peek()) is not None and ahead[0] < event_id:
                await events.next()
                audit.event(ahead[0], ahead[1], None)
            if ahead is not None and ahead[0] == event_id:
                await events.next()
                audit.event(event_id, ahead[1], (position, value))
            else:
                audit.missing(position, event_id)
            made = audit.leaf(position, event_id, value)
            if made is not None:
                if await blocks.next() != (index, made):
                    audit.block_differs(index)
                index += 1
    while (ahead := await events.next()) is not None:
        audit.event(ahead[0], ahead[1], None)
    while (extra := await blocks.next()) is not None and extra[0] < size // merkle.BLOCK:
        audit.block_differs(extra[0])
    audit.finish(check)
    return Verdict(audit.events.size, len(rows), tuple(found.named), found.more)


# --- what a checkpoint checks, and how the tree grows --------------------------------------

# Events re-hashed at each checkpoint: whole blocks drawn at random, SAMPLE // BLOCK of them
# (2,048 events), and the leaves after the last whole block; every event while the ledger is
# no larger than SAMPLE. Each event is compared with its stored leaf, and each block's events
# with the block's stored hash, which the latest root vouches for: an event edited together
# with its leaf is found too. An edit of k of n old events escapes one night's draw with
# probability about (1 - k/n)^2048; verify-ledger compares every event.
SAMPLE = 2048  # eight whole blocks


async def _held(
    previous: Checkpoint | None, check: Verify
) -> tuple[list[Problem], list[bytes], list[bytes]]:
    """Whether the ledger still holds what the latest checkpoint signed, read in time that
    does not grow with the ledger (but for the index-only count of events): the stored whole
    blocks and the leaves after them give its signed root; the events up to its last one are
    as many as its tree; the events of random whole blocks and of the tail still hash to
    their stored leaves and blocks (`_sampled`). The problems, and the blocks' hashes and the
    tail's leaves the tree grows from."""
    size = previous.tree_size if previous else 0
    start = size - size % merkle.BLOCK
    blocks: list[bytes] = []
    async for batch in reads.block_batches():
        blocks += [value for _, value in batch]
    tail: list[reads.Leaf] = []
    async for leaves in reads.leaf_batches(start):
        tail += leaves
    problems: list[Problem] = []
    if len(blocks) != size // merkle.BLOCK or [leaf[0] for leaf in tail] != list(
        range(start, size)
    ):
        problems.append(
            Problem(
                "leaves",
                f"the checkpoints' leaf table holds {len(blocks)} whole blocks and leaves "
                f"{tail[0][0] if tail else start} to {tail[-1][0] if tail else start - 1} after "
                f"them, not the {size} leaves of the latest checkpoint",
            )
        )
    if previous is None:
        return problems, blocks, [value for _, _, value in tail]
    signed = signed_root(previous, check)
    if signed is None:
        problems.append(
            Problem(
                "signature",
                f"checkpoint {size}: its signature does not verify with the library's keys, or "
                "does not sign its size and root",
                checkpoint=size,
            )
        )
    elif (
        not problems
        and merkle.blocked_root(size, blocks, [value for _, _, value in tail]) != signed
    ):
        problems.append(
            Problem(
                "leaves",
                f"checkpoint {size}: the leaf table's blocks and leaves no longer give its "
                "signed root",
                checkpoint=size,
            )
        )
    now_size = await reads.count_events(previous.last_event_id)
    if now_size != size:
        problems.append(
            Problem(
                "size",
                f"checkpoint {size}: the ledger now holds {now_size} events up to event "
                f"{previous.last_event_id}, not {size}",
                checkpoint=size,
            )
        )
    problems += await _sampled(size, blocks, tail)
    return problems, blocks, [value for _, _, value in tail]


async def _sampled(size: int, blocks: list[bytes], tail: list[reads.Leaf]) -> list[Problem]:
    """Whole blocks drawn at random (by a source the database's users cannot predict) and the
    tail: their events re-hashed against the stored leaves and the blocks' hashes."""
    whole = size // merkle.BLOCK
    if size <= SAMPLE:
        chosen = list(range(whole))
    else:
        chosen = sorted(secrets.SystemRandom().sample(range(whole), SAMPLE // merkle.BLOCK))
    sizes = [row.tree_size for row in await checkpoints()]
    problems: list[Problem] = []
    for index in [*chosen, None]:
        if index is None:
            leaves = tail
        else:
            start = index * merkle.BLOCK
            leaves = await reads.leaves_between(start, start + merkle.BLOCK)
        events = await reads.events_by_id([event_id for _, event_id, _ in leaves])
        for position, event_id, value in leaves:
            if event_id not in events:
                problems.append(removed(event_id, position, covering(sizes, position)))
            elif events[event_id] != value:
                problems.append(changed(event_id, position, covering(sizes, position)))
        if index is not None and (
            len(leaves) != merkle.BLOCK
            or index >= len(blocks)
            or merkle.root([events.get(event_id, b"") for _, event_id, _ in leaves])
            != blocks[index]
        ):
            problems.append(
                Problem(
                    "leaves",
                    f"block {index} of the leaf table (leaves {index * merkle.BLOCK} onwards) "
                    "does not match its events",
                )
            )
    return problems


async def make_checkpoint(sign: Sign, check: Verify, *, now: datetime) -> Made:
    """Sign the tree of every event up to now, with its consistency proof from the latest
    checkpoint; refused (with the problems) when the ledger no longer holds what the latest
    checkpoint signed (`_held`), since signing it would vouch for a rewritten history.
    Only the events since the latest checkpoint are read and hashed, so a night's run costs
    what the night added. Nothing new since the latest checkpoint makes none."""
    horizon = await _horizon()
    previous = await latest()
    problems, blocks, tail = await _held(previous, check)
    if problems:
        return Made(None, tuple(problems))
    size = previous.tree_size if previous else 0
    grown = merkle.Growing(size, blocks, tail)
    try:
        async with in_transaction():
            last = previous.last_event_id if previous else None
            async for batch in reads.event_batches(last, horizon):
                await reads.write_leaves(grown.size, batch)
                for _, value in batch:
                    grown.add(value)
                last = batch[-1][0]
            if grown.size == size or last is None:
                return Made(None)
            head = grown.head()
            proof: list[bytes] = []
            if previous is not None:
                proof = merkle.blocked_consistency_proof(
                    size, grown.size, grown.blocks, grown.leaves()
                )
                old = merkle.from_hex(previous.root_hash) or b""
                if not merkle.verify_consistency(size, grown.size, old, head, proof):
                    raise AssertionError("a consistency proof that does not verify")  # a bug
            kept = size // merkle.BLOCK
            await reads.write_blocks(kept, grown.blocks[kept:])
            row = await LedgerCheckpoint.create(
                tree_size=grown.size,
                last_event_id=last,
                root_hash=head.hex(),
                made_at=now,
                signature=sign(merkle.checkpoint_claims(grown.size, head, now)),
                previous_size=previous.tree_size if previous else None,
                consistency=[value.hex() for value in proof],
            )
    except IntegrityError:
        # Another run took these leaves meanwhile: its checkpoint stands, this one is moot.
        return Made(None)
    return Made(_checkpoint(row))


async def inclusion(event_id: int) -> Inclusion | None:
    """The event's inclusion proof against the newest checkpoint; None when no checkpoint
    holds it yet (or it is not in the ledger)."""
    head = await latest()
    leaf = await LedgerLeaf.get_or_none(event_id=event_id)
    if head is None or leaf is None or leaf.position >= head.tree_size:
        return None
    event = await ConsentEvent.filter(id=event_id).values(*merkle.LEAF_FIELDS)
    if not event:
        return None
    size, block = head.tree_size, merkle.BLOCK
    blocks = [
        merkle.from_hex(value) or b""
        for value in await LedgerBlock.filter(index__lt=size // block)
        .order_by("index")
        .values_list("block_hash", flat=True)
    ]
    start, tail = leaf.position - leaf.position % block, size - size % block
    rows = await LedgerLeaf.filter(
        Q(position__gte=start, position__lt=min(start + block, size))
        | Q(position__gte=tail, position__lt=size)
    ).values_list("position", "leaf_hash")
    leaves = {int(position): merkle.from_hex(value) or b"" for position, value in rows}
    try:
        path = merkle.blocked_inclusion_proof(leaf.position, size, blocks, leaves)
    except (ValueError, KeyError):  # the tables lost a block or a leaf: verify-ledger names it
        return None
    return Inclusion(
        event_id=event_id,
        leaf=merkle.leaf_data(event[0]).decode("utf-8"),
        index=leaf.position,
        path=tuple(value.hex() for value in path),
        checkpoint=head,
    )
