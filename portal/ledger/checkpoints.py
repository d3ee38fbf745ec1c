"""Checkpoints of the consent ledger (RFC 9162's signed tree heads, portal.ledger.merkle): the
tree is computed here, at checkpoint time, from the events in id order; writing an event stays
one insert. A checkpoint is signed by whoever calls (the receipt key: portal.rights), and is
made only when the ledger still holds every event earlier checkpoints took, unchanged."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.connection import connections
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from portal.ledger import merkle
from portal.ledger.models import ConsentEvent, LedgerBlock, LedgerCheckpoint, LedgerLeaf

BATCH = 2000  # events read, or leaves written, per query

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


def _covering(sizes: list[int], position: int) -> int | None:
    """The first checkpoint (by its size) whose tree holds the leaf at `position`."""
    return next((size for size in sizes if position < size), None)


def _compare(
    events: list[tuple[int, bytes, bytes]],
    stored: list[tuple[int, int, bytes]],
    rows: list[LedgerCheckpoint],
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


def _check_blocks(stored: list[tuple[int, int, bytes]], blocks: list[bytes]) -> list[Problem]:
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


async def _blocks() -> list[bytes]:
    values = await LedgerBlock.all().order_by("index").values_list("block_hash", flat=True)
    return [merkle.from_hex(value) or b"" for value in values]


def _check_heads(
    events: list[tuple[int, bytes, bytes]],
    stored: list[tuple[int, int, bytes]],
    rows: list[LedgerCheckpoint],
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


def _signed_root(row: LedgerCheckpoint, verify: Verify) -> bytes | None:
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


@dataclass(frozen=True)
class Verdict:
    events: int
    checkpoints: int
    problems: tuple[Problem, ...]


async def verify(check: Verify) -> Verdict:
    """Recompute the tree from the ledger as it is now and check every checkpoint: its root,
    its signature (`check`), its consistency with the one before; each problem named."""
    rows = await LedgerCheckpoint.all().order_by("tree_size")
    events, stored = await _events(), await _stored()
    problems = _compare(events, stored, rows, check) + _check_blocks(stored, await _blocks())
    return Verdict(len(events), len(rows), tuple(problems))


async def make_checkpoint(sign: Sign, check: Verify, *, now: datetime) -> Made:
    """Sign the tree of every event up to now, with its consistency proof from the latest
    checkpoint; refused (with the problems) when the ledger no longer matches the earlier
    checkpoints, since signing it would vouch for a rewritten history. Nothing new since the
    latest checkpoint makes none."""
    horizon = await _horizon()
    rows = await LedgerCheckpoint.all().order_by("tree_size")
    events = await _events(horizon)
    stored = await _stored()
    problems = _compare(events, stored, rows, check) + _check_blocks(stored, await _blocks())
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
