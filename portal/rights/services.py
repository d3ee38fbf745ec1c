"""A patron's rights over what the portal keeps: signed receipts of their decisions, a copy
of everything kept about them, and the history of every privacy notice as published.
Receipts are signed when asked for, from the append-only ledger (the record is the truth;
a receipt is a signed copy of one line of it)."""

from __future__ import annotations

import base64
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from portal.catalog.models import NoticeVersion, Publication, Service
from portal.catalog.policy import MessageChoice, choice_title, is_key
from portal.consent.reads import privacy_overview
from portal.contacts.services import export as export_contacts
from portal.credentials.policy import KeyPurpose, keyed_hash
from portal.guardians.models import GuardianLink
from portal.ledger.models import ConsentEvent
from portal.ledger.services import entries
from portal.ledger.vocabulary import Method as LinkMethod
from portal.locale_codes import canonical, spellings
from portal.patrons.models import Patron
from portal.rights.keys import ALGORITHM, ReceiptKeys
from portal.rights.policy import (
    DECISIONS,
    EXPORT_SCHEMA_VERSION,
    MAX_RECEIPT_BYTES,
    MAX_REVISION,
    RECEIPT_TYPE,
    Fact,
    ReceiptFacts,
    changed_facts,
    is_low_s,
    is_receipt_reference,
    low_s,
    receipt_reference,
)
from portal.stores.registry import STORES

LOCALE_MAX = 10  # notice_version.locale

# --- receipts ------------------------------------------------------------------------------


async def _terms_at(service_id: int, moment: datetime) -> NoticeVersion | None:
    """The notice version in force when an event without one happened (turning off without
    a notice on screen): its terms are what the consent covered."""
    found: NoticeVersion | None = (
        await NoticeVersion.filter(service_id=service_id, published_at__lte=moment)
        .order_by("-revision", "id")
        .first()
    )
    return found


async def receipt_facts(
    patron_id: int,
    reference: str,
    *,
    secret: str,
    notice_url: Callable[[str, int, str, bool], str] | None = None,
) -> ReceiptFacts | None:
    """The patron's decision that `reference` names (policy.receipt_reference), None when no
    decision of theirs has it: another patron's reference finds nothing."""
    if not is_receipt_reference(reference):
        return None
    event = None
    for candidate in await ConsentEvent.filter(patron_id=patron_id, kind__in=list(DECISIONS)):
        if hmac.compare_digest(receipt_reference(secret, candidate.id), reference):
            event = candidate
            break
    if event is None or event.service_id is None:
        return None
    service = await Service.get(id=event.service_id)
    shown = (
        await NoticeVersion.get_or_none(id=event.notice_version_id)
        if event.notice_version_id
        else None
    )
    terms_source = shown or await _terms_at(service.id, event.occurred_at)
    title_source = shown or (
        await NoticeVersion.filter(service_id=service.id, revision=service.revision)
        .order_by("id")
        .first()
    )
    publication = await Publication.all().order_by("-id").first()
    patron = await Patron.get(id=patron_id)
    return ReceiptFacts(
        event_id=event.id,
        kind=event.kind,
        controller=publication.library_name if publication else "",
        # Receipts are shown to others to be checked: their subject is a keyed hash made for
        # receipts alone, never the card's lookup key in the database.
        subject=keyed_hash(secret, KeyPurpose.RECEIPT_SUBJECT, str(patron.id)),
        service_key=service.key,
        service_title=choice_title(title_source.texts) if title_source else service.key,
        message=_message_claim(service),
        terms=terms_source.terms if terms_source else service.terms,
        notice_version_id=shown.id if shown else None,
        notice_revision=shown.revision if shown else None,
        notice_hash=event.notice_hash,
        locale=event.locale,
        occurred_at=event.occurred_at,
        method=event.method.value,
        actor=event.actor.value,
        channel=event.channel.value,
        witnessed_by=event.witnessed_by,
        notice_url=(
            notice_url(service.key, shown.revision, shown.locale, event.notice_audience == "child")
            if shown and notice_url
            else None
        ),
    )


def _message_claim(service: Service) -> dict[str, str] | None:
    """For a message choice: which kind (the library system's name too) and which channel."""
    if not service.choice:
        return None
    choice = MessageChoice.from_dict(service.choice)
    if choice.kind is None:
        return {"group": choice.group, "titles": "yes"}
    return {
        "group": choice.group,
        "kind": choice.kind,
        "ils_name": choice.ils_name or "",
        "channel": choice.channel or "",
    }


def sign_receipt(claims: dict[str, Any], keys: ReceiptKeys, *, typ: str = RECEIPT_TYPE) -> str:
    """A JWS in compact serialisation, signed with the current key (its kid in the header),
    its signature in the low-S form (the only one verify_receipt accepts). The ledger's
    checkpoints are signed so too, with a `typ` of their own."""
    payload = json.dumps(claims, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    header = {"alg": ALGORITHM, "kid": keys.signing.kid, "typ": typ}
    token = jws.serialize_compact(header, payload.encode("utf-8"), keys.signing, [ALGORITHM])
    signed, _, signature = token.rpartition(".")
    return f"{signed}.{_base64url(low_s(_unbase64url(signature)))}"


def _base64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unbase64url(text: str) -> bytes:
    """Strict (RFC 7515 §2: no padding, the URL-safe alphabet only); ValueError otherwise."""
    if not text.isascii() or "=" in text:
        raise ValueError("not base64url")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _base64url(raw) != text:  # trailing bits set: another spelling of the same bytes
        raise ValueError("not canonical base64url")
    return raw


@dataclass(frozen=True)
class Verification:
    valid: bool
    claims: dict[str, Any] = field(default_factory=dict)
    key_id: str | None = None


def verify_receipt(token: str, public: KeySet, *, typ: str = RECEIPT_TYPE) -> Verification:
    """Valid only when signed by one of the library's keys (current or retired), as a
    receipt (or what `typ` names), and unchanged since: any altered byte fails."""
    token = "".join(token.split())
    if not token or len(token) > MAX_RECEIPT_BYTES:
        return Verification(valid=False)
    try:
        # Plain ECDSA also accepts (r, n - s): a second valid form of the same receipt.
        if not is_low_s(_unbase64url(token.rpartition(".")[2])):
            return Verification(valid=False)
        signed = jws.deserialize_compact(token, public, algorithms=[ALGORITHM])
        claims = json.loads(signed.payload)
    except (JoseError, ValueError, TypeError, KeyError):  # a bad base64 is a ValueError
        return Verification(valid=False)
    if signed.protected.get("typ") != typ or not isinstance(claims, dict):
        return Verification(valid=False)
    return Verification(valid=True, claims=claims, key_id=signed.protected.get("kid"))


# --- a copy of everything kept -------------------------------------------------------------


def _moment(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds").replace("+00:00", "Z") if value else None


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _link(link: GuardianLink) -> dict[str, Any]:
    return {
        "linked_at": _moment(link.linked_at),
        "checked_in_person": link.method == LinkMethod.DESK_HANDOVER,
        "ended_at": _moment(link.ended_at),
        "end_reason": link.end_reason,
    }


async def export_patron(patron_id: int, locale: str, *, now: datetime) -> dict[str, Any]:
    """Everything the portal keeps about the patron (schema: deploy/my-data.schema.json).
    A guardian's copy names their links to children, never a child's choices or library
    use: that is the child's (docs/PROMISES.md promise 6)."""
    patron = await Patron.get(id=patron_id)
    publication = await Publication.all().order_by("-id").first()
    overview = await privacy_overview(patron_id, locale)
    guardians = await GuardianLink.filter(child_id=patron_id).order_by("linked_at")
    children = await GuardianLink.filter(guardian_id=patron_id).order_by("linked_at")
    retained: dict[str, Any] = {}
    for key, store in STORES.items():
        retained[key] = await store.export(patron_id)
    retained["message_contacts"] = await export_contacts(patron_id)
    return {
        "schema_version": EXPORT_SCHEMA_VERSION,
        "exported_at": _moment(now),
        "controller": {"name": publication.library_name if publication else ""},
        "profile": {
            "language": patron.locale,
            "date_of_birth": _day(patron.born_on),
            "jurisdiction": patron.jurisdiction,
            "shares_choices_with_guardians": patron.shares_with_guardians,
            "account_created": _moment(patron.created_at),
            "came_of_age": _moment(patron.came_of_age_at),
            "pin_set": patron.pin_hash is not None,
            # A child's copy does not name the guardian; a guardian's names each child only
            # by the label the guardian chose.
            "guardians": [_link(link) for link in guardians],
            "children": [{"label": link.label, **_link(link)} for link in children],
        },
        "consents": [
            {
                "service": item.service.key,
                "title": choice_title(item.notice.texts),
                "status": item.status.value,
                "since": _moment(item.since),
            }
            | ({"message": item.service.choice.as_dict()} if item.service.choice else {})
            for item in overview.services
        ],
        "consent_record": [
            {
                "time": _moment(entry.occurred_at),
                "service": entry.service_key,
                "event": entry.kind.value,
                "notice_version_id": entry.notice_version_id,
                "notice_revision": entry.notice_revision,
                "notice_sha256": entry.notice_hash,
                "language": entry.locale,
                "method": entry.method.value,
                "actor": entry.actor.value,
                "channel": entry.channel.value,
                "witness": entry.witnessed_by,
                "detail": entry.detail,
            }
            for entry in await entries(patron_id)
        ],
        "retained_data": retained,
    }


# --- the history of each notice ------------------------------------------------------------


@dataclass(frozen=True)
class VersionLink:
    id: int
    locale: str
    content_hash: str


@dataclass(frozen=True)
class Revision:
    """One publication of a service's notice, in every language it was published in."""

    revision: int
    published_at: datetime
    fresh_consent: bool  # a material change: consents given before were paused
    changed: tuple[Fact, ...]
    reworded: bool  # published without a material change (only the wording)
    versions: tuple[VersionLink, ...]
    titles: dict[str, str]


@dataclass(frozen=True)
class NoticeHistory:
    key: str
    current_revision: int
    revisions: tuple[Revision, ...]  # newest first


async def notice_history(key: str) -> NoticeHistory | None:
    if not is_key(key):  # never a catalog key: nothing to look up (and nothing to quote)
        return None
    service = await Service.get_or_none(key=key)
    if service is None:
        return None
    versions = await NoticeVersion.filter(service_id=service.id).order_by("revision", "id")
    by_revision: dict[int, list[NoticeVersion]] = {}
    for version in versions:
        by_revision.setdefault(version.revision, []).append(version)
    revisions = []
    previous: NoticeVersion | None = None
    for revision, group in sorted(by_revision.items()):
        first = group[0]
        revisions.append(
            Revision(
                revision=revision,
                published_at=first.published_at,
                fresh_consent=previous is not None
                and first.terms_revision != previous.terms_revision,
                changed=changed_facts(previous.terms if previous else None, first.terms),
                reworded=previous is not None and first.terms_revision == previous.terms_revision,
                versions=tuple(VersionLink(v.id, v.locale, v.content_hash) for v in group),
                titles={v.locale: v.texts.get("title", key) for v in group},
            )
        )
        previous = first
    return NoticeHistory(key, service.revision, tuple(reversed(revisions)))


@dataclass(frozen=True)
class ShownVersion:
    """The exact text of one notice version, as the patron saw it."""

    id: int
    key: str
    locale: str
    revision: int
    texts: dict[str, str]
    terms: dict[str, Any]
    content_hash: str
    published_at: datetime
    current: bool
    revision_info: Revision
    for_children: bool = False  # the child's version of the privacy notice


async def shown_version(
    key: str, revision: int, locale: str, *, for_children: bool = False
) -> ShownVersion | None:
    """One published version in one language: what a patron who saw it read, word for word
    (a child below the consent age read its child's version). A version published under a
    renamed language code is found under the new one too."""
    if not (is_key(key) and 0 <= revision <= MAX_REVISION and len(locale) <= LOCALE_MAX):
        return None
    service = await Service.get_or_none(key=key)
    if service is None:
        return None
    version = await NoticeVersion.get_or_none(
        service_id=service.id, revision=revision, locale__in=spellings(canonical(locale))
    )
    if version is None or (for_children and not (version.child_texts and version.child_hash)):
        return None
    history = await notice_history(service.key)
    assert history is not None  # noqa: S101 - the version's own service exists
    info = next(item for item in history.revisions if item.revision == version.revision)
    return ShownVersion(
        id=version.id,
        key=service.key,
        locale=canonical(version.locale),
        revision=version.revision,
        texts=(version.child_texts or {}) if for_children else version.texts,
        terms=version.terms,
        content_hash=(version.child_hash or "") if for_children else version.content_hash,
        published_at=version.published_at,
        current=version.revision == service.revision,
        revision_info=info,
        for_children=for_children,
    )


@dataclass(frozen=True)
class NoticeWords:
    """What a receipt's notice said of its purposes, data and recipients, in its words."""

    locale: str
    texts: dict[str, str]


RECEIPT_WORDED_FIELDS = ("purpose", "data", "recipients")


async def receipt_notice_words(version_id: object, content_hash: object) -> NoticeWords | None:
    """The words of the notice a receipt names (its version and fingerprint, the adult's or
    the child's text) to show beside the signed machine values; None when the receipt names
    no version this portal published (an older receipt, another library's)."""
    if not (isinstance(version_id, int) and isinstance(content_hash, str) and content_hash):
        return None
    version = await NoticeVersion.get_or_none(id=version_id)
    if version is None:
        return None
    if hmac.compare_digest(version.content_hash, content_hash):
        texts = version.texts
    elif version.child_hash and hmac.compare_digest(version.child_hash, content_hash):
        texts = version.child_texts or {}
    else:
        return None
    worded = {name: texts[name] for name in RECEIPT_WORDED_FIELDS if texts.get(name)}
    return NoticeWords(locale=canonical(version.locale), texts=worded)
