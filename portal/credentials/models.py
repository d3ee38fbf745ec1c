"""What credentials are kept as: the columns every one-time code and every sliding session
has, whoever they belong to (each owner's table adds the link to its owner), and the counts
of guesses the sign-in throttle keeps. Only keyed hashes: no code, token or card number."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class OneTimeCode(Model):
    """A code its owner uses once to set their own PIN or password, deleted once used."""

    id = fields.IntField(primary_key=True)
    code_lookup = fields.CharField(max_length=64, unique=True)
    expires_at = fields.DatetimeField()

    class Meta:
        abstract = True


class SlidingSession(Model):
    """A signed-in visit: its idle timeout (`expires_at`) slides forward while it is used,
    up to an absolute lifetime (`ends_at`, declared by each table: null in older rows)."""

    id = fields.IntField(primary_key=True)
    token_lookup = fields.CharField(max_length=64, unique=True)
    expires_at = fields.DatetimeField()

    class Meta:
        abstract = True


class SignInCounter(Model):
    """Guesses counted against one throttle key (a keyed hash of a card, or of a client's
    network) in the current window. KeyPurpose: limit guessing; purged when the window ends,
    but a card held until it is cleared (`holds_at` reached) is kept until then."""

    id = fields.IntField(primary_key=True)
    key_lookup = fields.CharField(max_length=64, unique=True)
    # Milliseconds since the epoch: compared in SQL the same way on every engine.
    window_started_ms = fields.BigIntField(db_index=True)
    attempts = fields.IntField()
    # The window's length, so that each row is purged when its own window ends.
    window_ms = fields.BigIntField(default=0, db_default=0)
    # For a card's budget before a hold: the count at which it holds until it is cleared.
    holds_at = fields.IntField(null=True)

    class Meta:
        table = "signin_counter"
