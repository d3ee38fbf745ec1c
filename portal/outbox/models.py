"""The outbox: one row per request to one connected system, written in the transaction of the
change it follows, and its delivery state. Times a worker compares in SQL (when an attempt
is due, until when a worker holds it) are epoch milliseconds, the same on both engines."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from portal.outbox.policy import DeliveryState, MessageKind


class OutboxMessage(Model):
    id = fields.IntField(primary_key=True)
    # The request's webhook-id: the same on every retry, so the receiver applies it once.
    message_id = fields.CharField(max_length=40, unique=True)
    system = fields.CharField(max_length=40)  # a connected system's key (portal.catalog)
    # A fixed description: a new kind of request then needs no migration.
    kind = fields.CharEnumField(
        MessageKind, max_length=30, description="a kind of request (portal.outbox.policy)"
    )
    # Null for a retention request about every patron of a service.
    patron: fields.ForeignKeyNullableRelation[Model] = fields.ForeignKeyField(
        "models.Patron", related_name=False, on_delete=fields.RESTRICT, null=True
    )
    service: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "models.Service", related_name=False, on_delete=fields.RESTRICT
    )
    # The JSON body exactly as sent (purpose: the request itself; the patron appears only
    # as the keyed hash of their card). Deleted 30 days after it was confirmed.
    body = fields.TextField()
    # Retention requests: "system:service:day", so a second run on one day sends nothing new.
    once_key = fields.CharField(max_length=120, unique=True, null=True)
    created_at = fields.DatetimeField()
    give_up_at = fields.DatetimeField()
    state = fields.CharEnumField(DeliveryState, max_length=10)
    attempts = fields.IntField(default=0)
    due_ms = fields.BigIntField()
    lease_until_ms = fields.BigIntField(default=0)
    claim = fields.CharField(max_length=32, null=True)  # the worker holding it, by a token
    last_attempt_at = fields.DatetimeField(null=True)
    last_status = fields.IntField(null=True)  # the HTTP status of the last answer, if any
    last_error = fields.CharField(max_length=100, null=True)  # never a response body
    accepted_at = fields.DatetimeField(null=True)
    confirmed_at = fields.DatetimeField(null=True)
    confirmed_via = fields.CharField(max_length=10, null=True)  # "response" or "ack"

    patron_id: int | None
    service_id: int

    class Meta:
        table = "outbox_message"
        # (state, due_ms, id): a worker's claim walks the pending requests in the order it
        # takes them and stops at its batch; without id the order needed a sort of every
        # request pending (100,000 after a consortium's nightly run) at each claim.
        indexes = (
            ("state", "due_ms", "id"),
            ("system", "patron_id"),
            ("patron_id", "service_id"),
        )
