"""The consent ledger is append-only in the database itself: UPDATE, DELETE and TRUNCATE on
consent_event are refused by triggers, whatever the caller (ORM, raw SQL, a console).

SQLite rebuilds a table to alter a column, and the rebuild drops its triggers: a later
migration that alters consent_event must create them again (the ledger tests would fail).
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

SQLITE = [
    "CREATE TRIGGER consent_event_no_update BEFORE UPDATE ON consent_event "
    "BEGIN SELECT RAISE(ABORT, 'consent events are append-only'); END",
    "CREATE TRIGGER consent_event_no_delete BEFORE DELETE ON consent_event "
    "BEGIN SELECT RAISE(ABORT, 'consent events are append-only'); END",
]
SQLITE_REVERSE = [
    "DROP TRIGGER consent_event_no_update",
    "DROP TRIGGER consent_event_no_delete",
]

POSTGRES = [
    "CREATE FUNCTION consent_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN RAISE EXCEPTION 'consent events are append-only' USING ERRCODE = 'restrict_violation'; END $$",
    "CREATE TRIGGER consent_event_no_change BEFORE UPDATE OR DELETE ON consent_event "
    "FOR EACH ROW EXECUTE FUNCTION consent_event_append_only()",
    "CREATE TRIGGER consent_event_no_truncate BEFORE TRUNCATE ON consent_event "
    "FOR EACH STATEMENT EXECUTE FUNCTION consent_event_append_only()",
]
POSTGRES_REVERSE = [
    "DROP TRIGGER consent_event_no_truncate ON consent_event",
    "DROP TRIGGER consent_event_no_change ON consent_event",
    "DROP FUNCTION consent_event_append_only()",
]


def _statements(editor, sqlite, postgres):
    dialect = editor.client.capabilities.dialect
    if dialect == "sqlite":
        return sqlite
    if dialect == "postgres":
        return postgres
    raise RuntimeError(f"no append-only trigger for the {dialect} database")


async def forward(apps, editor):
    for statement in _statements(editor, SQLITE, POSTGRES):
        await editor.client.execute_script(statement)


async def backward(apps, editor):
    for statement in _statements(editor, SQLITE_REVERSE, POSTGRES_REVERSE):
        await editor.client.execute_script(statement)


class Migration(migrations.Migration):
    dependencies = [("models", "0003_ledger_channels")]

    initial = False

    operations = [ops.RunPython(forward, backward)]
