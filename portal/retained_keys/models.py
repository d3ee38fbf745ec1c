"""The key tables. One key per patron and store, kept *wrapped* (AES-256-GCM) under the
wrapping key of the patron's bucket: erasure deletes a key in the transaction that deletes
its rows and marks its wrapping key; compaction then re-wraps the bucket's other keys under
a new wrapping key, deletes the old one and rewrites only the wrapping-key table (a few MB),
so no deleted key is readable from a dead tuple of the large key table."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

KEY_TABLE = "retained_data_key"
WRAP_TABLE = "retained_key_wrap"


class RetainedKeyWrap(Model):
    # A wrapping key of one bucket of patrons (policy.bucket_of). The newest generation of a
    # bucket wraps new keys; an older one lives only until compaction re-wrapped its keys.

    id = fields.IntField(primary_key=True)
    bucket = fields.IntField()
    generation = fields.IntField()
    key = fields.BinaryField()  # 32 random bytes: AES-256-GCM (retained_keys/policy.py)
    created_at = fields.DatetimeField()
    # A key wrapped under it was destroyed (or replaced) since it was made: compaction
    # rotates it, so the destroyed key's wrapped copy (a dead tuple) opens nowhere.
    rotate = fields.BooleanField(default=False)

    class Meta:
        table = WRAP_TABLE
        unique_together = (("bucket", "generation"),)


class RetainedDataKey(Model):
    id = fields.IntField(primary_key=True)
    patron: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "models.Patron", related_name=False, on_delete=fields.RESTRICT
    )
    # A store key of portal.stores.registry, or "contact:<channel>" (portal.contacts).
    store = fields.CharField(max_length=60)
    # The key wrapped (policy.wrap_key): 12 bytes of nonce, 32 of key, 16 of tag.
    key = fields.BinaryField()
    # RESTRICT: a wrapping key is never deleted while a key, even one a writer committed
    # while compaction ran, is still wrapped under it (services.rotate_wrapping_key).
    wrapped_by: fields.ForeignKeyRelation[RetainedKeyWrap] = fields.ForeignKeyField(
        "models.RetainedKeyWrap", related_name=False, on_delete=fields.RESTRICT, db_index=True
    )
    created_at = fields.DatetimeField()

    patron_id: int
    wrapped_by_id: int

    class Meta:
        table = KEY_TABLE
        unique_together = (("patron", "store"),)
