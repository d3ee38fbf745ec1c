"""The contact details messages are sent to: one per patron and channel, kept only while at
least one kind of message is on for that channel (portal.erasure erases it, in the same
transaction, when the last one goes off)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class MessageContact(Model):
    id = fields.IntField(primary_key=True)
    patron: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "models.Patron", related_name=False, on_delete=fields.RESTRICT
    )
    channel = fields.CharField(max_length=10)  # "email", "sms" or "phone"
    # E.164 for a number, the normalised address for email (at most 254 characters),
    # sealed under the patron's key for the channel (portal.retained_keys).
    value = fields.TextField()
    changed_at = fields.DatetimeField()

    patron_id: int

    class Meta:
        table = "message_contact"
        unique_together = (("patron", "channel"),)
