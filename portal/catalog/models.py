"""Published services and their immutable notice versions (one row per locale per revision),
and the connected systems that hold services' data outside the portal."""

from __future__ import annotations

from typing import Any

from tortoise import fields
from tortoise.models import Model


class Service(Model):
    id = fields.IntField(primary_key=True)
    key = fields.CharField(max_length=40, unique=True)
    store = fields.CharField(max_length=40, null=True)
    # `revision` grows with every published change; `terms_revision` only with a material one.
    revision = fields.IntField()
    terms_revision = fields.IntField()
    terms: dict[str, Any] = fields.JSONField()
    # Not offered to patrons younger than this (e.g. 18 for fundraising mail).
    minimum_age = fields.IntField(null=True)
    # Keys of the connected systems holding this service's data (null: none, as before).
    systems: list[str] | None = fields.JSONField(null=True)
    position = fields.IntField()
    published_at = fields.DatetimeField()
    # A message choice (one kind of message by one channel, or titles in messages) of a
    # messaging service: portal.catalog.policy.MessageChoice as a dict; null for the rest.
    choice: dict[str, Any] | None = fields.JSONField(null=True)
    # Set when a messaging service replaced it (its consents were carried over to message
    # choices): it is no longer offered; the row stays, as the ledger points at it.
    retired_at = fields.DatetimeField(null=True)

    class Meta:
        table = "service"
        ordering = ("position",)


class NoticeVersion(Model):
    """Never updated or deleted: a consent points at the exact text the patron saw."""

    id = fields.IntField(primary_key=True)
    service: fields.ForeignKeyRelation[Service] = fields.ForeignKeyField(
        "models.Service", related_name="notice_versions", on_delete=fields.RESTRICT, db_index=True
    )
    locale = fields.CharField(max_length=10)
    revision = fields.IntField()
    terms_revision = fields.IntField()
    terms: dict[str, Any] = fields.JSONField()
    texts: dict[str, str] = fields.JSONField()
    content_hash = fields.CharField(max_length=64)
    # The child's version of the same notice in the same locale (the same facts, in words a
    # child can read), shown to patrons below the guardian-consent age; null when the
    # service has none. Kept as long as the version itself: the ledger points at it.
    child_texts: dict[str, str] | None = fields.JSONField(null=True)
    child_hash = fields.CharField(max_length=64, null=True)
    published_at = fields.DatetimeField()

    service_id: int

    class Meta:
        table = "notice_version"
        unique_together = (("service", "locale", "revision"),)


class Publication(Model):
    """One row per successful publish of the catalog."""

    id = fields.IntField(primary_key=True)
    library_name = fields.CharField(max_length=200)
    # The library's name per locale, as [library.name_in] gave it: shown on every page in that
    # language. Public text, kept as long as the publication (for ever, as notices are).
    library_names: dict[str, str] | None = fields.JSONField(null=True)
    # The library's jurisdiction policy: {"code", "guardian_consent_below", "age_of_majority"}.
    jurisdiction: dict[str, Any] = fields.JSONField(null=True)
    source_hash = fields.CharField(max_length=64)
    published_at = fields.DatetimeField()
    changed_services: dict[str, str] = fields.JSONField()

    class Meta:
        table = "publication"


class ConnectedSystem(Model):
    """A system outside the portal that holds services' data and is sent their deletion
    requests. Name and endpoint change in place; a published system is never removed (its
    requests must still be delivered). Its signing secret is not stored here."""

    id = fields.IntField(primary_key=True)
    key = fields.CharField(max_length=40, unique=True)
    name = fields.CharField(max_length=100)
    endpoint = fields.CharField(max_length=500)
    position = fields.IntField()

    class Meta:
        table = "connected_system"
        ordering = ("position",)
