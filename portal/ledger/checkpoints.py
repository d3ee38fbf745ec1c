"""Checkpoints of the consent ledger (RFC 9162's signed tree heads, portal.ledger.merkle): the
tree is computed here, at checkpoint time, from the events in id order; writing an event stays
one insert. A checkpoint is signed by whoever calls (the receipt key: portal.rights), and is
made only when the ledger still holds every event earlier checkpoints took, unchanged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.connection import connections
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from portal.ledger import merkle
from portal.ledger.findings import (
    Checkpoint,
    Problem,
    Sign,
    Verify,
    check_blocks,
    compare,
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

BATCH = 2000  # events read, or leaves written, per query


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


async def _events(upto: int | None = None) -> list[tuple[int, bytes, bytes]]:
    """(id, leaf data, leaf hash) of every event in id order, up to `upto`, read in batches."""
    found: list[tuple[int, bytes, bytes]] = []
    after: int | None = None
    while True:
        query = ConsentEvent.all().order_by("id").limit(BATCH)
        if after is not None:
            query = query.filter(id__gt=after)
        if upto is not None:
            query = query.filter(id__lte=upto)
        batch = await query.values(*merkle.LEAF_FIELDS)
        for event in batch:
            data = merkle.leaf_data(event)
            found.append((int(event["id"]), data, merkle.leaf_hash(data)))
        if len(batch) < BATCH:
            return found
        after = found[-1][0]


async def _stored() -> list[tuple[int, int, bytes]]:
    """(position, event id, leaf hash) of the leaves the checkpoints took, in batches."""
    found: list[tuple[int, int, bytes]] = []
    while True:
        batch = await (
            LedgerLeaf.filter(position__gte=len(found))
            .order_by("position")
            .limit(BATCH)
            .values_list("position", "event_id", "leaf_hash")
        )
        for position, event_id, value in batch:
            found.append((int(position), int(event_id), merkle.from_hex(value) or b""))
        if len(batch) < BATCH:
            return found


async def _blocks() -> list[bytes]:
    values = await LedgerBlock.all().order_by("index").values_list("block_hash", flat=True)
    return [merkle.from_hex(value) or b"" for value in values]


@dataclass(frozen=True)
class Verdict:
    events: int
    checkpoints: int
    problems: tuple[Problem, ...]


async def verify(check: Verify) -> Verdict:
    """Recompute the tree from the ledger as it is now and check every checkpoint: its root,
    its signature (`check`), its consistency with the one before; each problem named."""
    rows = await checkpoints()
    events, stored = await _events(), await _stored()
    problems = compare(events, stored, rows, check) + check_blocks(stored, await _blocks())
    return Verdict(len(events), len(rows), tuple(problems))


async def make_checkpoint(sign: Sign, check: Verify, *, now: datetime) -> Made:
    """Sign the tree of every event up to now, with its consistency proof from the latest
    checkpoint; refused (with the problems) when the ledger no longer matches the earlier
    checkpoints, since signing it would vouch for a rewritten history. Nothing new since the
    latest checkpoint makes none."""
    horizon = await _horizon()
    rows = await checkpoints()
    events = await _events(horizon)
    stored = await _stored()
    problems = compare(events, stored, rows, check) + check_blocks(stored, await _blocks())
    if problems:
        return Made(None, tuple(problems))
    previous = rows[-1] if rows else None
    fresh = [event for event in events if previous is None or event[0] > previous.last_event_id]
    if not fresh:
        return Made(None)
    leaves = [value for _, _, value in stored] + [value for _, _, value in fresh]
    size = len(leaves)
    head = merkle.root(leaves)
    proof: list[bytes] = []
    if previous is not None:
        proof = merkle.consistency_proof(leaves, previous.tree_size, size)
        old = merkle.from_hex(previous.root_hash) or b""
        if not merkle.verify_consistency(previous.tree_size, size, old, head, proof):
            raise AssertionError("a consistency proof that does not verify")  # a bug, never data
    signature = sign(merkle.checkpoint_claims(size, head, now))
    try:
        async with in_transaction():
            start = len(stored)
            for offset in range(0, len(fresh), BATCH):
                await LedgerLeaf.bulk_create(
                    [
                        LedgerLeaf(position=position, event_id=event_id, leaf_hash=h.hex())
                        for position, (event_id, _, h) in enumerate(
                            fresh[offset : offset + BATCH], start=start + offset
                        )
                    ]
                )
            kept = await LedgerBlock.all().count()
            await LedgerBlock.bulk_create(
                [
                    LedgerBlock(index=index, block_hash=value.hex())
                    for index, value in enumerate(merkle.block_hashes(leaves))
                    if index >= kept
                ],
                batch_size=BATCH,
            )
            row = await LedgerCheckpoint.create(
                tree_size=size,
                last_event_id=fresh[-1][0],
                root_hash=head.hex(),
                made_at=now,
                signature=signature,
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
