"""One-time codes a minor makes so a parent or guardian can link to their account (the links
themselves are account data: guardians.models.GuardianLink)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from portal.patrons.models import Patron


class LinkCode(Model):
    """A one-time code issued to a child's account for a guardian to redeem, deleted on use."""

    id = fields.IntField(primary_key=True)
    child: fields.ForeignKeyRelation[Patron] = fields.ForeignKeyField(
        "models.Patron", related_name="link_codes", on_delete=fields.CASCADE, db_index=True
    )
    code_lookup = fields.CharField(max_length=64, unique=True)
    expires_at = fields.DatetimeField()

    child_id: int

    class Meta:
        table = "link_code"
