"""Publishing the catalog and reading what is published. What a publication does to consents
in force is consent's business (consent.publishing), in the same transaction."""

from __future__ import annotations

import functools
import hashlib
import time
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from tortoise.exceptions import BaseORMException

from portal.catalog.jurisdiction import (
    DEFAULT_PRESET,
    PRESETS,
    AgeContext,
    JurisdictionPolicy,
    age_context,
)
from portal.catalog.models import ConnectedSystem, NoticeVersion, Publication, Service
from portal.catalog.policy import (
    Catalog,
    CatalogError,
    ServiceSpec,
    SystemSpec,
    Terms,
    content_hash,
)
from portal.catalog.policy import is_material_change as _is_material
from portal.clock import local_date
from portal.locale_codes import canonical, spellings


class Change(StrEnum):
    NEW = "new"
    MATERIAL = "material"
    WORDING = "wording"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class PublishResult:
    changes: dict[str, Change]
    # Services whose terms changed materially: the consents given to the old terms no
    # longer cover them.
    materially_changed: tuple[int, ...]


async def write_publication(catalog: Catalog, source_text: str, *, now: datetime) -> PublishResult:
    """All or nothing: either every service is published, or nothing is. Call inside the
    caller's transaction (consent.publishing), then `forget_published_catalog()`."""
    await _write_systems(catalog.systems)
    existing = {service.key: service for service in await Service.all().select_for_update()}
    wanted = {spec.key for spec in catalog.services}
    retired = sorted(set(existing) - wanted)
    if retired:
        raise CatalogError(
            [
                f"service '{key}' is published but missing from the catalog; "
                "published services cannot be removed by publishing"
                for key in retired
            ]
        )
    changes: dict[str, Change] = {}
    material: list[int] = []
    for position, spec in enumerate(catalog.services):
        service = existing.get(spec.key)
        if service is None:
            service = await Service.create(
                key=spec.key,
                store=spec.store,
                revision=1,
                terms_revision=1,
                terms=spec.terms.as_dict(),
                minimum_age=spec.minimum_age,
                systems=list(spec.systems),
                position=position,
                published_at=now,
            )
            await _write_notices(service, spec, now)
            changes[spec.key] = Change.NEW
            continue
        change = await _classify(service, spec)
        changes[spec.key] = change
        service.position = position
        # Who the service is offered to, and which systems hold its data (whom deletion
        # requests go to), are not part of the notice: they change in place.
        service.minimum_age = spec.minimum_age
        service.systems = list(spec.systems)
        if change is Change.UNCHANGED:
            await service.save(update_fields=["position", "minimum_age", "systems"])
            continue
        service.revision += 1
        if change is Change.MATERIAL:
            service.terms_revision += 1
        service.terms = spec.terms.as_dict()
        service.published_at = now
        await service.save()
        await _write_notices(service, spec, now)
        if change is Change.MATERIAL:
            material.append(service.id)
    await Publication.create(
        library_name=catalog.library_name,
        library_names=catalog.library_names,
        jurisdiction=asdict(catalog.jurisdiction),
        source_hash=hashlib.sha256(source_text.encode()).hexdigest(),
        published_at=now,
        changed_services={key: change.value for key, change in changes.items()},
    )
    return PublishResult(changes=changes, materially_changed=tuple(material))


@dataclass(frozen=True)
class ServicePreview:
    """What publishing would do to one service: the change, and the terms and notice texts
    now published (None for a new service) beside those of the catalog."""

    key: str
    change: Change
    current_terms: dict[str, Any] | None
    new_terms: dict[str, Any]
    current_texts: dict[str, dict[str, str]]  # by locale
    new_texts: dict[str, dict[str, str]]
    # The child's version of the notice, by locale, for a service children can meet.
    current_child_texts: dict[str, dict[str, str]]
    new_child_texts: dict[str, dict[str, str]]


async def preview_publication(catalog: Catalog) -> list[ServicePreview]:
    """What `write_publication` would do, read only and by the same rules; raises the same
    CatalogError for what only the published catalog can refuse (a removed service or
    system, a service's store changed)."""
    published_systems = {system.key for system in await ConnectedSystem.all()}
    wanted_systems = {spec.key for spec in catalog.systems}
    problems = [
        f"system '{key}' is published but missing from the catalog; published systems "
        "cannot be removed (deletion requests to them must still be delivered)"
        for key in sorted(published_systems - wanted_systems)
    ]
    existing = {service.key: service for service in await Service.all()}
    problems += [
        f"service '{key}' is published but missing from the catalog; "
        "published services cannot be removed by publishing"
        for key in sorted(set(existing) - {spec.key for spec in catalog.services})
    ]
    previews = []
    for spec in catalog.services:
        service = existing.get(spec.key)
        new_texts = {locale: notice.as_dict() for locale, notice in spec.notices.items()}
        new_child = {locale: notice.as_dict() for locale, notice in spec.child_notices.items()}
        if service is None:
            previews.append(
                ServicePreview(
                    spec.key, Change.NEW, None, spec.terms.as_dict(), {}, new_texts, {}, new_child
                )
            )
            continue
        try:
            change = await _classify(service, spec)
        except CatalogError as error:
            problems += error.problems
            continue
        current = await NoticeVersion.filter(service_id=service.id, revision=service.revision)
        # By the locale's code today: a version published as `tl` is Filipino's (`fil`).
        previews.append(
            ServicePreview(
                spec.key,
                change,
                service.terms,
                spec.terms.as_dict(),
                {canonical(notice.locale): notice.texts for notice in current},
                new_texts,
                {
                    canonical(notice.locale): notice.child_texts
                    for notice in current
                    if notice.child_texts
                },
                new_child,
            )
        )
    if problems:
        raise CatalogError(problems)
    return previews


async def latest_publication() -> tuple[int, str] | None:
    """The latest publication's id and the hash of its source text."""
    latest = await Publication.all().order_by("-id").first()
    return (latest.id, latest.source_hash) if latest else None


async def _write_systems(systems: tuple[SystemSpec, ...]) -> None:
    existing = {system.key: system for system in await ConnectedSystem.all().select_for_update()}
    retired = sorted(set(existing) - {spec.key for spec in systems})
    if retired:
        raise CatalogError(
            [
                f"system '{key}' is published but missing from the catalog; published systems "
                "cannot be removed (deletion requests to them must still be delivered)"
                for key in retired
            ]
        )
    for position, spec in enumerate(systems):
        system = existing.get(spec.key)
        if system is None:
            await ConnectedSystem.create(
                key=spec.key, name=spec.name, endpoint=spec.endpoint, position=position
            )
        elif (system.name, system.endpoint, system.position) != (
            spec.name,
            spec.endpoint,
            position,
        ):
            system.name, system.endpoint, system.position = spec.name, spec.endpoint, position
            await system.save(update_fields=["name", "endpoint", "position"])


async def _classify(service: Service, spec: ServiceSpec) -> Change:
    if spec.store != service.store:
        raise CatalogError(
            [f"service '{spec.key}': its store cannot change once published (retained data)"]
        )
    current = await NoticeVersion.filter(service_id=service.id, revision=service.revision)
    # A version published under a renamed code ("tl") is compared as it was written, so the
    # rename alone never makes a new revision.
    written = {canonical(notice.locale): notice.locale for notice in current}
    current_hashes = {
        canonical(notice.locale): (notice.content_hash, notice.child_hash) for notice in current
    }
    new_hashes = {
        locale: (
            content_hash(written.get(locale, locale), spec.terms, notice),
            # Child's versions came after the rename: none was ever published under "tl".
            _child_hash(spec, locale),
        )
        for locale, notice in spec.notices.items()
    }
    if current_hashes == new_hashes:
        return Change.UNCHANGED
    if _is_material(Terms.from_dict(service.terms), spec.terms):
        stale = stale_child_versions(
            {canonical(notice.locale): notice.child_texts for notice in current}, spec
        )
        if stale:
            raise CatalogError(
                [
                    f"service '{spec.key}': a material change, but child_notice.{locale} is "
                    "unchanged: the child's version must tell the same new facts"
                    for locale in stale
                ]
            )
        return Change.MATERIAL
    return Change.WORDING


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


def _child_hash(spec: ServiceSpec, locale: str) -> str | None:
    child = spec.child_notices.get(locale)
    if child is None:
        return None
    return content_hash(locale, spec.terms, child, audience="child")


async def _write_notices(service: Service, spec: ServiceSpec, now: datetime) -> None:
    await NoticeVersion.bulk_create(
        [
            NoticeVersion(
                service_id=service.id,
                locale=locale,
                revision=service.revision,
                terms_revision=service.terms_revision,
                terms=spec.terms.as_dict(),
                texts=notice.as_dict(),
                content_hash=content_hash(locale, spec.terms, notice),
                child_texts=(
                    spec.child_notices[locale].as_dict() if locale in spec.child_notices else None
                ),
                child_hash=_child_hash(spec, locale),
                published_at=now,
            )
            for locale, notice in spec.notices.items()
        ]
    )


@dataclass(frozen=True)
class PublishedService:
    id: int
    key: str
    store: str | None
    minimum_age: int | None
    position: int
    revision: int
    terms_revision: int
    terms: dict[str, Any]
    systems: tuple[str, ...] = ()  # connected systems holding its data, by key


@dataclass(frozen=True)
class PublishedSystem:
    key: str
    name: str
    endpoint: str


@dataclass(frozen=True)
class PublishedNotice:
    id: int
    service: PublishedService
    locale: str
    revision: int
    terms_revision: int
    terms: dict[str, Any]  # what this version told the patron (purposes, data, retention …)
    texts: dict[str, str]
    content_hash: str
    published_at: datetime
    # The child's version (same facts, a child's words) and its hash; None when there is none.
    child_texts: dict[str, str] | None = None
    child_hash: str | None = None


@dataclass(frozen=True)
class CatalogSnapshot:
    """What is published now, held in memory: read on every page, changed only by publishing."""

    library_name: str
    jurisdiction: JurisdictionPolicy
    services: tuple[PublishedService, ...]
    notices: dict[tuple[int, str], PublishedNotice]
    library_names: dict[str, str] = field(default_factory=dict)

    def library_name_in(self, locale: str) -> str:
        return self.library_names.get(locale) or self.library_name

    def notice(self, service_id: int, locale: str) -> PublishedNotice | None:
        return self.notices.get((service_id, locale))

    @functools.cached_property
    def by_key(self) -> dict[str, PublishedService]:
        return {service.key: service for service in self.services}


# Publishing happens in another process (the CLI), so every few seconds one cheap query asks
# whether a publication came since; the catalog is read again only when one did. Decisions
# never rely on the snapshot: they check the notice version against the database.
_SNAPSHOT_TTL_SECONDS = 5.0
# (checked at, the publication it shows, the snapshot)
_snapshot: list[tuple[float, int | None, CatalogSnapshot]] = []


async def published_catalog() -> CatalogSnapshot:
    clock = time.monotonic()
    if _snapshot and clock - _snapshot[0][0] < _SNAPSHOT_TTL_SECONDS:
        return _snapshot[0][2]
    latest = await Publication.all().order_by("-id").first()
    latest_id = latest.id if latest else None
    if _snapshot and _snapshot[0][1] == latest_id:
        _snapshot[:] = [(clock, latest_id, _snapshot[0][2])]
        return _snapshot[0][2]
    services = {service.id: _published_service(service) for service in await Service.all()}
    notices = {}
    for notice in await NoticeVersion.filter(service_id__in=list(services)):
        service = services[notice.service_id]
        if notice.revision == service.revision:
            notices[(service.id, canonical(notice.locale))] = _published_notice(notice, service)
    snapshot = CatalogSnapshot(
        library_name=latest.library_name if latest else "",
        library_names=dict(latest.library_names or {}) if latest else {},
        jurisdiction=jurisdiction_of(latest),
        services=tuple(sorted(services.values(), key=lambda service: service.position)),
        notices=notices,
    )
    _snapshot[:] = [(clock, latest_id, snapshot)]
    return snapshot


def jurisdiction_of(publication: Publication | None) -> JurisdictionPolicy:
    if publication is None or not publication.jurisdiction:
        return PRESETS[DEFAULT_PRESET]
    return JurisdictionPolicy(**publication.jurisdiction)


async def library_jurisdiction() -> JurisdictionPolicy:
    """Read from the database: for decisions, which must not rely on the cached snapshot."""
    return jurisdiction_of(await Publication.all().order_by("-id").first())


def forget_published_catalog() -> None:
    _snapshot.clear()


def _published_service(service: Service) -> PublishedService:
    return PublishedService(
        id=service.id,
        key=service.key,
        store=service.store,
        minimum_age=service.minimum_age,
        position=service.position,
        revision=service.revision,
        terms_revision=service.terms_revision,
        terms=service.terms,
        systems=tuple(service.systems or ()),
    )


def _published_notice(notice: NoticeVersion, service: PublishedService) -> PublishedNotice:
    return PublishedNotice(
        id=notice.id,
        service=service,
        locale=canonical(notice.locale),  # read an old "tl" version as "fil"; its row stays
        revision=notice.revision,
        terms_revision=notice.terms_revision,
        terms=notice.terms,
        texts=notice.texts,
        content_hash=notice.content_hash,
        published_at=notice.published_at,
        child_texts=notice.child_texts,
        child_hash=notice.child_hash,
    )


async def current_service(key: str) -> PublishedService | None:
    """Read from the database, not the snapshot: for decisions and the notice gate."""
    service = await Service.get_or_none(key=key)
    return _published_service(service) if service else None


async def current_notice(service: PublishedService, locale: str) -> PublishedNotice | None:
    """The service's current notice in `locale`, read from the database."""
    notice = await NoticeVersion.get_or_none(
        service_id=service.id, revision=service.revision, locale__in=spellings(locale)
    )
    return _published_notice(notice, service) if notice else None


async def notice_version(version_id: int, service: PublishedService) -> PublishedNotice | None:
    """A notice version of this service, current or not (a form may carry an older one)."""
    notice = await NoticeVersion.get_or_none(id=version_id, service_id=service.id)
    return _published_notice(notice, service) if notice else None


async def service_for_store(store: str) -> PublishedService | None:
    service = await Service.get_or_none(store=store)
    return _published_service(service) if service else None


async def services_by_id(ids: list[int]) -> dict[int, PublishedService]:
    return {service.id: _published_service(service) for service in await Service.filter(id__in=ids)}


async def all_services() -> list[PublishedService]:
    return [_published_service(service) for service in await Service.all()]


async def connected_systems() -> dict[str, PublishedSystem]:
    """Every published connected system by key, read from the database (a publish happens
    in another process, and a request must go to the endpoint published now)."""
    return {
        system.key: PublishedSystem(system.key, system.name, system.endpoint)
        for system in await ConnectedSystem.all()
    }


class Readiness(StrEnum):
    READY = "ready"
    DATABASE_UNAVAILABLE = "database_unavailable"
    CATALOG_NOT_PUBLISHED = "catalog_not_published"


async def readiness() -> Readiness:
    """Whether the portal can serve patrons: the database answers and a catalog is published."""
    try:
        published = await Service.exists()
    except (BaseORMException, OSError):
        return Readiness.DATABASE_UNAVAILABLE
    return Readiness.READY if published else Readiness.CATALOG_NOT_PUBLISHED


async def age_today(
    born_on: date | None, jurisdiction: str | None, *, now: datetime, timezone: str
) -> AgeContext:
    """Where a patron stands in the age rules today, by the published snapshot: for pages."""
    library = (await published_catalog()).jurisdiction
    return age_context(born_on, jurisdiction, library, local_date(now, timezone))


async def age_for_decision(
    born_on: date | None, jurisdiction: str | None, *, now: datetime, timezone: str
) -> AgeContext:
    """The same, by the jurisdiction in the database: decisions never rely on the snapshot."""
    library = await library_jurisdiction()
    return age_context(born_on, jurisdiction, library, local_date(now, timezone))
