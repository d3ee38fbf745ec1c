"""Guardian links: who may act for a child, how staff checked it, and since when."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from portal.patrons.models import Patron


# Links are never deleted: ending one keeps the record of who could act for the child and
# when. The rules for making and ending them are portal.minors'.
class GuardianLink(Model):
    id = fields.IntField(primary_key=True)
    guardian: fields.ForeignKeyRelation[Patron] = fields.ForeignKeyField(
        "models.Patron", related_name="children_links", on_delete=fields.RESTRICT, db_index=True
    )
    child: fields.ForeignKeyRelation[Patron] = fields.ForeignKeyField(
        "models.Patron", related_name="guardian_links", on_delete=fields.RESTRICT, db_index=True
    )
    # Chosen by the guardian so they can tell their children apart; the portal keeps no names.
    label = fields.CharField(max_length=60)
    method = fields.CharField(max_length=20)  # "desk_handover" (in person) or "guardian" (code)
    linked_at = fields.DatetimeField()
    ended_at = fields.DatetimeField(null=True)
    end_reason = fields.CharField(max_length=30, null=True)

    guardian_id: int
    child_id: int

    class Meta:
        table = "guardian_link"
