"""Keeping, reading and erasing the contact details messages go to. Every write runs in the
caller's transaction, with the consent it follows: a detail is kept only while a message
choice on its channel is on (the decision use cases check that; portal.erasure erases it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from portal.contacts.models import MessageContact
from portal.contacts.policy import normalised

TABLES = [MessageContact._meta.db_table]


async def contact_of(patron_id: int, channel: str) -> str | None:
    contact = await MessageContact.get_or_none(patron_id=patron_id, channel=channel)
    return contact.value if contact else None


async def contacts_of(patron_ids: list[int]) -> dict[int, dict[str, str]]:
    """Each patron's contact details by channel (none for a patron with none)."""
    found: dict[int, dict[str, str]] = {}
    for contact in await MessageContact.filter(patron_id__in=patron_ids):
        found.setdefault(contact.patron_id, {})[contact.channel] = contact.value
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
