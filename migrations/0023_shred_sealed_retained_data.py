"""Retained data sealed under per-patron keys (portal/retained_keys): the key table, the
sealed columns widened to TEXT (a sealed value is longer than its plaintext), and every row
kept before sealed, so no plaintext is left once `portal migrate` ran.

On SQLite widening a column rebuilds the table, which drops its indexes: they are created
again here, by the names the models give. The migration is not one transaction: the last
step rewrites the tables outside any (PostgreSQL's VACUUM FULL cannot run in one), so that
the plaintext rows the sealing replaced leave no dead tuple behind; on SQLite, with secure
deletion on, the replaced cells are zeroed and the write-ahead log is truncated. While SQLite rebuilds saved_list its foreign keys are
off, or dropping the old table would delete every item through ON DELETE CASCADE. Sealing
skips a value that is already sealed and opens, so running it again after a failure is safe."""

from datetime import UTC, datetime

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from portal.retained_keys.policy import (
    SealError,
    contact_store,
    context,
    new_key,
    open_sealed,
    seal,
)

SQLITE_INDEXES = [
    'CREATE INDEX IF NOT EXISTS "idx_history_ent_patron__076298" ON "history_entry" ("patron_id")',
    'CREATE INDEX IF NOT EXISTS "idx_saved_list_patron__965dc3" ON "saved_list" ("patron_id")',
    'CREATE INDEX IF NOT EXISTS "idx_saved_list__saved_l_069a29" '
    'ON "saved_list_item" ("saved_list_id")',
    'CREATE UNIQUE INDEX IF NOT EXISTS "uid_message_con_patron__52d5fa" '
    'ON "message_contact" ("patron_id", "channel")',
]

# (table, the SELECT of (id, patron_id, store part, columns…) after an id, the columns)
KEPT = [
    (
        "history_entry",
        "SELECT id, patron_id, 'reading_history' AS store, title, author FROM history_entry "
        "WHERE id > ? ORDER BY id LIMIT 1000",
        ("title", "author"),
    ),
    (
        "saved_list",
        "SELECT id, patron_id, 'saved_lists' AS store, name FROM saved_list "
        "WHERE id > ? ORDER BY id LIMIT 1000",
        ("name",),
    ),
    (
        "saved_list_item",
        "SELECT i.id, l.patron_id, 'saved_lists' AS store, i.title FROM saved_list_item i "
        "JOIN saved_list l ON l.id = i.saved_list_id WHERE i.id > ? ORDER BY i.id LIMIT 1000",
        ("title",),
    ),
    (
        "message_contact",
        "SELECT id, patron_id, channel AS store, value FROM message_contact "
        "WHERE id > ? ORDER BY id LIMIT 1000",
        ("value",),
    ),
]


def _numbered(sql):
    parts = sql.split("?")
    return "".join(part + (f"${n}" if n < len(parts) else "") for n, part in enumerate(parts, 1))


async def foreign_keys_off(apps, editor):
    """SQLite rebuilds saved_list to widen its column: dropping the old table with foreign
    keys enforced would delete every saved_list_item through ON DELETE CASCADE."""
    if editor.client.capabilities.dialect == "sqlite":
        await editor.client.execute_script("PRAGMA foreign_keys = OFF")


async def foreign_keys_on(apps, editor):
    if editor.client.capabilities.dialect == "sqlite":
        await editor.client.execute_script("PRAGMA foreign_keys = ON")


async def restore_indexes(apps, editor):
    if editor.client.capabilities.dialect == "sqlite":
        for statement in SQLITE_INDEXES:
            await editor.client.execute_script(statement)


async def seal_kept_rows(apps, editor):
    client = editor.client
    postgres = client.capabilities.dialect == "postgres"

    async def run(sql, *values):
        _, rows = await client.execute_query(_numbered(sql) if postgres else sql, list(values))
        return rows

    now = datetime.now(UTC)
    moment = now if postgres else str(now)
    keys = {
        (row[0], row[1]): bytes(row[2])
        for row in await run("SELECT patron_id, store, key FROM retained_data_key")
    }
    for table, select, columns in KEPT:
        after = 0
        while rows := await run(select, after):
            for row in rows:
                row_id, patron_id, store = row[0], row[1], row[2]
                if table == "message_contact":
                    store = contact_store(store)
                key = keys.get((patron_id, store))
                if key is None:
                    key = keys[(patron_id, store)] = new_key()
                    await run(
                        "INSERT INTO retained_data_key (patron_id, store, key, created_at) "
                        "VALUES (?, ?, ?, ?)",
                        patron_id,
                        store,
                        key,
                        moment,
                    )
                values = []
                for column, value in zip(columns, row[3:], strict=True):
                    where = context(table, column, patron_id)
                    try:
                        open_sealed(key, value, context=where)
                        values.append(value)  # sealed by an earlier, interrupted run
                    except SealError:
                        values.append(seal(key, value, context=where))
                assignments = ", ".join(f"{column} = ?" for column in columns)
                await run(f"UPDATE {table} SET {assignments} WHERE id = ?", *values, row_id)
            after = rows[-1][0]


async def rewrite_tables(apps, editor):
    """Outside a transaction: the plaintext the sealing replaced leaves no bytes behind."""
    client = editor.client
    if client.capabilities.dialect == "postgres":
        for table, _, _ in KEPT:
            await client.execute_script(f'VACUUM FULL "{table}"')
    else:
        await client.execute_script("PRAGMA wal_checkpoint(TRUNCATE)")


async def nothing(apps, editor):
    """Going back, the rows stay sealed: their plaintext is not written again."""


class Migration(migrations.Migration):
    dependencies = [("models", "0022_merkle_ledger_checkpoints")]

    initial = False
    atomic = False  # VACUUM FULL runs outside a transaction; each other step is one

    operations = [
        ops.CreateModel(
            name="RetainedDataKey",
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
                ("store", fields.CharField(max_length=60)),
                ("key", fields.BinaryField()),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "retained_data_key",
                "app": "models",
                "unique_together": (("patron", "store"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.RunPython(foreign_keys_off, foreign_keys_on),
        ops.AlterField(
            model_name="HistoryEntry", name="author", field=fields.TextField(unique=False)
        ),
        ops.AlterField(
            model_name="HistoryEntry", name="title", field=fields.TextField(unique=False)
        ),
        ops.AlterField(
            model_name="MessageContact", name="value", field=fields.TextField(unique=False)
        ),
        ops.AlterField(model_name="SavedList", name="name", field=fields.TextField(unique=False)),
        ops.AlterField(
            model_name="SavedListItem", name="title", field=fields.TextField(unique=False)
        ),
        ops.RunPython(foreign_keys_on, foreign_keys_off),
        ops.RunPython(restore_indexes, nothing),
        ops.RunPython(seal_kept_rows, nothing),
        ops.RunPython(rewrite_tables, nothing, atomic=False),
    ]
