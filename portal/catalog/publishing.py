"""Publishing the catalog: what it would change (the preview), writing the publication, and
what it does to consents in force: a material change (new purpose, data, recipient, or
longer retention) pauses every consent given to the old terms, in the same transaction as
the publication (docs/PROMISES.md, "Notice version"). Consents are the consent domain's,
which depends on the catalog: it hands its pausing step in (portal.officer.services.publish
is the one place that does)."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from portal.catalog.models import ConnectedSystem, NoticeVersion, Publication, Service
from portal.catalog.policy import (
    CarryOver,
    Catalog,
    CatalogError,
    MessageChoice,
    ServiceSpec,
    SystemSpec,
    Terms,
    content_hash,
    pair_key,
    stale_child_versions,
)
from portal.catalog.policy import is_material_change as _is_material
from portal.catalog.services import forget_published_catalog
from portal.locale_codes import canonical


class Change(StrEnum):
    NEW = "new"
    MATERIAL = "material"
    WORDING = "wording"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Replaced:
    """A published service a messaging service replaced at this publication: its consents
    in force become the message choices `choices` (service ids), and nothing more."""

    service_id: int
    choices: tuple[int, ...]


@dataclass(frozen=True)
class PublishResult:
    changes: dict[str, Change]
    # Services whose terms changed materially: the consents given to the old terms no
    # longer cover them.
    materially_changed: tuple[int, ...]
    replaced: tuple[Replaced, ...] = ()


async def write_publication(catalog: Catalog, source_text: str, *, now: datetime) -> PublishResult:
    """All or nothing: either every service is published, or nothing is. Call inside the
    caller's transaction (publish_catalog's, below), then `forget_published_catalog()`."""
    await _write_systems(catalog.systems)
    existing = {service.key: service for service in await Service.all().select_for_update()}
    published = catalog.published
    wanted = {spec.key for spec in published}
    carried = catalog.carried_over
    retired = sorted(
        key for key in set(existing) - wanted if key not in carried and not existing[key].retired_at
    )
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
    for position, spec in enumerate(published):
        choice = spec.choice.as_dict() if spec.choice else None
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
                choice=choice,
                position=position,
                published_at=now,
            )
            existing[spec.key] = service
            await _write_notices(service, spec, now)
            changes[spec.key] = Change.NEW
            continue
        change = await _classify(service, spec)
        changes[spec.key] = change
        service.position = position
        # Who the service is offered to, which systems hold its data (whom deletion
        # requests go to) and the library system's name for a message are not part of the
        # notice: they change in place.
        service.minimum_age = spec.minimum_age
        service.systems = list(spec.systems)
        service.choice = choice
        if change is Change.UNCHANGED:
            await service.save(update_fields=["position", "minimum_age", "systems", "choice"])
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
    replaced = await _retire_replaced(existing, carried, now)
    await Publication.create(
        library_name=catalog.library_name,
        library_names=catalog.library_names,
        jurisdiction=asdict(catalog.jurisdiction),
        source_hash=hashlib.sha256(source_text.encode()).hexdigest(),
        published_at=now,
        changed_services={key: change.value for key, change in changes.items()},
    )
    return PublishResult(changes=changes, materially_changed=tuple(material), replaced=replaced)


async def _retire_replaced(
    existing: dict[str, Service], carried: dict[str, tuple[ServiceSpec, CarryOver]], now: datetime
) -> tuple[Replaced, ...]:
    """Services a messaging service replaces leave the catalog now: each is retired, and
    its consents in force are to become exactly the kinds it named on its channel."""
    replaced = []
    for key, (spec, moved) in carried.items():
        service = existing.get(key)
        if service is None or service.retired_at is not None:
            continue  # never published here, or replaced at an earlier publication
        if service.store is not None:
            raise CatalogError(
                [f"service '{key}' keeps retained data here: it cannot be carried over"]
            )
        service.retired_at = now
        await service.save(update_fields=["retired_at"])
        choices = tuple(
            existing[pair_key(spec.key, kind, moved.channel)].id for kind in moved.kinds
        )
        replaced.append(Replaced(service.id, choices))
    return tuple(replaced)


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
    published = catalog.published
    problems += [
        f"service '{key}' is published but missing from the catalog; "
        "published services cannot be removed by publishing"
        for key in sorted(set(existing) - {spec.key for spec in published})
        if key not in catalog.carried_over and not existing[key].retired_at
    ]
    previews = []
    for spec in published:
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
    if _carries_more(service, spec):
        return Change.MATERIAL
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


def _carries_more(service: Service, spec: ServiceSpec) -> bool:
    """A message choice whose messages may now carry more than the patron agreed to (its
    kind's `contains` grew) needs their yes again, as a new data category would."""
    if not service.choice or spec.choice is None:
        return False
    before = set(MessageChoice.from_dict(service.choice).contains)
    return not set(spec.choice.contains) <= before


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


# Pauses every consent in force for one service (its id) in the caller's transaction; returns
# how many it paused.
PauseConsents = Callable[[int, datetime], Awaitable[int]]
# Carries the consents in force of a replaced service over to its message choices, in the
# caller's transaction; returns how many patrons' consents it carried.
CarryConsents = Callable[[Replaced, datetime], Awaitable[int]]


@dataclass(frozen=True)
class PublishReport:
    changes: dict[str, Change]
    consents_suspended: int
    consents_carried: int = 0


class PublishedMeanwhile(Exception):
    """Another publication came first (a second officer, or the same form sent twice):
    nothing was published. `source_hash` is the hash of what is published now."""

    def __init__(self, source_hash: str | None) -> None:
        super().__init__("published meanwhile")
        self.source_hash = source_hash


async def publish_catalog(
    catalog: Catalog,
    source_text: str,
    *,
    now: datetime,
    pause_consents: PauseConsents,
    carry_consents: CarryConsents | None = None,
    based_on: int | None = None,
    record: Callable[[PublishReport], Awaitable[None]] | None = None,
) -> PublishReport:
    """All or nothing: every service and every pause, or nothing at all. `based_on`: the
    publication (its id, 0 for none) a preview was made against; if another came since,
    PublishedMeanwhile and nothing is published. `record` writes, in the same transaction,
    what must stand or fall with the publication (who published it)."""
    async with in_transaction():
        if based_on is not None:
            # Locking the latest publication serialises two publishers on PostgreSQL: the
            # second waits for the first. The lock hands back the row it waited for, so the
            # latest is read again, now seeing the first one's publication.
            await Publication.all().order_by("-id").select_for_update().first()
            latest = await Publication.all().order_by("-id").first()
            if (latest.id if latest else 0) != based_on:
                raise PublishedMeanwhile(latest.source_hash if latest else None)
        try:
            result = await write_publication(catalog, source_text, now=now)
        except IntegrityError:
            if based_on is None:
                raise
            # The very first publication has no row to lock: two first publishers both
            # write the same new services, and the unique keys let only one of them through.
            raise PublishedMeanwhile(None) from None
        suspended = 0
        for service_id in result.materially_changed:
            suspended += await pause_consents(service_id, now)
        carried = 0
        for replaced in result.replaced:
            if carry_consents is None:
                raise CatalogError(["this publisher cannot carry consents over"])
            carried += await carry_consents(replaced, now)
        report = PublishReport(
            changes=result.changes, consents_suspended=suspended, consents_carried=carried
        )
        if record is not None:
            await record(report)
    forget_published_catalog()
    return report
