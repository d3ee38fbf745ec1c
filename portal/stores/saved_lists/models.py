"""The tables of store `saved_lists`."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from portal.patrons.models import Patron


class SavedList(Model):
    """Store `saved_lists`: lists the patron makes of titles to remember."""

    id = fields.IntField(primary_key=True)
    patron: fields.ForeignKeyRelation[Patron] = fields.ForeignKeyField(
        "models.Patron", related_name="saved_lists", on_delete=fields.RESTRICT, db_index=True
    )
    # Sealed under the patron's key for this store (portal.retained_keys); a form field
    # keeps at most 200 characters (portal.web.requests.MAX_FIELD).
    name = fields.TextField()
    created_at = fields.DatetimeField()

    patron_id: int
    items: fields.ReverseRelation[SavedListItem]

    class Meta:
        table = "saved_list"
        ordering = ("id",)


class SavedListItem(Model):
    id = fields.IntField(primary_key=True)
    saved_list: fields.ForeignKeyRelation[SavedList] = fields.ForeignKeyField(
        "models.SavedList", related_name="items", on_delete=fields.CASCADE, db_index=True
    )
    title = fields.TextField()  # sealed, as the list's name
    added_at = fields.DatetimeField()

    saved_list_id: int

    class Meta:
        table = "saved_list_item"
        ordering = ("id",)
