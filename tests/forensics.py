"""The forensic search of the erasure tests: does any file of the database hold these bytes?"""

from __future__ import annotations

from pathlib import Path

from tortoise.connection import connections


async def files_hold(data: bytes, *, tables: list[str] | None = None, wal: bool = True) -> bool:
    """SQLite: the database, -wal and -shm files. PostgreSQL: the relation files of `tables`,
    or of every table, index and TOAST table of the database and (unless not `wal`) its
    write-ahead log."""
    connection = connections.get("default")
    if connection.capabilities.dialect == "sqlite":
        database = Path(connection.filename)  # type: ignore[attr-defined]
        files = [database, *database.parent.glob(database.name + "-*")]
        return any(data in file.read_bytes() for file in files if file.exists())
    await connection.execute_script("CHECKPOINT")
    if tables is None:
        paths = [
            row["path"]
            for row in await connection.execute_query_dict(
                "SELECT pg_relation_filepath(oid) AS path FROM pg_class "
                "WHERE pg_relation_filepath(oid) IS NOT NULL AND relkind IN ('r', 'i', 't')"
            )
        ] + [
            "pg_wal/" + row["name"]
            for row in await connection.execute_query_dict(
                "SELECT name FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$'"
            )
            if wal
        ]
    else:
        paths = [
            row["path"]
            for row in await connection.execute_query_dict(
                "SELECT pg_relation_filepath(oid) AS path FROM pg_class "
                "WHERE relname = ANY($1::text[])",
                [tables],
            )
        ]
    for path in paths:
        rows = await connection.execute_query_dict(
            "SELECT pg_read_binary_file($1::text, 0, 100000000, true) AS data", [path]
        )
        if rows and rows[0]["data"] is not None and data in bytes(rows[0]["data"]):
            return True
    return False
