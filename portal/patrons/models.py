"""Patron accounts and the links between a guardian's account and a child's. The portal keeps
no name and no card number: the card is stored only as a keyed hash, enough to sign in and to
match what library systems send."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model

from portal.credentials.models import OneTimeCode, SlidingSession


class Patron(Model):
    id = fields.IntField(primary_key=True)
    # HMAC-SHA256 of the normalised card number (purpose: sign-in and matching; kept while
    # the account exists).
    card_lookup = fields.CharField(max_length=64, unique=True)
    # The patron as connected systems know them (deletion requests name it): HMAC-SHA256 of
    # the normalised card under the patron reference key, which keys nothing else. Null for
    # an account made before there was one: its reference is card_lookup, for good.
    reference = fields.CharField(max_length=64, null=True, unique=True)
    # Argon2 hash, set by the patron through a one-time setup code; null until then.
    pin_hash = fields.CharField(max_length=200, null=True)
    # Purpose: show the portal in the patron's language; kept while the account exists.
    locale = fields.CharField(max_length=10, null=True)
    # Purpose: apply the age rules for minors (guardian consent, age of majority); kept while
    # the account exists. Unknown for a patron the library holds no birth date for.
    born_on = fields.DateField(null=True)
    # A jurisdiction preset (e.g. "GDPR-DE") when it differs from the library's.
    jurisdiction = fields.CharField(max_length=20, null=True)
    # A teenager may let their guardians see their own choices (never their library use).
    shares_with_guardians = fields.BooleanField(default=False, db_default=False)
    came_of_age_at = fields.DatetimeField(null=True)
    # Grows with every change to the patron's consents (portal.consent), read with the
    # session: a page may reuse what it read of them while it is unchanged.
    consent_version = fields.IntField(default=0, db_default=0)
    # When library staff last reset the PIN. Purpose: tell the patron on My privacy, in case
    # they did not ask for it; kept until the patron dismisses the notice (the staff audit
    # trail keeps the reset itself, as long as it keeps any staff action).
    pin_reset_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField()
    # Purpose: tell the patron, in their record, when sign-in with their card was last held
    # after too many wrong PINs (portal.credentials.throttle); kept while the account exists.
    signin_held_at = fields.DatetimeField(null=True)

    class Meta:
        table = "patron"


class PinSetupCode(OneTimeCode):
    """A one-time code a new cardholder uses to set their own PIN, deleted once used."""

    patron: fields.ForeignKeyRelation[Patron] = fields.ForeignKeyField(
        "models.Patron", related_name="setup_codes", on_delete=fields.CASCADE, db_index=True
    )

    patron_id: int

    class Meta:
        table = "pin_setup_code"


class PortalSession(SlidingSession):
    """A signed-in visit. Purpose: keep the patron signed in, deleted at sign-out or expiry."""

    patron: fields.ForeignKeyRelation[Patron] = fields.ForeignKeyField(
        "models.Patron", related_name="sessions", on_delete=fields.CASCADE, db_index=True
    )
    ends_at = fields.DatetimeField(null=True)  # however active: the absolute lifetime

    patron_id: int

    class Meta:
        table = "portal_session"
