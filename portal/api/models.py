"""Library systems allowed to use the integration API (the ILS, a discovery layer, ...)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class ApiClient(Model):
    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100, unique=True)
    # Keyed hash of the bearer token; the token itself is shown once, when issued.
    token_lookup = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "api_client"
