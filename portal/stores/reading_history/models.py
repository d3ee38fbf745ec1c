"""The table of store `reading_history`."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from portal.patrons.models import Patron


class HistoryEntry(Model):
    """Store `reading_history`: what the library system reported the patron borrowed."""

    id = fields.IntField(primary_key=True)
    patron: fields.ForeignKeyRelation[Patron] = fields.ForeignKeyField(
        "models.Patron", related_name="history", on_delete=fields.RESTRICT, db_index=True
    )
    # Sealed under the patron's key for this store (portal.retained_keys): title and
    # author say what the patron read. The API keeps at most 500 and 300 characters.
    title = fields.TextField()
    author = fields.TextField()
    borrowed_on = fields.DateField()
    recorded_at = fields.DatetimeField()
    # The integration API client that handed the loan over (its id in `api_client`, from its
    # signed access token); none for the development-mode demo button.
    recorded_by_client = fields.IntField(null=True)

    patron_id: int

    class Meta:
        table = "history_entry"
        ordering = ("-borrowed_on", "-id")
