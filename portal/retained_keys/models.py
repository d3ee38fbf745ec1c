"""The key table: one key per patron and store. Erasure deletes a key in the transaction that
deletes its rows; compaction rewrites this table (small: 60 bytes a row) so no deleted key
is left in a dead tuple."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

KEY_TABLE = "retained_data_key"


class RetainedDataKey(Model):
    id = fields.IntField(primary_key=True)
    patron: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "models.Patron", related_name=False, on_delete=fields.RESTRICT
    )
    # A store key of portal.stores.registry, or "contact:<channel>" (portal.contacts).
    store = fields.CharField(max_length=60)
    key = fields.BinaryField()  # 32 random bytes: AES-256-GCM (retained_keys/policy.py)
    created_at = fields.DatetimeField()

    patron_id: int

    class Meta:
        table = KEY_TABLE
        unique_together = (("patron", "store"),)
