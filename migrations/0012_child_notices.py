"""Children's notices: each notice version may carry a child's version of its text (the same
facts in words a child can read), and the ledger records which text was on screen when a
choice was made ("adult" or "child"). Rows written before this migration have neither.

Adding a column never updates a ledger row; on SQLite, should the rebuild of consent_event
drop its append-only triggers (migration 0004), they are created again here, as 0008 does."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

SQLITE_TRIGGERS = [
    "CREATE TRIGGER IF NOT EXISTS consent_event_no_update BEFORE UPDATE ON consent_event "
    "BEGIN SELECT RAISE(ABORT, 'consent events are append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS consent_event_no_delete BEFORE DELETE ON consent_event "
    "BEGIN SELECT RAISE(ABORT, 'consent events are append-only'); END",
]


async def keep_ledger_append_only(apps, editor):
    if editor.client.capabilities.dialect == "sqlite":
        for statement in SQLITE_TRIGGERS:
            await editor.client.execute_script(statement)


async def nothing(apps, editor):
    """Going back, the triggers stay: they belong to migration 0004."""


class Migration(migrations.Migration):
    dependencies = [("models", "0011_api_client_system")]

    initial = False

    operations = [
        ops.AddField(
            model_name="NoticeVersion",
            name="child_texts",
            field=fields.JSONField(null=True),
        ),
        ops.AddField(
            model_name="NoticeVersion",
            name="child_hash",
            field=fields.CharField(null=True, max_length=64),
        ),
        ops.AddField(
            model_name="ConsentEvent",
            name="notice_audience",
            field=fields.CharField(null=True, max_length=10),
        ),
        ops.RunPython(keep_ledger_append_only, nothing),
    ]
