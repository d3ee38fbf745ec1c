"""The library's catalog of services as published: its shapes (services, terms, notices,
connected systems), what makes a change material (new data, new recipient, new purpose,
longer retention — docs/PROMISES.md, "Notice version") and a notice's content hash.
A service offered to children below the guardian-consent age also carries a child's version
of its notice in every enabled locale: the same facts in words a child can read (GDPR recital
58, the UK Age Appropriate Design Code, standard 4). Reading the catalog the privacy officer
writes is portal.catalog.parsing.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

from portal.catalog.jurisdiction import (
    DEFAULT_PRESET,
    HIGHEST_GUARDIAN_CONSENT_AGE,
    PRESETS,
    JurisdictionPolicy,
)
from portal.errors import CatalogCode, DomainError

# A service's or connected system's key: what the catalog accepts, and all a lookup by key
# needs to try (a longer or other key is refused before it reaches the 40-character column).
KEY_LENGTH = 40
KEY_PATTERN = re.compile(r"[a-z][a-z0-9_]{1,39}")


def is_key(value: str) -> bool:
    return KEY_PATTERN.fullmatch(value) is not None


NOTICE_FIELDS = ("title", "summary", "data", "purpose", "recipients", "retention", "withdraw")


class CatalogError(DomainError):
    """The catalog cannot be published; `problems` names each thing to fix (for the privacy
    officer, in the catalog's own terms)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(CatalogCode.INVALID)
        self.problems = problems

    def __str__(self) -> str:
        return "; ".join(self.problems)


@dataclass(frozen=True)
class Terms:
    """What a consent actually agrees to. A notice's wording may change; these may not,
    without a fresh opt-in."""

    purposes: tuple[str, ...]
    data_categories: tuple[str, ...]
    recipients: tuple[str, ...]
    retention_days: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "purposes": list(self.purposes),
            "data_categories": list(self.data_categories),
            "recipients": list(self.recipients),
            "retention_days": self.retention_days,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Terms:
        return cls(
            purposes=tuple(raw["purposes"]),
            data_categories=tuple(raw["data_categories"]),
            recipients=tuple(raw["recipients"]),
            retention_days=int(raw["retention_days"]),
        )


@dataclass(frozen=True)
class NoticeText:
    title: str
    summary: str
    data: str
    purpose: str
    recipients: str
    retention: str
    withdraw: str
    # A message choice's own lines beside the messaging service's notice ("kind_title",
    # "kind_says"): what the patron read about the one kind of message, or about titles.
    extra: tuple[tuple[str, str], ...] = ()

    def as_dict(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in NOTICE_FIELDS} | dict(self.extra)


@dataclass(frozen=True)
class SystemSpec:
    """A connected system: somewhere outside the portal that holds a service's data (the
    ILS, the SMS gateway, an e-book vendor) and receives its deletion requests."""

    key: str
    name: str  # shown to patrons: "Riverside library system"
    endpoint: str  # where deletion requests are sent (HTTPS)


# The channels a library may send its messages by (the contact detail each needs is
# portal.contacts.policy's).
CHANNELS = ("email", "sms", "phone")
# What a message may carry beyond its kind. Titles and authors are not here: they are only
# ever sent to a patron who chose "titles in messages" (its own consent).
MESSAGE_CONTENTS = ("branch", "pickup_by", "due_date", "item_count", "expiry_date", "fee")
TITLES_CHOICE = "titles"
PAIR_SEPARATOR = "__"


@dataclass(frozen=True)
class MessageKindSpec:
    key: str
    ils_name: str  # the library system's own name for it (Koha: Hold_Filled)
    contains: tuple[str, ...]  # MESSAGE_CONTENTS it may carry
    purposes: tuple[str, ...] = ()  # its own purposes; none: the messaging service's


@dataclass(frozen=True)
class MessageChoice:
    """What one published service is within a messaging service: one kind of message by one
    channel, or (kind and channel None) the choice of titles in messages. Each is consented
    to on its own, with the messaging service's one notice and its own line."""

    group: str  # the messaging service's key
    kind: str | None
    channel: str | None
    ils_name: str | None = None
    contains: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "kind": self.kind,
            "channel": self.channel,
            "ils_name": self.ils_name,
            "contains": list(self.contains),
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> MessageChoice:
        return cls(
            group=raw["group"],
            kind=raw.get("kind"),
            channel=raw.get("channel"),
            ils_name=raw.get("ils_name"),
            contains=tuple(raw.get("contains") or ()),
        )


def choice_title(texts: dict[str, str]) -> str:
    """A notice version's title as a record names it: a message choice's with its own
    (the kind's, or titles in messages'); the channel is named by the page."""
    title = texts.get("title", "")
    kind = texts.get("kind_title")
    return f"{title}: {kind}" if kind else title


def pair_key(group: str, kind: str, channel: str) -> str:
    return PAIR_SEPARATOR.join((group, kind, channel))


def titles_key(group: str) -> str:
    return PAIR_SEPARATOR.join((group, TITLES_CHOICE))


@dataclass(frozen=True)
class MessageWords:
    """A messaging notice's own lines in one locale: per kind (title, what it says), and
    the line about titles in messages."""

    kinds: dict[str, tuple[str, str]]  # per kind: its title, what a message says
    titles: tuple[str, str]  # titles in messages: its title, what choosing it means


@dataclass(frozen=True)
class CarryOver:
    """A published service of one channel (e.g. text message reminders) that the messaging
    service replaces: its consents in force become exactly these kinds on that channel."""

    service: str
    channel: str
    kinds: tuple[str, ...]


@dataclass(frozen=True)
class MessagesSpec:
    channels: tuple[str, ...]
    kinds: tuple[MessageKindSpec, ...]
    # Systems holding one channel's contact detail beyond the service's own (the SMS gateway).
    channel_systems: dict[str, tuple[str, ...]] = field(default_factory=dict)
    carry_over: tuple[CarryOver, ...] = ()
    # What one channel adds to the terms: (data categories, recipients), e.g. a mobile
    # number and the company that sends the texts.
    channel_terms: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = field(default_factory=dict)

    def terms_of(self, base: Terms, kind: MessageKindSpec | None, channel: str | None) -> Terms:
        """A choice's own terms: its kind's purposes, and what its channel adds to the data
        and the recipients (titles in messages: every channel's recipients, and the titles)."""
        if kind is None:
            every = tuple(item for _, added in self.channel_terms.values() for item in added)
            return Terms(
                purposes=base.purposes,
                data_categories=_merged(base.data_categories, (TITLES_DATA,)),
                recipients=_merged(base.recipients, every),
                retention_days=base.retention_days,
            )
        data, recipients = self.channel_terms.get(channel or "", ((), ()))
        return Terms(
            purposes=kind.purposes or base.purposes,
            data_categories=_merged(base.data_categories, data),
            recipients=_merged(base.recipients, recipients),
            retention_days=base.retention_days,
        )


TITLES_DATA = "item_titles_in_messages"


def _merged(first: tuple[str, ...], then: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(first + then))


@dataclass(frozen=True)
class ServiceSpec:
    key: str
    store: str | None
    terms: Terms
    notices: dict[str, NoticeText]
    minimum_age: int | None = None
    systems: tuple[str, ...] = ()  # keys of the connected systems holding its data
    # The child's version of the notice per locale: the same facts, in a child's words.
    child_notices: dict[str, NoticeText] = field(default_factory=dict)
    # A messaging service: its kinds and channels (published as one service per pair).
    messages: MessagesSpec | None = None
    # Per locale, each kind's title and line, and the titles choice's line (messaging only).
    message_words: dict[str, MessageWords] = field(default_factory=dict)
    child_message_words: dict[str, MessageWords] = field(default_factory=dict)
    # Set on each service published for one message choice.
    choice: MessageChoice | None = None


@dataclass(frozen=True)
class Catalog:
    library_name: str
    services: tuple[ServiceSpec, ...]
    jurisdiction: JurisdictionPolicy = PRESETS[DEFAULT_PRESET]
    systems: tuple[SystemSpec, ...] = ()
    # The library's name per locale ([library.name_in]); a locale not listed shows `library_name`.
    library_names: dict[str, str] = field(default_factory=dict)

    @property
    def published(self) -> tuple[ServiceSpec, ...]:
        """Every service as published: a messaging service as its message choices."""
        return tuple(one for spec in self.services for one in published_services(spec))

    @property
    def carried_over(self) -> dict[str, tuple[ServiceSpec, CarryOver]]:
        """Services a messaging service replaces, by key: the messaging service and how."""
        return {
            moved.service: (spec, moved)
            for spec in self.services
            if spec.messages is not None
            for moved in spec.messages.carry_over
        }


def published_services(spec: ServiceSpec) -> tuple[ServiceSpec, ...]:
    """What the catalog's service is published as: itself, or for a messaging service one
    service per kind and channel and one for titles in messages. Each shares the messaging
    service's terms and notice, with its own line added, so adding a kind or a channel is a
    new choice and changes no consent given to another."""
    if spec.messages is None:
        return (spec,)
    messages = spec.messages

    def worded(
        notices: dict[str, NoticeText], words: dict[str, MessageWords], kind: str | None
    ) -> dict[str, NoticeText]:
        out = {}
        for locale, notice in notices.items():
            title, says = words[locale].titles if kind is None else words[locale].kinds[kind]
            out[locale] = replace(notice, extra=(("kind_title", title), ("kind_says", says)))
        return out

    published = []
    for kind in messages.kinds:
        for channel in messages.channels:
            systems = spec.systems + tuple(
                key for key in messages.channel_systems.get(channel, ()) if key not in spec.systems
            )
            published.append(
                replace(
                    spec,
                    key=pair_key(spec.key, kind.key, channel),
                    terms=messages.terms_of(spec.terms, kind, channel),
                    systems=systems,
                    notices=worded(spec.notices, spec.message_words, kind.key),
                    child_notices=worded(spec.child_notices, spec.child_message_words, kind.key),
                    messages=None,
                    message_words={},
                    child_message_words={},
                    choice=MessageChoice(spec.key, kind.key, channel, kind.ils_name, kind.contains),
                )
            )
    published.append(
        replace(
            spec,
            key=titles_key(spec.key),
            terms=messages.terms_of(spec.terms, None, None),
            notices=worded(spec.notices, spec.message_words, None),
            child_notices=worded(spec.child_notices, spec.child_message_words, None),
            messages=None,
            message_words={},
            child_message_words={},
            choice=MessageChoice(spec.key, None, None),
        )
    )
    return tuple(published)


def is_material_change(old: Terms, new: Terms) -> bool:
    """Anything the patron did not agree to before needs their fresh consent."""
    return (
        not set(new.purposes) <= set(old.purposes)
        or not set(new.data_categories) <= set(old.data_categories)
        or not set(new.recipients) <= set(old.recipients)
        or new.retention_days > old.retention_days
    )


def stale_child_versions(
    published: dict[str, dict[str, str] | None], spec: ServiceSpec
) -> list[str]:
    """Locales whose child's version is word for word the published one although the terms
    change materially: the child would be asked again with yesterday's facts."""
    return sorted(
        locale
        for locale, child in spec.child_notices.items()
        if published.get(locale) is not None and published[locale] == child.as_dict()
    )


def offered_below_consent_age(minimum_age: int | None, library: JurisdictionPolicy) -> bool:
    """Whether a child below the guardian-consent age can meet the service. A patron may
    carry their own jurisdiction preset (GDPR-DE: 16), so the highest consent age any patron
    of the library can have counts, not only the library's own."""
    highest = max(library.guardian_consent_below, HIGHEST_GUARDIAN_CONSENT_AGE)
    return minimum_age is None or minimum_age < highest


def content_hash(
    locale: str, terms: Terms, notice: NoticeText, *, audience: str | None = None
) -> str:
    """`audience` "child" for a child's version: its hash never equals the adult text's."""
    payload: dict[str, Any] = {
        "locale": locale,
        "terms": terms.as_dict(),
        "notice": notice.as_dict(),
    }
    if audience is not None:
        payload["audience"] = audience
    canonical = json.dumps(
        payload,
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
