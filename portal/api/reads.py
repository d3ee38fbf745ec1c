"""What library systems may read of patrons' message choices (/api/v1/message-preferences):
per patron, the kinds of message by channel that are on now, by the library system's own
names, and when asked the contact detail of each channel in use. "On" is the consent check's
rule (portal.consent.policy.check_answer): given, not paused, under the current notice, and
offered at the patron's age; so a guardian's rules and a paused choice count as they do there.
A batch costs one query for the patrons and their choices, and one for contact details,
whatever its size."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date
from typing import Any

from portal.catalog.jurisdiction import is_offered
from portal.catalog.policy import MessageChoice
from portal.catalog.services import CatalogSnapshot, published_catalog
from portal.consent.policy import CheckAnswer, check_answer
from portal.contacts.services import contacts_of
from portal.db import fetch_rows


@dataclass(frozen=True)
class PatronAsked:
    """One patron as a library system names them: by their reference (what connected systems
    are told), or by their card's keyed hash (portal.patrons.services.card_lookup)."""

    reference: str | None = None
    card_lookup: str | None = None


@dataclass(frozen=True)
class MessageOn:
    """One kind of message by one channel the patron agreed to, as the library system
    names it, with what it may carry and whether it may name the title and author."""

    group: str  # the messaging service's key
    kind: str  # the library system's own name for it (Koha: Hold_Filled)
    channel: str
    contains: tuple[str, ...]
    titles: bool


@dataclass(frozen=True)
class Preferences:
    patron: str  # the patron's reference
    messages: tuple[MessageOn, ...]
    # Per channel of a message that is on; None when the caller may not read them.
    contacts: dict[str, str] | None = None


# Each patron asked, with every consent they gave (paused or not: the rule decides; those
# that are not message choices are left out after). `s.granted` alone is a true test on
# both engines (an integer in SQLite).
_QUERY = (
    "SELECT p.id, p.reference, p.card_lookup, p.born_on, s.service_id, s.terms_revision, "
    "s.suspended_at IS NOT NULL AS suspended FROM patron p LEFT JOIN consent_state s "
    "ON s.patron_id = p.id AND s.granted WHERE {patrons}"
)


@functools.lru_cache(maxsize=512)
def _query(references: int, lookups: int) -> str:
    """One text per shape, so the driver's statement cache prepares each shape once. A patron
    made before references had a key of their own is known by their card's keyed hash."""

    def marks(count: int) -> str:
        return ", ".join("?" * count)

    patrons = [f"p.card_lookup IN ({marks(lookups)})"]
    if references:
        patrons.insert(0, f"p.reference IN ({marks(references)})")
    return _QUERY.format(patrons=" OR ".join(patrons))


async def message_preferences(
    asked: list[PatronAsked], *, today: date, with_contacts: bool
) -> list[Preferences | None]:
    """Each patron's choices in the order asked, None for a patron the portal does not know."""
    if not asked:
        return []
    choices = _choices(await published_catalog())
    references = sorted({one.reference for one in asked if one.reference})
    # A reference may also be a patron's card lookup, for accounts made before references.
    lookups = sorted({one.card_lookup for one in asked if one.card_lookup} | set(references))
    rows = await fetch_rows(_query(len(references), len(lookups)), *references, *lookups)
    patrons: dict[int, dict[str, Any]] = {}
    given: dict[int, dict[int, dict[str, Any]]] = {}
    for row in rows:
        patrons[row["id"]] = row
        if row["service_id"] in choices:
            given.setdefault(row["id"], {})[row["service_id"]] = row
    by_reference = {row["reference"]: row["id"] for row in patrons.values() if row["reference"]}
    for row in patrons.values():
        if row["reference"] is None:
            by_reference.setdefault(row["card_lookup"], row["id"])
    by_lookup = {row["card_lookup"]: row["id"] for row in patrons.values()}
    found = [
        by_reference.get(one.reference) if one.reference else by_lookup.get(one.card_lookup or "")
        for one in asked
    ]
    answers = {
        patron_id: _messages_on(choices, given.get(patron_id, {}), _born_on(row), today)
        for patron_id, row in patrons.items()
    }
    contacts: dict[int, dict[str, str]] = {}
    if with_contacts and (using := [pid for pid, on in answers.items() if on]):
        contacts = await contacts_of(using)
    return [
        None
        if patron_id is None
        else Preferences(
            patrons[patron_id]["reference"] or patrons[patron_id]["card_lookup"],
            answers[patron_id],
            _in_use(contacts.get(patron_id, {}), answers[patron_id]) if with_contacts else None,
        )
        for patron_id in found
    ]


@dataclass(frozen=True)
class _Choice:
    """A published message choice, with what the rule needs and both answers it can give
    (None for the titles choice, which is said with each message instead)."""

    position: int
    terms_revision: int
    minimum_age: int | None
    group: str
    plain: MessageOn | None
    titled: MessageOn | None


# The choices of the catalog snapshot in memory, made once per publication, not per request.
_CHOICES: list[tuple[CatalogSnapshot, dict[int, _Choice]]] = []


def _choices(catalog: CatalogSnapshot) -> dict[int, _Choice]:
    if _CHOICES and _CHOICES[0][0] is catalog:
        return _CHOICES[0][1]
    choices = {}
    for service in catalog.services:
        choice = service.choice
        if choice is None:
            continue
        pair = choice.kind is not None and choice.channel is not None
        choices[service.id] = _Choice(
            position=service.position,
            terms_revision=service.terms_revision,
            minimum_age=service.minimum_age,
            group=choice.group,
            plain=_message_on(choice, titles=False) if pair else None,
            titled=_message_on(choice, titles=True) if pair else None,
        )
    _CHOICES[:] = [(catalog, choices)]
    return choices


def _message_on(choice: MessageChoice, *, titles: bool) -> MessageOn:
    return MessageOn(
        group=choice.group,
        kind=choice.ils_name or choice.kind or "",
        channel=choice.channel or "",
        contains=choice.contains,
        titles=titles,
    )


def _messages_on(
    choices: dict[int, _Choice],
    given: dict[int, dict[str, Any]],
    born_on: date | None,
    today: date,
) -> tuple[MessageOn, ...]:
    """`given`: the message choices the patron said yes to (a few), by service id."""
    on = [
        choice
        for service_id, state in given.items()
        if check_answer(
            granted=True,
            suspended=bool(state["suspended"]),
            current_terms=state["terms_revision"] == (choice := choices[service_id]).terms_revision,
            offered=is_offered(choice.minimum_age, born_on, today),
        )
        is CheckAnswer.ON
    ]
    if not on:
        return ()
    on.sort(key=lambda choice: choice.position)
    titles = {choice.group for choice in on if choice.plain is None}
    return tuple(
        [
            choice.titled if choice.group in titles else choice.plain
            for choice in on
            if choice.plain is not None and choice.titled is not None
        ]
    )


def _in_use(contacts: dict[str, str], messages: tuple[MessageOn, ...]) -> dict[str, str]:
    """Only the details a message that is on goes to: a channel whose choices are all paused
    keeps its detail for the patron, but no system needs it until one is on again."""
    channels = {message.channel for message in messages}
    return {channel: value for channel, value in sorted(contacts.items()) if channel in channels}


def _born_on(row: dict[str, Any]) -> date | None:
    value = row["born_on"]
    return date.fromisoformat(value) if isinstance(value, str) else value
