"""The staff audit trail is append-only in the database itself, as the consent ledger is
(migration 0004): UPDATE, DELETE and TRUNCATE on staff_audit_event are refused by triggers.

Migration 0006 altered consent_event's channel column; on SQLite such an alteration may
rebuild the table and drop its triggers, so they are created again here when missing."""

from tortoise import migrations
from tortoise.migrations import operations as ops

SQLITE = [
    "CREATE TRIGGER staff_audit_no_update BEFORE UPDATE ON staff_audit_event "
    "BEGIN SELECT RAISE(ABORT, 'staff audit events are append-only'); END",
    "CREATE TRIGGER staff_audit_no_delete BEFORE DELETE ON staff_audit_event "
    "BEGIN SELECT RAISE(ABORT, 'staff audit events are append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS consent_event_no_update BEFORE UPDATE ON consent_event "
    "BEGIN SELECT RAISE(ABORT, 'consent events are append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS consent_event_no_delete BEFORE DELETE ON consent_event "
    "BEGIN SELECT RAISE(ABORT, 'consent events are append-only'); END",
]
SQLITE_REVERSE = [
    "DROP TRIGGER staff_audit_no_update",
    "DROP TRIGGER staff_audit_no_delete",
]

POSTGRES = [
    "CREATE FUNCTION staff_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN RAISE EXCEPTION 'staff audit events are append-only' "
    "USING ERRCODE = 'restrict_violation'; END $$",
    "CREATE TRIGGER staff_audit_no_change BEFORE UPDATE OR DELETE ON staff_audit_event "
    "FOR EACH ROW EXECUTE FUNCTION staff_audit_append_only()",
    "CREATE TRIGGER staff_audit_no_truncate BEFORE TRUNCATE ON staff_audit_event "
    "FOR EACH STATEMENT EXECUTE FUNCTION staff_audit_append_only()",
]
POSTGRES_REVERSE = [
    "DROP TRIGGER staff_audit_no_truncate ON staff_audit_event",
    "DROP TRIGGER staff_audit_no_change ON staff_audit_event",
    "DROP FUNCTION staff_audit_append_only()",
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
    dependencies = [("models", "0006_staff_and_desk")]

    initial = False

    operations = [ops.RunPython(forward, backward)]
