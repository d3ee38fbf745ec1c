"""Restores, on SQLite, the indexes that earlier migrations lost: SQLite rebuilds a table to
alter a column, and the rebuilds of consent_event and consent_state (0002, 0003, 0006, 0008)
dropped the index on each one's patron and consent_state's UNIQUE (patron, service). Without
them a patron's record is a full scan of the ledger, and nothing in the database itself stops
two rows for one consent. PostgreSQL altered the columns in place and kept them.

The names are those the models give (a fresh database made from them has the same ones).
Should a database already hold two states for one patron and service, the unique index is
refused and the migration stops, naming the pairs: which one stands is a decision for the
privacy officer, from the ledger, never a guess made here.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

INDEXES = [
    'CREATE INDEX IF NOT EXISTS "idx_consent_eve_patron__472687" ON "consent_event" ("patron_id")',
    'CREATE INDEX IF NOT EXISTS "idx_consent_sta_patron__d0b5e0" ON "consent_state" ("patron_id")',
    'CREATE UNIQUE INDEX IF NOT EXISTS "uid_consent_sta_patron__429b30" '
    'ON "consent_state" ("patron_id", "service_id")',
]
DUPLICATES = (
    "SELECT patron_id, service_id, COUNT(*) AS n FROM consent_state "
    "GROUP BY patron_id, service_id HAVING COUNT(*) > 1"
)


async def forward(apps, editor):
    if editor.client.capabilities.dialect != "sqlite":
        return
    _, duplicates = await editor.client.execute_query(DUPLICATES)
    if duplicates:
        pairs = ", ".join(f"patron {row[0]} service {row[1]}" for row in duplicates)
        raise RuntimeError(
            f"consent_state holds more than one row for: {pairs}. Keep the row the ledger "
            "supports for each, then run `portal migrate` again."
        )
    for statement in INDEXES:
        await editor.client.execute_script(statement)


async def backward(apps, editor):
    """Nothing to undo: the indexes belong to the models at every earlier migration too."""


class Migration(migrations.Migration):
    dependencies = [("models", "0009_oauth_clients")]

    initial = False

    operations = [ops.RunPython(forward, backward)]
