"""The contact details messages are sent to, one per patron and channel, kept only while a
message choice on that channel is on (portal/contacts/models.py). A new table."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise.fields.base import OnDelete
from tortoise import fields


class Migration(migrations.Migration):
    dependencies = [("models", "0020_message_choices")]

    initial = False

    operations = [
        ops.CreateModel(
            name="MessageContact",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "patron",
                    fields.ForeignKeyField(
                        "models.Patron",
                        source_field="patron_id",
                        db_constraint=True,
                        to_field="id",
                        related_name=False,
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("channel", fields.CharField(max_length=10)),
                ("value", fields.CharField(max_length=254)),
                ("changed_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "message_contact",
                "app": "models",
                "unique_together": (("patron", "channel"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
    ]
