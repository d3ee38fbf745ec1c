"""The SQLite engine Tortoise loads for the portal (`portal.db` names it): Tortoise's own client,
except that every transaction takes the write lock when it begins. Tortoise picks a client
from its engine module's `client_class`, and a migration's schema editor from the client's
module name, which must say "sqlite"."""

from __future__ import annotations

import sqlite3

from tortoise.backends.base.client import TransactionContext
from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
)
from tortoise.exceptions import TransactionManagementError


class _ImmediateTransaction(SqliteTransactionWrapper):
    """A deferred BEGIN reads from a snapshot, and when another process (`portal serve`,
    `portal deliver`, a verb) commits before the transaction's first write, that write fails
    at once with "database is locked": the snapshot is stale, so no busy wait can help.
    Beginning IMMEDIATE waits for the write lock instead (up to the busy timeout) and then
    reads what is current. Inside one process Tortoise already runs one transaction at a
    time, so only other processes ever wait, and reads outside a transaction never do."""

    async def begin(self) -> None:
        try:
            await self._connection.commit()
            await self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise TransactionManagementError(exc) from exc


class ImmediateSqliteClient(SqliteClient):
    def _in_transaction(self) -> TransactionContext:
        return SqliteTransactionContext(_ImmediateTransaction(self), self._lock)


client_class = ImmediateSqliteClient
