"""Messages per kind and channel: a service published for one message choice of a messaging
service says which (`choice`), and a service a messaging service replaced is kept, retired
(`retired_at`), as the ledger points at it (portal/catalog/models.py); the ledger's new
kind of event says a consent was carried over. New nullable columns: no row changes.

The ledger's event kinds are now described by one fixed sentence, so that the next new kind
needs no migration. On SQLite this last alteration rebuilds consent_event and consent_state,
which drops their append-only triggers and indexes: they are created again here, as
migrations 0008 and 0010 do."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

from portal.ledger.vocabulary import EventKind

SQLITE_RESTORE = [
    "CREATE TRIGGER IF NOT EXISTS consent_event_no_update BEFORE UPDATE ON consent_event "
    "BEGIN SELECT RAISE(ABORT, 'consent events are append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS consent_event_no_delete BEFORE DELETE ON consent_event "
    "BEGIN SELECT RAISE(ABORT, 'consent events are append-only'); END",
    'CREATE INDEX IF NOT EXISTS "idx_consent_eve_patron__472687" ON "consent_event" ("patron_id")',
    'CREATE INDEX IF NOT EXISTS "idx_consent_sta_patron__d0b5e0" ON "consent_state" ("patron_id")',
    'CREATE UNIQUE INDEX IF NOT EXISTS "uid_consent_sta_patron__429b30" '
    'ON "consent_state" ("patron_id", "service_id")',
]


async def restore_after_rebuild(apps, editor):
    if editor.client.capabilities.dialect == "sqlite":
        for statement in SQLITE_RESTORE:
            await editor.client.execute_script(statement)


async def nothing(apps, editor):
    """Going back, the triggers and indexes stay: they belong to earlier migrations."""


class Migration(migrations.Migration):
    dependencies = [("models", "0019_pin_reset_notice")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Service",
            name="choice",
            field=fields.JSONField(null=True),
        ),
        ops.AddField(
            model_name="Service",
            name="retired_at",
            field=fields.DatetimeField(null=True),
        ),
        # The ledger's event kinds, one fixed description (carried_over is new).
        ops.AlterField(
            model_name="ConsentEvent",
            name="kind",
            field=fields.CharEnumField(
                description="a kind of ledger event (portal.ledger.vocabulary.EventKind)",
                enum_type=EventKind,
                max_length=20,
            ),
        ),
        ops.AlterField(
            model_name="ConsentState",
            name="last_kind",
            field=fields.CharEnumField(
                description="a kind of ledger event (portal.ledger.vocabulary.EventKind)",
                enum_type=EventKind,
                max_length=20,
            ),
        ),
        ops.RunPython(restore_after_rebuild, nothing),
    ]
