"""Publishing the catalog and reading what is published."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from tortoise.transactions import in_transaction

from portal.catalog.models import NoticeVersion, Publication, Service
from portal.catalog.policy import Catalog, CatalogError, ServiceSpec, Terms, content_hash
from portal.catalog.policy import is_material_change as _is_material
from portal.consent.models import Actor, Channel, ConsentEvent, ConsentState, EventKind, Method


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
                    position=position,
                    published_at=now,
                )
                await _write_notices(service, spec, now)
                changes[spec.key] = Change.NEW
                continue
            change = await _classify(service, spec)
            changes[spec.key] = change
            service.position = position
            if change is Change.UNCHANGED:
                await service.save(update_fields=["position"])
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
            source_hash=hashlib.sha256(source_text.encode()).hexdigest(),
            published_at=now,
            changed_services={key: change.value for key, change in changes.items()},
        )
    forget_library_name()
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
        state.suspended_at = now
        state.revision += 1
        state.updated_at = now
        await state.save(update_fields=["suspended_at", "revision", "updated_at"])
    await ConsentEvent.bulk_create(
        [
            ConsentEvent(
                patron_id=state.patron_id,
                service_id=service.id,
                kind=EventKind.SUSPENDED,
                notice_version_id=state.notice_version_id,
                notice_hash=None,
                locale=None,
                purposes=service.terms["purposes"],
                occurred_at=now,
                method=Method.SYSTEM,
                actor=Actor.SYSTEM,
                channel=Channel.CLI,
                detail={"reason": "material_change", "terms_revision": service.terms_revision},
            )
            for state in affected
        ]
    )
    return len(affected)


async def published_services() -> list[Service]:
    return await Service.all()


async def current_notice(service: Service, locale: str) -> NoticeVersion | None:
    return await NoticeVersion.get_or_none(
        service_id=service.id, revision=service.revision, locale=locale
    )


async def current_notices(locale: str) -> dict[int, NoticeVersion]:
    """The current notice of every service in one locale, keyed by service id (one query)."""
    notices = await NoticeVersion.filter(locale=locale).select_related("service")
    return {n.service_id: n for n in notices if n.revision == n.service.revision}


_name_cache: dict[str, tuple[float, str]] = {}
_NAME_TTL_SECONDS = 30.0


async def library_name() -> str:
    """The name from the latest publication, cached briefly: it is on every page."""
    now = time.monotonic()
    cached = _name_cache.get("name")
    if cached and now - cached[0] < _NAME_TTL_SECONDS:
        return cached[1]
    latest = await Publication.all().order_by("-id").first()
    name = latest.library_name if latest else ""
    _name_cache["name"] = (now, name)
    return name


def forget_library_name() -> None:
    _name_cache.clear()
