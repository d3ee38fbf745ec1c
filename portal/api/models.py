"""Library systems allowed to use the integration API (the ILS, a discovery layer, ...), as
OAuth 2 clients of the client credentials grant (RFC 6749 §4.4)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class ApiClient(Model):
    """A library system's OAuth client; never deleted, as loans name the client.
    Reading history records which client handed each loan over. A client made before OAuth
    (migration 0009) has no client id, secret or scopes until `portal api-client rotate`."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=100, unique=True)
    # The OAuth client id: random, so nobody can aim failed sign-ins at a system's name.
    client_id = fields.CharField(max_length=32, unique=True, null=True)
    # Keyed hash of the client secret; the secret itself is shown once, when issued.
    secret_lookup = fields.CharField(max_length=64, null=True)
    # Space-separated scopes, as OAuth writes them.
    scopes = fields.CharField(max_length=200, default="", db_default="")
    # Counts secrets issued; an access token names the one it was issued under, so a new
    # secret ends the tokens of the old one.
    secret_generation = fields.IntField(default=0, db_default=0)
    created_at = fields.DatetimeField()
    rotated_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)
    last_token_at = fields.DatetimeField(null=True)
    # The connected system (catalog key) this client speaks for: a client reading or
    # confirming deletion requests sees only its own system's, never another's.
    system = fields.CharField(max_length=40, null=True)

    class Meta:
        table = "api_client"
