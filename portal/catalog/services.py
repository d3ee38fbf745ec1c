"""Publishing the catalog and reading what is published."""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from tortoise.transactions import in_transaction

from portal.catalog.models import NoticeVersion, Publication, Service
from portal.catalog.policy import Catalog, CatalogError, ServiceSpec, Terms, content_hash
from portal.catalog.policy import is_material_change as _is_material
from portal.consent.models import ConsentState
from portal.consent.suspension import MATERIAL_CHANGE, suspend
from portal.minors.policy import DEFAULT_PRESET, PRESETS, JurisdictionPolicy


class Change(StrEnum):
    NEW = "new"
    MATERIAL = "material"
    WORDING = "wording"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class PublishReport:
    changes: dict[str, Change]
    consents_suspended: int


async def publish_catalog(catalog: Catalog, source_text: str, *, now: datetime) -> PublishReport:
    """All or nothing: either every service is published, or nothing is."""
    async with in_transaction():
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
        suspended = 0
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
                    position=position,
                    published_at=now,
                )
                await _write_notices(service, spec, now)
                changes[spec.key] = Change.NEW
                continue
            change = await _classify(service, spec)
            changes[spec.key] = change
            service.position = position
            # Who the service is offered to is not part of the notice: it changes in place.
            service.minimum_age = spec.minimum_age
            if change is Change.UNCHANGED:
                await service.save(update_fields=["position", "minimum_age"])
                continue
            service.revision += 1
            if change is Change.MATERIAL:
                service.terms_revision += 1
            service.terms = spec.terms.as_dict()
            service.published_at = now
            await service.save()
            await _write_notices(service, spec, now)
            if change is Change.MATERIAL:
                suspended += await _suspend_consents(service, now)
        await Publication.create(
            library_name=catalog.library_name,
            jurisdiction=asdict(catalog.jurisdiction),
            source_hash=hashlib.sha256(source_text.encode()).hexdigest(),
            published_at=now,
            changed_services={key: change.value for key, change in changes.items()},
        )
    forget_published_catalog()
    return PublishReport(changes=changes, consents_suspended=suspended)


async def _classify(service: Service, spec: ServiceSpec) -> Change:
    if spec.store != service.store:
        raise CatalogError(
            [f"service '{spec.key}': its store cannot change once published (retained data)"]
        )
    current = await NoticeVersion.filter(service_id=service.id, revision=service.revision)
    current_hashes = {notice.locale: notice.content_hash for notice in current}
    new_hashes = {
        locale: content_hash(locale, spec.terms, notice) for locale, notice in spec.notices.items()
    }
    if current_hashes == new_hashes:
        return Change.UNCHANGED
    if _is_material(Terms.from_dict(service.terms), spec.terms):
        return Change.MATERIAL
    return Change.WORDING


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
                published_at=now,
            )
            for locale, notice in spec.notices.items()
        ]
    )


async def _suspend_consents(service: Service, now: datetime) -> int:
    """The old consents no longer cover the service: off until each patron decides again."""
    affected = await ConsentState.filter(
        service_id=service.id, granted=True, suspended_at__isnull=True
    ).select_for_update()
    for state in affected:
        await suspend(state, service, MATERIAL_CHANGE, now)
    return len(affected)


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


@dataclass(frozen=True)
class PublishedNotice:
    id: int
    service: PublishedService
    locale: str
    revision: int
    terms_revision: int
    texts: dict[str, str]
    content_hash: str
    published_at: datetime


@dataclass(frozen=True)
class CatalogSnapshot:
    """What is published now, held in memory: read on every page, changed only by publishing."""

    library_name: str
    jurisdiction: JurisdictionPolicy
    services: tuple[PublishedService, ...]
    notices: dict[tuple[int, str], PublishedNotice]

    def notice(self, service_id: int, locale: str) -> PublishedNotice | None:
        return self.notices.get((service_id, locale))


# Publishing happens in another process (the CLI), so the snapshot is re-read after a few
# seconds. Decisions never rely on it: they check the notice version against the database.
_SNAPSHOT_TTL_SECONDS = 5.0
_snapshot: list[tuple[float, CatalogSnapshot]] = []


async def published_catalog() -> CatalogSnapshot:
    clock = time.monotonic()
    if _snapshot and clock - _snapshot[0][0] < _SNAPSHOT_TTL_SECONDS:
        return _snapshot[0][1]
    latest = await Publication.all().order_by("-id").first()
    services = {
        service.id: PublishedService(
            id=service.id,
            key=service.key,
            store=service.store,
            minimum_age=service.minimum_age,
            position=service.position,
            revision=service.revision,
            terms_revision=service.terms_revision,
            terms=service.terms,
        )
        for service in await Service.all()
    }
    notices = {}
    for notice in await NoticeVersion.filter(service_id__in=list(services)):
        service = services[notice.service_id]
        if notice.revision == service.revision:
            notices[(service.id, notice.locale)] = PublishedNotice(
                id=notice.id,
                service=service,
                locale=notice.locale,
                revision=notice.revision,
                terms_revision=notice.terms_revision,
                texts=notice.texts,
                content_hash=notice.content_hash,
                published_at=notice.published_at,
            )
    snapshot = CatalogSnapshot(
        library_name=latest.library_name if latest else "",
        jurisdiction=jurisdiction_of(latest),
        services=tuple(sorted(services.values(), key=lambda service: service.position)),
        notices=notices,
    )
    _snapshot[:] = [(clock, snapshot)]
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
