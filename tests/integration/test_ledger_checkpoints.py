"""The ledger's signed checkpoints on a real database: each extends the one before, and a
superuser's edit, deletion, swap or insertion (append-only triggers disabled, as a superuser
can) is found and named, by event and checkpoint; no checkpoint is signed over it."""

# ruff: noqa: S608 - the SQL a superuser would run, built from the tests' own integer ids

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from joserfc.jwk import ECKey, KeySet
from tortoise.connection import connections
from tortoise.transactions import in_transaction

from portal.catalog.models import Service
from portal.ledger import checkpoints, findings, merkle, reads
from portal.ledger.models import (
    ConsentEvent,
    EventKind,
    LedgerBlock,
    LedgerCheckpoint,
    LedgerLeaf,
)
from portal.ledger.services import PATRON_ONLINE, record
from portal.rights.keys import ReceiptKeys, new_key
from portal.rights.proofs import checker, signer
from tests import rfc9162
from tests.factories import make_patron, now, publish, standard_catalog
from tests.ledger import as_superuser

pytestmark = pytest.mark.usefixtures("db")

COLUMNS = ", ".join(merkle.LEAF_FIELDS[1:])  # every column but the id


def _keys() -> ReceiptKeys:
    jwk = new_key()
    public = {name: value for name, value in jwk.items() if name != "d"}
    return ReceiptKeys(ECKey.import_key(jwk), KeySet([ECKey.import_key(public)]))


KEYS = _keys()


async def _events(count: int) -> list[int]:
    """`count` ledger events, by the one writer; their ids."""
    patron = await make_patron()
    service = await Service.get(key="newsletter")
    for turn in range(count):
        kind = EventKind.GIVEN if turn % 2 == 0 else EventKind.WITHDRAWN
        await record(patron.id, kind, PATRON_ONLINE, now=now(), service_id=service.id)
    rows = await ConsentEvent.all().order_by("id").values_list("id", flat=True)
    return [int(value) for value in rows]


async def _checkpoint() -> checkpoints.Made:
    return await checkpoints.make_checkpoint(signer(KEYS), checker(KEYS.public), now=now())


@pytest.fixture
async def signed() -> tuple[list[int], list[int]]:
    """Seven events in a first checkpoint, five more in a second: (first ids, second ids)."""
    await publish(standard_catalog())
    first = await _events(7)
    assert (await _checkpoint()).checkpoint is not None
    second = [event for event in await _events(5) if event not in first]
    assert (await _checkpoint()).checkpoint is not None
    return first, second


async def test_each_checkpoint_extends_the_one_before(signed: tuple[list[int], list[int]]) -> None:
    first, second = signed
    rows = await checkpoints.checkpoints()
    assert [row.tree_size for row in rows] == [7, 12]
    assert [row.last_event_id for row in rows] == [first[-1], second[-1]]
    # Checked from the RFC alone: the heads over the events' leaves, and the proof.
    events = await ConsentEvent.all().order_by("id").values(*merkle.LEAF_FIELDS)
    leaves = [rfc9162.leaf(merkle.leaf_data(event)) for event in events]
    old, new = (bytes.fromhex(row.root_hash) for row in rows)
    assert (rfc9162.mth(leaves[:7]), rfc9162.mth(leaves)) == (old, new)
    proof = [bytes.fromhex(value) for value in rows[1].consistency]
    assert rfc9162.consistent(7, 12, old, new, proof)
    assert checker(KEYS.public)(rows[1].signature) == merkle.checkpoint_claims(
        12, new, rows[1].made_at
    )
    verdict = await checkpoints.verify(checker(KEYS.public))
    assert (verdict.events, verdict.checkpoints, verdict.problems) == (12, 2, ())


async def test_nothing_new_signs_nothing(signed: Any) -> None:
    made = await _checkpoint()
    assert (made.checkpoint, made.problems) == (None, ())
    assert await LedgerCheckpoint.all().count() == 2


async def test_an_inclusion_proof_verifies_from_the_rfc_alone(
    signed: tuple[list[int], list[int]],
) -> None:
    first, second = signed
    for event_id in (first[0], first[3], second[-1]):
        proof = await checkpoints.inclusion(event_id)
        assert proof is not None
        assert proof.checkpoint.tree_size == 12
        assert rfc9162.included(
            rfc9162.leaf(proof.leaf.encode()),
            proof.index,
            12,
            [bytes.fromhex(value) for value in proof.path],
            bytes.fromhex(proof.checkpoint.root_hash),
        )


async def test_an_event_no_checkpoint_holds_has_no_proof_yet(signed: Any) -> None:
    later = await _events(1)
    assert await checkpoints.inclusion(later[-1]) is None


def _named(problems: tuple[checkpoints.Problem, ...]) -> set[tuple[str, int | None, int | None]]:
    return {(problem.what, problem.event_id, problem.checkpoint) for problem in problems}


async def _found() -> set[tuple[str, int | None, int | None]]:
    """What verify-ledger names; the checkpoint job refuses to sign over the change. It checks
    less than verify-ledger (the latest checkpoint's root from the stored blocks, the count of
    its events, a sample of events: every event in a ledger this small), so what it names is
    some of what verify-ledger names, never something else."""
    verdict = await checkpoints.verify(checker(KEYS.public))
    refused = await _checkpoint()
    assert refused.checkpoint is None
    assert refused.problems
    assert {problem.what for problem in refused.problems} <= {
        problem.what for problem in verdict.problems
    }
    return _named(verdict.problems)


async def test_an_edited_event_is_named(signed: tuple[list[int], list[int]]) -> None:
    first, _ = signed
    await as_superuser(f"UPDATE consent_event SET kind = 'refused' WHERE id = {first[2]}")
    found = await _found()
    assert ("changed", first[2], 7) in found
    assert {("root", None, 7), ("root", None, 12)} <= found


async def test_a_deleted_event_is_named(signed: tuple[list[int], list[int]]) -> None:
    _, second = signed
    await as_superuser(f"DELETE FROM consent_event WHERE id = {second[1]}")
    found = await _found()
    assert ("removed", second[1], 12) in found
    assert ("size", None, 12) in found
    assert not {problem for problem in found if problem[2] == 7}  # the first still holds


async def test_swapped_events_are_named(signed: tuple[list[int], list[int]]) -> None:
    first, _ = signed
    a, b = first[1], first[4]
    await as_superuser(
        f"UPDATE consent_event SET id = -1 WHERE id = {a}",
        f"UPDATE consent_event SET id = {a} WHERE id = {b}",
        f"UPDATE consent_event SET id = {b} WHERE id = -1",
    )
    found = await _found()
    assert {("changed", a, 7), ("changed", b, 7)} <= found


async def test_an_inserted_event_is_named(signed: tuple[list[int], list[int]]) -> None:
    first, _ = signed
    # Inserting needs no trigger off: placed among the signed events, it is found.
    await connections.get("default").execute_script(
        f"INSERT INTO consent_event (id, {COLUMNS}) "
        f"SELECT 0, {COLUMNS} FROM consent_event WHERE id = {first[0]}"
    )
    found = await _found()
    assert ("inserted", 0, 7) in found
    assert {("size", None, 7), ("size", None, 12)} <= found


async def test_a_checkpoint_rewritten_to_match_is_named(
    signed: tuple[list[int], list[int]],
) -> None:
    first, _ = signed
    await as_superuser(f"UPDATE consent_event SET kind = 'refused' WHERE id = {first[2]}")
    # The attacker recomputes the first head and writes it in, without the signing key.
    events = await ConsentEvent.all().order_by("id").values(*merkle.LEAF_FIELDS)
    leaves = [merkle.leaf_hash(merkle.leaf_data(event)) for event in events]
    await LedgerCheckpoint.filter(tree_size=7).update(root_hash=merkle.root(leaves, 7).hex())
    found = await _found()
    assert ("signature", None, 7) in found
    assert ("consistency", None, 12) in found


async def test_a_checkpoint_signed_with_another_key_is_named(signed: Any) -> None:
    other = _keys()
    row = await LedgerCheckpoint.get(tree_size=12)
    claims = merkle.checkpoint_claims(12, bytes.fromhex(row.root_hash), row.made_at)
    await LedgerCheckpoint.filter(tree_size=12).update(signature=signer(other)(claims))
    assert ("signature", None, 12) in await _found()


async def _many(count: int) -> None:
    patron = await make_patron()
    service = await Service.get(key="newsletter")
    await ConsentEvent.bulk_create(
        [
            ConsentEvent(
                patron_id=patron.id,
                service_id=service.id,
                kind=EventKind.GIVEN,
                purposes=[f"p{n}"],
                occurred_at=now(),
                method=PATRON_ONLINE.method,
                actor=PATRON_ONLINE.actor,
                channel=PATRON_ONLINE.channel,
                detail={},
            )
            for n in range(count)
        ],
        batch_size=500,
    )


async def test_proofs_past_many_blocks_verify_from_the_rfc_alone() -> None:
    await publish(standard_catalog())
    await _many(2 * merkle.BLOCK + 40)
    await _checkpoint()
    await _many(merkle.BLOCK + 3)  # the second checkpoint ends in a partial block
    head = (await _checkpoint()).checkpoint
    assert head is not None
    assert head.tree_size == 3 * merkle.BLOCK + 43
    events = await ConsentEvent.all().order_by("id").values(*merkle.LEAF_FIELDS)
    leaves = [rfc9162.leaf(merkle.leaf_data(event)) for event in events]
    for position in (0, 255, 256, 600, head.tree_size - 1):
        proof = await checkpoints.inclusion(int(events[position]["id"]))
        assert proof is not None
        assert [bytes.fromhex(value) for value in proof.path] == rfc9162.path(position, leaves)
    assert (await checkpoints.verify(checker(KEYS.public))).problems == ()


async def test_a_block_hash_changed_is_named() -> None:
    await publish(standard_catalog())
    await _many(merkle.BLOCK + 1)
    await _checkpoint()
    await LedgerBlock.filter(index=0).update(block_hash="00" * 32)
    assert ("leaves", None, None) in await _found()


async def test_a_checkpoint_waits_for_an_event_being_written(db: str) -> None:
    """PostgreSQL draws an event's id when it is inserted, not when it commits: a checkpoint
    taken meanwhile must not sign a tree that the event then lands inside."""
    if connections.get("default").capabilities.dialect != "postgres":
        pytest.skip("SQLite writes one transaction at a time")
    await publish(standard_catalog())
    await _events(2)
    patron = await make_patron()
    service = await Service.get(key="newsletter")
    inserted, release = asyncio.Event(), asyncio.Event()

    async def slow_writer() -> None:
        async with in_transaction():
            await record(
                patron.id, EventKind.GIVEN, PATRON_ONLINE, now=now(), service_id=service.id
            )
            inserted.set()
            await release.wait()

    writer = asyncio.create_task(slow_writer())
    await inserted.wait()
    checkpointing = asyncio.create_task(_checkpoint())
    await asyncio.sleep(0.5)
    assert not checkpointing.done()  # waiting for the writer, not signing without its event
    release.set()
    await writer
    made = (await checkpointing).checkpoint
    assert made is not None
    assert made.tree_size == 3
    await _events(1)
    assert (await _checkpoint()).problems == ()
    assert (await checkpoints.verify(checker(KEYS.public))).problems == ()


@pytest.fixture
async def large() -> int:
    """A ledger past two blocks in two checkpoints, the second ending in a partial block."""
    await publish(standard_catalog())
    await _many(2 * merkle.BLOCK + 40)
    assert (await _checkpoint()).checkpoint is not None
    await _many(merkle.BLOCK + 3)
    head = (await _checkpoint()).checkpoint
    assert head is not None
    return head.tree_size


async def _ids() -> list[int]:
    return [int(value) for value in await ConsentEvent.all().values_list("id", flat=True)]


@pytest.fixture
def unsampled(monkeypatch: pytest.MonkeyPatch) -> None:
    """No event re-hashed at checkpoint time: what the other checks catch on their own, as
    with a ledger far larger than the sample."""
    monkeypatch.setattr(checkpoints, "SAMPLE", 0)


@pytest.mark.usefixtures("unsampled")
async def test_a_deleted_old_event_stops_the_checkpoint_without_the_sample(large: int) -> None:
    ids = await _ids()
    await as_superuser(f"DELETE FROM consent_event WHERE id = {ids[100]}")
    await _many(5)
    refused = await _checkpoint()
    assert refused.checkpoint is None
    assert ("size", None, large) in _named(refused.problems)


@pytest.mark.usefixtures("unsampled")
async def test_an_inserted_old_event_stops_the_checkpoint_without_the_sample(
    large: int,
) -> None:
    ids = await _ids()
    await connections.get("default").execute_script(
        f"INSERT INTO consent_event (id, {COLUMNS}) "
        f"SELECT 0, {COLUMNS} FROM consent_event WHERE id = {ids[0]}"
    )
    refused = await _checkpoint()
    assert refused.checkpoint is None
    assert ("size", None, large) in _named(refused.problems)


@pytest.mark.usefixtures("unsampled")
async def test_a_changed_stored_leaf_stops_the_checkpoint(large: int) -> None:
    last = large - 1  # in the partial block after the whole ones
    await LedgerLeaf.filter(position=last).update(leaf_hash="11" * 32)
    refused = await _checkpoint()
    assert refused.checkpoint is None
    assert ("leaves", None, large) in _named(refused.problems)


@pytest.mark.usefixtures("unsampled")
async def test_a_leaf_past_the_latest_checkpoint_stops_the_next(large: int) -> None:
    await _many(3)
    await LedgerLeaf.create(position=large, event_id=10**6, leaf_hash="22" * 32)
    refused = await _checkpoint()
    assert refused.checkpoint is None
    assert "leaves" in {problem.what for problem in refused.problems}


@pytest.mark.usefixtures("unsampled")
async def test_an_edit_the_sample_missed_is_named_by_verify_ledger(large: int) -> None:
    """The price of a nightly run that does not grow with the ledger: an edited old event is
    found at checkpoint time only if the night's random sample draws it (every event, while
    the ledger is smaller than the sample); verify-ledger compares every event."""
    ids = await _ids()
    await as_superuser(f"UPDATE consent_event SET kind = 'refused' WHERE id = {ids[300]}")
    verdict = await checkpoints.verify(checker(KEYS.public))
    assert ("changed", ids[300], 2 * merkle.BLOCK + 40) in _named(verdict.problems)


async def test_an_event_edited_with_its_stored_leaf_stops_the_checkpoint(large: int) -> None:
    """An attacker who rewrites an event and its leaf alike leaves the pair agreeing: the
    block's stored hash, which the signed root vouches for, no longer matches its events."""
    ids = await _ids()
    await as_superuser(f"UPDATE consent_event SET kind = 'refused' WHERE id = {ids[100]}")
    event = await ConsentEvent.filter(id=ids[100]).values(*merkle.LEAF_FIELDS)
    await LedgerLeaf.filter(event_id=ids[100]).update(
        leaf_hash=merkle.leaf_hash(merkle.leaf_data(event[0])).hex()
    )
    refused = await _checkpoint()
    assert refused.checkpoint is None
    assert "leaves" in {problem.what for problem in refused.problems}
    verdict = await checkpoints.verify(checker(KEYS.public))
    assert ("leaves", None, large) in _named(verdict.problems)


async def test_the_sample_finds_an_edited_old_event(
    large: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await _ids()
    monkeypatch.setattr(checkpoints, "SAMPLE", large - 1)  # drawn at random, not every one
    edited = list(range(0, large, 3))  # a third of the ledger: missed once in 3^-(large-1)
    await as_superuser(
        f"UPDATE consent_event SET kind = 'refused' WHERE id IN "
        f"({', '.join(str(ids[n]) for n in edited)})"
    )
    refused = await _checkpoint()
    assert refused.checkpoint is None
    assert "changed" in {problem.what for problem in refused.problems}


async def test_read_in_small_batches_the_tree_is_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reads, "BATCH", 7)
    await publish(standard_catalog())
    sizes = []
    for count in (merkle.BLOCK - 1, 2, merkle.BLOCK + 9, 1):  # across blocks' edges
        await _many(count)
        made = (await _checkpoint()).checkpoint
        assert made is not None
        sizes.append(made.tree_size)
    events = await ConsentEvent.all().order_by("id").values(*merkle.LEAF_FIELDS)
    leaves = [rfc9162.leaf(merkle.leaf_data(event)) for event in events]
    rows = await checkpoints.checkpoints()
    for before, row in zip([None, *rows], rows, strict=False):
        assert bytes.fromhex(row.root_hash) == rfc9162.mth(leaves[: row.tree_size])
        if before is not None:
            assert rfc9162.consistent(
                before.tree_size,
                row.tree_size,
                bytes.fromhex(before.root_hash),
                bytes.fromhex(row.root_hash),
                [bytes.fromhex(value) for value in row.consistency],
            )
    assert sizes == [255, 257, 522, 523]
    verdict = await checkpoints.verify(checker(KEYS.public))
    assert (verdict.events, verdict.checkpoints, verdict.problems) == (523, 4, ())
    ids = [int(event["id"]) for event in events]
    await as_superuser(f"DELETE FROM consent_event WHERE id = {ids[260]}")
    assert ("removed", ids[260], 522) in _named(
        (await checkpoints.verify(checker(KEYS.public))).problems
    )


async def test_problems_past_the_limit_are_counted_not_named(
    large: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = await _ids()
    await as_superuser(
        f"UPDATE consent_event SET kind = 'refused' WHERE id IN "
        f"({', '.join(str(value) for value in ids[:10])})"
    )
    every = await checkpoints.verify(checker(KEYS.public))
    monkeypatch.setattr(findings, "LIMIT", 4)
    capped = await checkpoints.verify(checker(KEYS.public))
    assert len(every.problems) > 10
    assert capped.problems == every.problems[:4]
    assert capped.more == len(every.problems) - 4
