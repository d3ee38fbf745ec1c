"""Retained-data keys wrapped under the wrapping key of their patron's bucket
(portal/retained_keys): the wrapping-key table, each key's `wrapped_by`, every key kept
before wrapped, and the numbers and addresses in the outbox's requests sealed under the
patron's key for their channel, so that compaction never again rewrites the key table or the
outbox under a lock.

The column is added nullable, filled, then made NOT NULL. On SQLite that last step rebuilds
the key table, which drops its indexes: they are created again here, by the names the models
give. The migration is not one transaction: the last step rewrites the two tables outside any
(PostgreSQL's VACUUM FULL cannot run in one; upgrades have downtime), so that no raw key and
no plaintext number is left in a dead tuple; on SQLite, with secure deletion on, the
replaced cells are zeroed and the write-ahead log is truncated. Each step skips what an
earlier, interrupted run did, so running it again after a failure is safe."""

import json
from datetime import UTC, datetime

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from portal.retained_keys.policy import (
    BUCKETS,
    WRAPPED_BYTES,
    context,
    is_sealed,
    new_key,
    seal,
    unwrap_key,
    wrap_key,
)

BATCH = 1000
# Neither engine keeps the index of a column added and then made NOT NULL.
WRAPPED_BY_INDEX = (
    'CREATE INDEX IF NOT EXISTS "idx_retained_da_wrapped_5152e3" '
    'ON "retained_data_key" ("wrapped_by_id")'
)
SQLITE_INDEXES = [
    'CREATE UNIQUE INDEX IF NOT EXISTS "uid_retained_da_patron__863e02" '
    'ON "retained_data_key" ("patron_id", "store")',
]
# As portal.outbox.policy says: where a request's contact is sealed, and which requests carry one.
CONTACT_TABLE, CONTACT_COLUMN = "outbox_message", "contact"
WITH_CONTACTS = ("consent.given", "contact.changed")


def _numbered(sql):
    parts = sql.split("?")
    return "".join(part + (f"${n}" if n < len(parts) else "") for n, part in enumerate(parts, 1))


def _runner(client):
    postgres = client.capabilities.dialect == "postgres"

    async def run(sql, *values):
        _, rows = await client.execute_query(_numbered(sql) if postgres else sql, list(values))
        return rows

    return run, postgres


async def _wrapping_keys(run):
    """Generation 0 of every bucket that has a key, made where missing: {bucket: (id, key)}."""
    found = {}
    for row in await run("SELECT id, bucket, key FROM retained_key_wrap WHERE generation = 0"):
        found[row[1]] = (row[0], bytes(row[2]))
    return found


async def wrap_every_key(apps, editor):
    run, postgres = _runner(editor.client)
    now = datetime.now(UTC)
    moment = now if postgres else str(now)
    wrappings = await _wrapping_keys(run)
    after = 0
    while rows := await run(
        "SELECT id, patron_id, store, key FROM retained_data_key "
        "WHERE wrapped_by_id IS NULL AND id > ? ORDER BY id LIMIT ?",
        after,
        BATCH,
    ):
        for row_id, patron_id, store, key in rows:
            bucket = patron_id % BUCKETS
            if bucket not in wrappings:
                made = new_key()
                await run(
                    "INSERT INTO retained_key_wrap (bucket, generation, key, created_at, rotate) "
                    "VALUES (?, 0, ?, ?, ?)",
                    bucket,
                    made,
                    moment,
                    False,
                )
                [(made_id,)] = await run(
                    "SELECT id FROM retained_key_wrap WHERE bucket = ? AND generation = 0", bucket
                )
                wrappings[bucket] = (made_id, made)
            wrap_id, wrapping = wrappings[bucket]
            raw = bytes(key)
            assert len(raw) != WRAPPED_BYTES  # a raw key is 32 bytes, a wrapped one 60
            await run(
                "UPDATE retained_data_key SET key = ?, wrapped_by_id = ? WHERE id = ?",
                wrap_key(wrapping, raw, patron_id, store),
                wrap_id,
                row_id,
            )
        after = rows[-1][0]


async def seal_outbox_contacts(apps, editor):
    """Every request that carries a number or address in plaintext, waiting or delivered (a
    delivered one is kept 30 days): sealed under the patron's key for its channel, as the
    portal now writes them. Where that key is gone (the number was erased), the contact is
    taken out, as erasing it would have."""
    run, postgres = _runner(editor.client)
    after = 0
    marks = ", ".join("?" * len(WITH_CONTACTS))
    while rows := await run(
        f"SELECT id, kind, patron_id, body FROM outbox_message WHERE kind IN ({marks}) "
        "AND patron_id IS NOT NULL AND id > ? ORDER BY id LIMIT ?",
        *WITH_CONTACTS,
        after,
        BATCH,
    ):
        for row_id, kind, patron_id, body in rows:
            payload = json.loads(body)
            data = payload.get("data") or {}
            holder = data if kind == "contact.changed" else data.get("message")
            if not isinstance(holder, dict):
                continue
            contact = holder.get("contact")
            if not isinstance(contact, str) or not contact or is_sealed(contact):
                continue
            keys = await run(
                "SELECT k.key, w.key FROM retained_data_key k "
                "JOIN retained_key_wrap w ON w.id = k.wrapped_by_id "
                "WHERE k.patron_id = ? AND k.store = ?",
                patron_id,
                "contact:" + str(holder.get("channel")),
            )
            if keys:
                store = "contact:" + str(holder.get("channel"))
                key = unwrap_key(bytes(keys[0][1]), bytes(keys[0][0]), patron_id, store)
                holder["contact"] = seal(
                    key, contact, context=context(CONTACT_TABLE, CONTACT_COLUMN, patron_id)
                )
            else:
                holder["contact"] = None
            sealed = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
            await run("UPDATE outbox_message SET body = ? WHERE id = ?", sealed, row_id)
        after = rows[-1][0]


async def restore_indexes(apps, editor):
    await editor.client.execute_script(WRAPPED_BY_INDEX)
    if editor.client.capabilities.dialect == "sqlite":
        for statement in SQLITE_INDEXES:
            await editor.client.execute_script(statement)


async def rewrite_tables(apps, editor):
    """Outside a transaction: the raw keys and plaintext numbers replaced leave no bytes."""
    client = editor.client
    if client.capabilities.dialect == "postgres":
        for table in ("retained_data_key", "outbox_message"):
            await client.execute_script(f'VACUUM FULL "{table}"')
    else:
        await client.execute_script("PRAGMA wal_checkpoint(TRUNCATE)")


async def nothing(apps, editor):
    """Going back, the keys stay wrapped and the numbers sealed: nothing is written plain."""


def _wrapped_by(null):
    return fields.ForeignKeyField(
        "models.RetainedKeyWrap",
        source_field="wrapped_by_id",
        db_index=True,
        db_constraint=True,
        to_field="id",
        related_name=False,
        on_delete=OnDelete.RESTRICT,
        null=null,
    )


class Migration(migrations.Migration):
    dependencies = [("models", "0024_batches_job_progress")]

    initial = False
    atomic = False  # VACUUM FULL runs outside a transaction; each other step is one

    operations = [
        ops.CreateModel(
            name="RetainedKeyWrap",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("bucket", fields.IntField()),
                ("generation", fields.IntField()),
                ("key", fields.BinaryField()),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("rotate", fields.BooleanField(default=False)),
            ],
            options={
                "table": "retained_key_wrap",
                "app": "models",
                "unique_together": (("bucket", "generation"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.AddField(model_name="RetainedDataKey", name="wrapped_by", field=_wrapped_by(True)),
        ops.RunPython(wrap_every_key, nothing),
        ops.RunPython(seal_outbox_contacts, nothing),
        ops.AlterField(model_name="RetainedDataKey", name="wrapped_by", field=_wrapped_by(False)),
        ops.RunPython(restore_indexes, nothing),
        ops.RunPython(rewrite_tables, nothing, atomic=False),
    ]
