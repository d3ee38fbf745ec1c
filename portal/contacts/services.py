"""Keeping, reading and erasing the contact details messages go to. Every write runs in the
caller's transaction, with the consent it follows: a detail is kept only while a message
choice on its channel is on (the decision use cases check that; portal.erasure erases it).
A detail is sealed under the patron's key for its channel (portal.retained_keys): erasing
destroys the key, and replacing a detail replaces the key, so no older copy can be read."""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Any

from portal.contacts.models import MessageContact
from portal.contacts.policy import normalised
from portal.db import Erasure, fetch_rows
from portal.retained_keys.policy import CONTACT_STORE, PatronKey, SealError, contact_store
from portal.retained_keys.services import (
    destroy_key,
    key_for,
    key_of,
    keys_of,
    replace_key,
    unwrapped,
)

TABLE = MessageContact._meta.db_table
TABLES = [TABLE]


def _open(key: PatronKey, sealed: str) -> str:
    return key.open(TABLE, "value", sealed)


def _opened_or_none(key: PatronKey, sealed: str) -> str | None:
    try:
        return _open(key, sealed)
    except SealError:  # sealed under a key since destroyed: nothing to compare with
        return None


async def contact_of(patron_id: int, channel: str) -> str | None:
    contact = await MessageContact.get_or_none(patron_id=patron_id, channel=channel)
    if contact is None:
        return None
    key = await key_of(patron_id, contact_store(channel))
    return _open(key, contact.value) if key else None


# With each detail's key, in the one query (the API's hot path): the key of store
# "contact:<channel>" and the wrapping key it is wrapped under (portal.retained_keys).
_CONTACTS_QUERY = (
    "SELECT c.patron_id, c.channel, c.value, k.store, k.key, w.key AS wrapping "
    "FROM message_contact c "
    "JOIN retained_data_key k ON k.patron_id = c.patron_id AND k.store = 'contact:' || c.channel "
    "JOIN retained_key_wrap w ON w.id = k.wrapped_by_id "
    "WHERE c.patron_id IN ({})"
)


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
        key = PatronKey(row["patron_id"], unwrapped(row))
        found.setdefault(row["patron_id"], {})[row["channel"]] = _open(key, row["value"])
    return found


async def keep_contact(
    erasure: Erasure, patron_id: int, channel: str, raw: str, *, region: str, now: datetime
) -> str:
    """Validate and keep (or replace) the patron's contact detail for a channel; returns it
    as kept. ContactError when it cannot be used: nothing is written."""
    value = normalised(channel, raw, region=region)
    store = contact_store(channel)
    contact = await MessageContact.filter(patron_id=patron_id, channel=channel).first()
    if contact is None:
        key = await key_for(patron_id, store, now=now)
        await MessageContact.create(
            patron_id=patron_id,
            channel=channel,
            value=key.seal(TABLE, "value", value),
            changed_at=now,
        )
        return value
    key = await key_for(patron_id, store, now=now)
    if _opened_or_none(key, contact.value) != value:
        # The number replaced goes with its key: an older copy of the row is unreadable.
        key = await replace_key(erasure, patron_id, store, now=now)
        contact.value, contact.changed_at = key.seal(TABLE, "value", value), now
        await contact.save(update_fields=["value", "changed_at"])
    return value


async def erase_contact(erasure: Erasure, patron_id: int, channel: str) -> int:
    """Delete the patron's detail for a channel and destroy its key, in the caller's erasing
    transaction. Returns the rows deleted."""
    deleted: int = await MessageContact.filter(patron_id=patron_id, channel=channel).delete()
    await destroy_key(erasure, patron_id, contact_store(channel))
    return deleted


async def export(patron_id: int) -> list[dict[str, Any]]:
    keys = await keys_of([patron_id], CONTACT_STORE)
    return [
        {
            "channel": contact.channel,
            "value": _open(key, contact.value),
            "changed_at": contact.changed_at.isoformat(),
        }
        for contact in await MessageContact.filter(patron_id=patron_id).order_by("channel")
        if (key := keys.get((patron_id, contact_store(contact.channel)))) is not None
    ]
