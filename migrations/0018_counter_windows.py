"""Each throttle count keeps its own window's length (a card's day and its 30-day budget
live beside the 15-minute windows) and, for a card's budget before a hold, the count at which
it holds until cleared (portal/credentials/throttle.py); a patron's record says when sign-in
with their card was last held. Counts from before have a window of
0 and are purged at the next purge: at most one window's count is forgotten, once."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("models", "0017_patron_reference")]

    initial = False

    operations = [
        ops.AddField(
            model_name="SignInCounter",
            name="window_ms",
            field=fields.BigIntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name="SignInCounter",
            name="holds_at",
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name="Patron",
            name="signin_held_at",
            field=fields.DatetimeField(null=True),
        ),
    ]
