"""The contact details messages are sent to, one per patron and channel, kept only while a
message choice on that channel is on (portal/contacts/models.py). A new table; and the
outbox's kinds of request (contact.changed is new) described by one fixed sentence, so that
the next kind needs no migration. On SQLite that alteration rebuilds outbox_message, which
drops its indexes: they are created again here, by the names the models give."""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from portal.outbox.policy import MessageKind

SQLITE_INDEXES = [
    'CREATE INDEX IF NOT EXISTS "idx_outbox_mess_state_4ffb9b" '
    'ON "outbox_message" ("state", "due_ms")',
    'CREATE INDEX IF NOT EXISTS "idx_outbox_mess_system_896712" '
    'ON "outbox_message" ("system", "patron_id")',
    'CREATE INDEX IF NOT EXISTS "idx_outbox_mess_patron__841504" '
    'ON "outbox_message" ("patron_id", "service_id")',
]


async def restore_indexes(apps, editor):
    if editor.client.capabilities.dialect == "sqlite":
        for statement in SQLITE_INDEXES:
            await editor.client.execute_script(statement)


async def nothing(apps, editor):
    """Going back, the indexes stay: they belong to the outbox's migration."""


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
        ops.AlterField(
            model_name="OutboxMessage",
            name="kind",
            field=fields.CharEnumField(
                description="a kind of request (portal.outbox.policy)",
                enum_type=MessageKind,
                max_length=30,
            ),
        ),
        ops.RunPython(restore_indexes, nothing),
    ]
