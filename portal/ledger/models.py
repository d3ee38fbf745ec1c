"""The consent ledger: one row per event, append-only (fields after ISO/IEC TS 27560: notice,
language shown, purposes, time, method, actor, channel; the vocabulary is ledger.vocabulary).

Relations are declared by name ("models.Patron"), so the ledger imports no domain: every
domain may write it, and it depends on none of them. The database itself refuses UPDATE and
DELETE on the table (migration 0004)."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model

from portal.ledger.vocabulary import Actor, Channel, EventKind, Method

__all__ = [
    "Actor",
    "Channel",
    "ConsentEvent",
    "EventKind",
    "LedgerBlock",
    "LedgerCheckpoint",
    "LedgerLeaf",
    "Method",
]


class ConsentEvent(Model):
    id = fields.IntField(primary_key=True)
    patron: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "models.Patron", related_name="consent_events", on_delete=fields.RESTRICT, db_index=True
    )
    # None for events about the account rather than one service (a guardian link ending).
    service: fields.ForeignKeyNullableRelation[Model] = fields.ForeignKeyField(
        "models.Service", related_name="events", on_delete=fields.RESTRICT, null=True
    )
    # A fixed description: a new kind of event then needs no migration (on SQLite, altering
    # the column rebuilds the table).
    kind = fields.CharEnumField(
        EventKind,
        max_length=20,
        description="a kind of ledger event (portal.ledger.vocabulary.EventKind)",
    )
    notice_version: fields.ForeignKeyNullableRelation[Model] = fields.ForeignKeyField(
        "models.NoticeVersion", related_name=False, on_delete=fields.RESTRICT, null=True
    )
    notice_hash = fields.CharField(max_length=64, null=True)
    locale = fields.CharField(max_length=10, null=True)
    # Which text of the notice version was on screen: "adult" (the full notice) or "child"
    # (its child's version; notice_hash is then the child's text's hash). Null before 0010
    # and for events without a notice. Kept with the event, as long as the ledger.
    notice_audience = fields.CharField(max_length=10, null=True)
    purposes: list[str] = fields.JSONField()
    occurred_at = fields.DatetimeField()
    method = fields.CharEnumField(Method, max_length=20)
    actor = fields.CharEnumField(Actor, max_length=20)
    channel = fields.CharEnumField(Channel, max_length=10)
    # The guardian who acted, when the actor is a guardian (staff never act: docs/PROMISES.md,
    # "Who uses it").
    acting_guardian: fields.ForeignKeyNullableRelation[Model] = fields.ForeignKeyField(
        "models.Patron", related_name=False, on_delete=fields.RESTRICT, null=True
    )
    detail: dict[str, Any] = fields.JSONField()
    # At the desk: the pseudonym of the staff member who witnessed the event (never acted).
    witnessed_by = fields.CharField(max_length=20, null=True)

    patron_id: int
    service_id: int | None
    notice_version_id: int | None
    acting_guardian_id: int | None

    class Meta:
        table = "consent_event"
        ordering = ("id",)


class LedgerLeaf(Model):
    """One event's leaf hash as a checkpoint took it (portal.ledger.merkle), at its place in
    the tree: written at checkpoint time, never when the event is written. Kept as long as
    the ledger: `portal verify-ledger` compares each event with it to name the one changed,
    removed or inserted; the signed checkpoints, not this table, are what proves."""

    position = fields.IntField(primary_key=True, generated=False)  # the leaf index, from 0
    event_id = fields.IntField(unique=True)
    leaf_hash = fields.CharField(max_length=64)

    class Meta:
        table = "ledger_leaf"
        ordering = ("position",)


class LedgerBlock(Model):
    """MTH of one whole block of merkle.BLOCK leaves, written at checkpoint time, so that a
    receipt's inclusion proof reads a few thousand hashes rather than every leaf."""

    index = fields.IntField(primary_key=True, generated=False)  # leaves index*BLOCK onwards
    block_hash = fields.CharField(max_length=64)

    class Meta:
        table = "ledger_block"
        ordering = ("index",)


class LedgerCheckpoint(Model):
    """A signed tree head of the ledger (RFC 9162 §4.10's spirit): its size, root and time,
    signed with the receipt key, and the consistency proof from the checkpoint before it.
    Public, and kept as long as the ledger."""

    id = fields.IntField(primary_key=True)
    tree_size = fields.IntField(unique=True)
    last_event_id = fields.IntField()  # the newest event the tree holds
    root_hash = fields.CharField(max_length=64)
    made_at = fields.DatetimeField()
    signature = fields.TextField()  # a compact JWS of merkle.checkpoint_claims
    previous_size = fields.IntField(null=True)
    consistency: list[str] = fields.JSONField()  # hex hashes; empty for the first

    class Meta:
        table = "ledger_checkpoint"
        ordering = ("tree_size",)
