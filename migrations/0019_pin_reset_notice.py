"""When library staff last reset a patron's PIN, kept until the patron has seen the notice
on My privacy and dismissed it (portal/patrons/models.py). A new nullable column: no row
changes."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("models", "0018_counter_windows")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Patron",
            name="pin_reset_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
    ]
