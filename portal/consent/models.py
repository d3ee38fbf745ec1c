"""Each patron's current choice per service, and the append-only ledger of consent events
(fields after ISO/IEC TS 27560: notice, language, purpose, time, method, actor, channel)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.models import Model

from portal.catalog.models import NoticeVersion, Service
from portal.patrons.models import Patron


class EventKind(StrEnum):
    GIVEN = "given"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"
    RENEWED = "renewed"
    EXPIRED = "expired"
    ERASED = "erased"
    SUSPENDED = "suspended"
    GUARDIAN_LINKED = "guardian_linked"
    GUARDIAN_LINK_ENDED = "guardian_link_ended"


class Method(StrEnum):
    ONLINE = "online"
    DESK_HANDOVER = "desk_handover"
    GUARDIAN = "guardian"
    SYSTEM = "system"


class Actor(StrEnum):
    PATRON = "patron"
    GUARDIAN = "guardian"
    SYSTEM = "system"


class Channel(StrEnum):
    WEB = "web"
    API = "api"
    CLI = "cli"


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
    last_kind = fields.CharEnumField(EventKind, max_length=20)
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


class ConsentEvent(Model):
    id = fields.IntField(primary_key=True)
    patron: fields.ForeignKeyRelation[Patron] = fields.ForeignKeyField(
        "models.Patron", related_name="consent_events", on_delete=fields.RESTRICT, db_index=True
    )
    # None for events about the account rather than one service (a guardian link ending).
    service: fields.ForeignKeyNullableRelation[Service] = fields.ForeignKeyField(
        "models.Service", related_name="events", on_delete=fields.RESTRICT, null=True
    )
    kind = fields.CharEnumField(EventKind, max_length=20)
    notice_version: fields.ForeignKeyNullableRelation[NoticeVersion] = fields.ForeignKeyField(
        "models.NoticeVersion", related_name=False, on_delete=fields.RESTRICT, null=True
    )
    notice_hash = fields.CharField(max_length=64, null=True)
    locale = fields.CharField(max_length=10, null=True)
    purposes: list[str] = fields.JSONField()
    occurred_at = fields.DatetimeField()
    method = fields.CharEnumField(Method, max_length=20)
    actor = fields.CharEnumField(Actor, max_length=20)
    channel = fields.CharEnumField(Channel, max_length=10)
    # The guardian who acted, when the actor is a guardian (staff never act, PRODUCT.md).
    acting_guardian: fields.ForeignKeyNullableRelation[Patron] = fields.ForeignKeyField(
        "models.Patron", related_name=False, on_delete=fields.RESTRICT, null=True
    )
    detail: dict[str, Any] = fields.JSONField()

    patron_id: int
    service_id: int | None
    notice_version_id: int | None
    acting_guardian_id: int | None

    class Meta:
        table = "consent_event"
        ordering = ("id",)

    async def save(self, *args: Any, **kwargs: Any) -> None:
        # The ledger is append-only: an event is written once and never changed.
        if self._saved_in_db:
            raise PermissionError("consent events are append-only")
        await super().save(*args, **kwargs)
