"""Keeping, reading and erasing the contact details messages go to. Every write runs in the
caller's transaction, with the consent it follows: a detail is kept only while a message
choice on its channel is on (the decision use cases check that; portal.erasure erases it)."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from portal.contacts.models import MessageContact
from portal.contacts.policy import normalised
from portal.db import fetch_rows

TABLES = [MessageContact._meta.db_table]


async def contact_of(patron_id: int, channel: str) -> str | None:
    contact = await MessageContact.get_or_none(patron_id=patron_id, channel=channel)
    return contact.value if contact else None


_CONTACTS_QUERY = "SELECT patron_id, channel, value FROM message_contact WHERE patron_id IN ({})"


@functools.lru_cache(maxsize=128)
def _contacts_query(patrons: int) -> str:
    """One text per batch size, so the driver's statement cache prepares each once."""
    return _CONTACTS_QUERY.format(", ".join("?" * patrons))


async def contacts_of(patron_ids: list[int]) -> dict[int, dict[str, str]]:
    """Each patron's contact details by channel (none for a patron with none). Raw SQL: the
    API reads a hundred patrons' at once, and building model rows would cost more than the
    query."""
    if not patron_ids:
        return {}
    found: dict[int, dict[str, str]] = {}
    for row in await fetch_rows(_contacts_query(len(patron_ids)), *patron_ids):
        found.setdefault(row["patron_id"], {})[row["channel"]] = row["value"]
    return found


async def keep_contact(
    patron_id: int, channel: str, raw: str, *, region: str, now: datetime
) -> str:
    """Validate and keep (or replace) the patron's contact detail for a channel; returns it
    as kept. ContactError when it cannot be used: nothing is written."""
    value = normalised(channel, raw, region=region)
    contact = await MessageContact.filter(patron_id=patron_id, channel=channel).first()
    if contact is None:
        await MessageContact.create(
            patron_id=patron_id, channel=channel, value=value, changed_at=now
        )
    elif contact.value != value:
        contact.value, contact.changed_at = value, now
        await contact.save(update_fields=["value", "changed_at"])
    return value


async def erase_contact(patron_id: int, channel: str) -> int:
    """Delete the patron's detail for a channel, in the caller's erasing transaction."""
    deleted: int = await MessageContact.filter(patron_id=patron_id, channel=channel).delete()
    return deleted


async def export(patron_id: int) -> list[dict[str, Any]]:
    return [
        {
            "channel": contact.channel,
            "value": contact.value,
            "changed_at": contact.changed_at.isoformat(),
        }
        for contact in await MessageContact.filter(patron_id=patron_id).order_by("channel")
    ]
