"""A screen handed over from staff to a patron at the desk. Purpose: carry the visit from
one step to the next; it holds no choice and no PIN, and is deleted once staff have seen
that the card is ready (or by the daily purge)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Handover(Model):
    id = fields.IntField(primary_key=True)
    # Keyed hash of the token in the hand-over cookie: only this browser continues it.
    token_lookup = fields.CharField(max_length=64, unique=True)
    staff: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "models.StaffMember", related_name=False, on_delete=fields.CASCADE
    )
    patron: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "models.Patron", related_name=False, on_delete=fields.CASCADE
    )
    # A child's guardian, present and checked in person, who decides for the child.
    guardian: fields.ForeignKeyNullableRelation[Model] = fields.ForeignKeyField(
        "models.Patron", related_name=False, on_delete=fields.CASCADE, null=True
    )
    purpose = fields.CharField(max_length=20)  # "new_card" or "pin_reset"
    pin_set = fields.BooleanField(default=False)
    guardian_needs_pin = fields.BooleanField(default=False)  # a guardian card made today
    # For a child below the guardian-consent age, the guardian present decides.
    guardian_decides = fields.BooleanField(default=False)
    # The services to ask about, in order, fixed when the screen was handed over (a catalog
    # published meanwhile does not shift the screen), and how far through them the patron
    # is; past the end once they chose to decide later.
    service_keys: list[str] = fields.JSONField(default=list)
    position = fields.IntField(default=0)
    started_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()  # slides forward while the patron is active
    finished_at = fields.DatetimeField(null=True)

    staff_id: int
    patron_id: int
    guardian_id: int | None

    class Meta:
        table = "desk_handover"
