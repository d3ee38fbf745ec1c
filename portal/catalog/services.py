"""Reading what is published: the catalog held in memory for pages, the database's current
services, notices and connected systems for decisions, readiness, and where a patron stands
in the age rules. Publishing is portal.catalog.publishing."""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tortoise.exceptions import BaseORMException

from portal.catalog.jurisdiction import (
    DEFAULT_PRESET,
    PRESETS,
    AgeContext,
    JurisdictionPolicy,
    age_context,
)
from portal.catalog.models import ConnectedSystem, NoticeVersion, Publication, Service
from portal.catalog.parsing import Address, EndpointRules
from portal.catalog.policy import CatalogError, MessageChoice, SystemSpec, choice_title
from portal.clock import local_date
from portal.locale_codes import canonical, fallbacks, spellings

if TYPE_CHECKING:  # the settings read the environment with Starlette: use cases load no web code
    from portal.settings import Settings


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
    # One kind of message by one channel (or titles in messages) of a messaging service.
    choice: MessageChoice | None = None
    retired: bool = False  # replaced by a messaging service: no longer offered

    @property
    def group(self) -> str:
        """The key patrons see it under: its messaging service's, or its own."""
        return self.choice.group if self.choice else self.key


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
        return next(
            (self.library_names[c] for c in fallbacks(locale) if self.library_names.get(c)),
            self.library_name,
        )

    def notice(self, service_id: int, locale: str) -> PublishedNotice | None:
        """In `locale`, or for a regional variant without its own, in its language's."""
        for code in fallbacks(locale):
            if (found := self.notices.get((service_id, code))) is not None:
                return found
        return None

    @functools.cached_property
    def by_key(self) -> dict[str, PublishedService]:
        return {service.key: service for service in self.services}


# Publishing happens in another process (the CLI), so every few seconds one cheap query asks
# whether a publication came since; the catalog is read again only when one did. Decisions
# never rely on the snapshot: they check the notice version against the database.
_SNAPSHOT_TTL_SECONDS = 5.0
# (checked at, the publication it shows, the snapshot)
_snapshot: list[tuple[float, int | None, CatalogSnapshot]] = []
# Whether a request is asking right now. The others go on with the snapshot they have until
# it answers: at 32 concurrent checks, every request that found the snapshot stale asked
# the same question at once, took a pooled connection each, and made the slowest checks
# of the whole run wait behind them (README, "Performance").
_checking: list[bool] = [False]


async def published_catalog() -> CatalogSnapshot:
    clock = time.monotonic()
    if _snapshot and (clock - _snapshot[0][0] < _SNAPSHOT_TTL_SECONDS or _checking[0]):
        return _snapshot[0][2]
    _checking[0] = True
    try:
        return await _check_publication(clock)
    finally:
        _checking[0] = False


async def _check_publication(clock: float) -> CatalogSnapshot:
    latest = await Publication.all().order_by("-id").first()
    latest_id = latest.id if latest else None
    if _snapshot and _snapshot[0][1] == latest_id:
        _snapshot[:] = [(clock, latest_id, _snapshot[0][2])]
        return _snapshot[0][2]
    services = {
        service.id: _published_service(service)
        for service in await Service.filter(retired_at__isnull=True)
    }
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
    _checking[0] = False


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
        choice=MessageChoice.from_dict(service.choice) if service.choice else None,
        retired=service.retired_at is not None,
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
    """Read from the database, not the snapshot: for decisions and the notice gate. A retired
    service is no longer offered: none."""
    service = await Service.get_or_none(key=key, retired_at__isnull=True)
    return _published_service(service) if service else None


async def current_notice(service: PublishedService, locale: str) -> PublishedNotice | None:
    """The service's current notice in `locale` (a regional variant without its own reads
    its language's), read from the database."""
    for code in fallbacks(locale):
        notice = await NoticeVersion.get_or_none(
            service_id=service.id, revision=service.revision, locale__in=spellings(code)
        )
        if notice is not None:
            return _published_notice(notice, service)
    return None


async def current_notices(
    services: list[PublishedService], locale: str
) -> dict[int, PublishedNotice]:
    """Each service's current notice in `locale` (a regional variant without its own reads
    its language's), by service id, in one query."""
    by_id = {service.id: service for service in services}
    order = {canonical(code): rank for rank, code in enumerate(fallbacks(locale))}
    found: dict[int, tuple[int, PublishedNotice]] = {}
    for notice in await NoticeVersion.filter(
        service_id__in=list(by_id),
        locale__in=[spelling for code in fallbacks(locale) for spelling in spellings(code)],
    ):
        service = by_id[notice.service_id]
        rank = order.get(canonical(notice.locale), len(order))
        if (
            notice.revision == service.revision
            and rank < found.get(service.id, (len(order) + 1,))[0]
        ):
            found[service.id] = (rank, _published_notice(notice, service))
    return {service_id: notice for service_id, (_, notice) in found.items()}


async def last_titles(service_ids: list[int], locale: str) -> dict[int, str]:
    """The title each service's latest notice in `locale` gave it: for services no longer in
    the catalog (replaced by a messaging service) that a patron's record still names."""
    titles: dict[int, tuple[int, str]] = {}
    for notice in await NoticeVersion.filter(
        service_id__in=service_ids,
        locale__in=[spelling for code in fallbacks(locale) for spelling in spellings(code)],
    ):
        if notice.revision >= titles.get(notice.service_id, (0, ""))[0]:
            titles[notice.service_id] = (notice.revision, choice_title(notice.texts))
    return {service_id: title for service_id, (_, title) in titles.items()}


async def notice_version(version_id: int, service: PublishedService) -> PublishedNotice | None:
    """A notice version of this service, current or not (a form may carry an older one)."""
    notice = await NoticeVersion.get_or_none(id=version_id, service_id=service.id)
    return _published_notice(notice, service) if notice else None


async def service_for_store(store: str) -> PublishedService | None:
    service = await Service.get_or_none(store=store)
    return _published_service(service) if service else None


async def services_by_id(ids: list[int]) -> dict[int, PublishedService]:
    return {service.id: _published_service(service) for service in await Service.filter(id__in=ids)}


async def channel_choices(channel: str) -> list[PublishedService]:
    """The message choices on one channel, of every messaging service (a patron has one
    number or address per channel), read from the database."""
    return [
        service
        for service in await all_services()
        if service.choice is not None and service.choice.channel == channel
    ]


async def all_services() -> list[PublishedService]:
    """Every service offered now (not those a messaging service replaced)."""
    return [
        _published_service(service) for service in await Service.filter(retired_at__isnull=True)
    ]


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


def endpoint_rules(settings: Settings) -> EndpointRules:
    return EndpointRules(settings.dev_mode, settings.system_allowed_addresses)


async def resolve(host: str, port: int) -> list[Address]:
    """The addresses `host` resolves to now (itself when it is one); none when it does not."""
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    # A scoped IPv6 address comes back as "fe80::1%eth0".
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in found]


async def endpoint_refusal(endpoint: str, rules: EndpointRules) -> tuple[str | None, list[Address]]:
    """Why `endpoint` must not be called now (portal.catalog.parsing.EndpointRules), and the
    addresses its host resolved to, so that the caller connects to one of those it checked
    (a name may resolve elsewhere a moment later)."""
    if rules.development:
        return None, []
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    addresses = await resolve(host, parts.port or (443 if parts.scheme == "https" else 80))
    return rules.refusal(endpoint, addresses), addresses


async def check_endpoints(systems: tuple[SystemSpec, ...], rules: EndpointRules) -> None:
    """Before publishing: every connected system's endpoint allowed where its host resolves
    today (a name that does not resolve yet is checked again at each delivery)."""
    problems = []
    for system in systems:
        refusal, _ = await endpoint_refusal(system.endpoint, rules)
        if refusal is not None:
            problems.append(f"system '{system.key}': endpoint {refusal}")
    if problems:
        raise CatalogError(problems)
