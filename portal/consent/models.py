"""Each patron's current choice per service. Every change to it is written to the ledger
(portal.ledger) in the same transaction."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from portal.catalog.models import NoticeVersion, Service
from portal.ledger.models import EventKind
from portal.patrons.models import Patron


class ConsentState(Model):
    """Absent row = never decided = off. `revision` lets a form prove it saw the latest state."""

    id = fields.IntField(primary_key=True)
    patron: fields.ForeignKeyRelation[Patron] = fields.ForeignKeyField(
        "models.Patron", related_name="consents", on_delete=fields.RESTRICT, db_index=True
    )
    service: fields.ForeignKeyRelation[Service] = fields.ForeignKeyField(
        "models.Service", related_name="consents", on_delete=fields.RESTRICT
    )
    granted = fields.BooleanField()
    # A fixed description: a new kind of event then needs no migration (on SQLite, altering
    # the column rebuilds the table).
    last_kind = fields.CharEnumField(
        EventKind,
        max_length=20,
        description="a kind of ledger event (portal.ledger.vocabulary.EventKind)",
    )
    notice_version: fields.ForeignKeyNullableRelation[NoticeVersion] = fields.ForeignKeyField(
        "models.NoticeVersion", related_name=False, on_delete=fields.RESTRICT, null=True
    )
    # Copied from the notice version so "is this consent current?" needs no join.
    terms_revision = fields.IntField()
    # Who gave the consent in force: a guardian's consent needs the patron's own confirmation
    # once they come of age.
    granted_by = fields.CharField(max_length=20, null=True)  # an Actor value
    # Set when a granted consent stops covering the service (a material change of its notice,
    # or a guardian's consent when the patron comes of age); off until the patron decides.
    suspended_at = fields.DatetimeField(null=True)
    suspension_reason = fields.CharField(max_length=30, null=True)
    revision = fields.IntField()
    updated_at = fields.DatetimeField()

    patron_id: int
    service_id: int
    notice_version_id: int | None

    class Meta:
        table = "consent_state"
        unique_together = (("patron", "service"),)
