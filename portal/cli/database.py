"""The one way a verb reaches the database: its work runs with Tortoise open, closed after;
and who runs it, for the staff audit trail."""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Awaitable, Callable

from tortoise import Tortoise

from portal.clock import utcnow
from portal.db import tortoise_config
from portal.settings import Settings
from portal.staff.services import StaffIdentity, command_line_operator


def with_db(settings: Settings, work: Callable[[], Awaitable[int]]) -> int:
    """Runs `work` with the database open; its result is the exit status."""

    async def opened() -> int:
        await Tortoise.init(config=tortoise_config(settings.database_url))
        try:
            return await work()
        finally:
            await Tortoise.close_connections()

    return asyncio.run(opened())


async def operator(settings: Settings) -> StaffIdentity:
    """The staff audit trail records command-line actions, by the server login running them."""
    return await command_line_operator(settings.secret_key, getpass.getuser(), now=utcnow())
