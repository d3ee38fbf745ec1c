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
from dataclasses import dataclass, field
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

    def as_dict(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in NOTICE_FIELDS}


@dataclass(frozen=True)
class SystemSpec:
    """A connected system: somewhere outside the portal that holds a service's data (the
    ILS, the SMS gateway, an e-book vendor) and receives its deletion requests."""

    key: str
    name: str  # shown to patrons: "Riverside library system"
    endpoint: str  # where deletion requests are sent (HTTPS)


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


@dataclass(frozen=True)
class Catalog:
    library_name: str
    services: tuple[ServiceSpec, ...]
    jurisdiction: JurisdictionPolicy = PRESETS[DEFAULT_PRESET]
    systems: tuple[SystemSpec, ...] = ()
    # The library's name per locale ([library.name_in]); a locale not listed shows `library_name`.
    library_names: dict[str, str] = field(default_factory=dict)


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
