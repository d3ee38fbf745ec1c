"""Reading consent: the question every other domain asks ("may this service hold this
patron's data right now?"), and the read models of the patron's pages. Every function
returns plain values, never ORM rows."""

from __future__ import annotations

import functools
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from portal.catalog.jurisdiction import AgeBand, AgeContext, is_offered
from portal.catalog.services import (
    PublishedNotice,
    PublishedService,
    all_services,
    current_notice,
    current_notices,
    current_service,
    published_catalog,
    service_for_store,
)
from portal.consent.models import ConsentState
from portal.consent.policy import (
    CheckAnswer,
    ConsentError,
    Party,
    Status,
    SuspensionReason,
    audience_for,
    check_answer,
    state_status,
)
from portal.db import as_datetime, as_optional_datetime, fetch_rows
from portal.errors import ConsentCode
from portal.guardians.services import LinkInfo, links_of
from portal.ledger.details import read_detail
from portal.ledger.models import ConsentEvent, EventKind
from portal.ledger.vocabulary import Audience


@dataclass(frozen=True)
class StateRow:
    """A consent state as read for a page; the same fields the status rules look at."""

    service_id: int
    granted: bool
    granted_by: str | None
    last_kind: str
    terms_revision: int
    suspended_at: datetime | None
    suspension_reason: str | None
    revision: int
    updated_at: datetime


_STATE_QUERY = (
    "SELECT service_id, granted, granted_by, last_kind, terms_revision, suspended_at, "
    "suspension_reason, revision, updated_at FROM consent_state WHERE patron_id = ?"
)


def _state_from_row(row: dict[str, Any]) -> StateRow:
    return StateRow(
        service_id=row["service_id"],
        granted=bool(row["granted"]),
        granted_by=row["granted_by"],
        last_kind=row["last_kind"],
        terms_revision=row["terms_revision"],
        suspended_at=as_optional_datetime(row["suspended_at"]),
        suspension_reason=row["suspension_reason"],
        revision=row["revision"],
        updated_at=as_datetime(row["updated_at"]),
    )


# What pages read of patrons' consent states, keyed by (patron, consent version). A cache
# that may be stale, never the truth: the version comes from the database with the session
# on every request, and every change to a patron's consents increments it.
_STATES_CACHE: OrderedDict[tuple[int, int], dict[int, StateRow]] = OrderedDict()
_STATES_CACHE_SIZE = 4096


def forget_read_states() -> None:
    """For a process that switches databases (the tests): ids and versions start over."""
    _STATES_CACHE.clear()


async def state_rows(patron_id: int, version: int | None = None) -> dict[int, StateRow]:
    """Every consent state of a patron, keyed by service: one indexed query (the hot path of
    My privacy), or none when `version`, the patron's consent version read in this request,
    is the one the states were last read at."""
    key = (patron_id, version if version is not None else -1)
    if version is not None and (cached := _STATES_CACHE.get(key)) is not None:
        _STATES_CACHE.move_to_end(key)
        return cached
    rows = await fetch_rows(_STATE_QUERY, patron_id)
    states = {row["service_id"]: _state_from_row(row) for row in rows}
    if version is not None:
        _STATES_CACHE[key] = states
        while len(_STATES_CACHE) > _STATES_CACHE_SIZE:
            _STATES_CACHE.popitem(last=False)
    return states


@dataclass(frozen=True)
class ServiceOverview:
    service: PublishedService
    notice: PublishedNotice
    status: Status
    since: datetime | None
    revision: int
    offered: bool = True  # False: not offered at the patron's age
    needs_guardian: bool = False  # only a guardian can turn it on
    audience: Audience = Audience.ADULT  # which text of the notice this patron reads

    @property
    def texts(self) -> dict[str, str]:
        """The notice as this patron reads it: a child's version for a child, if any."""
        if self.audience is Audience.CHILD and self.notice.child_texts:
            return self.notice.child_texts
        return self.notice.texts


def overview_of(
    service: PublishedService,
    notice: PublishedNotice,
    state: ConsentState | StateRow | None,
    age: AgeContext | None,
) -> ServiceOverview:
    return ServiceOverview(
        service=service,
        notice=notice,
        status=state_status(state, service.terms_revision),
        since=state.updated_at if state else None,
        revision=state.revision if state else 0,
        offered=age.offers(service.minimum_age) if age else True,
        needs_guardian=age is not None and age.band is AgeBand.CHILD,
        audience=audience_for(
            band=age.band if age else AgeBand.ADULT,
            party=Party.PATRON,
            has_child_version=notice.child_texts is not None,
        ),
    )


@dataclass(frozen=True)
class MessageKindRow:
    key: str
    title: str
    says: str
    cells: dict[str, ServiceOverview]  # by channel


@dataclass(frozen=True)
class MessageGrid:
    """A messaging service as patrons see it: its one notice, then each kind of message by
    each channel, each cell its own choice, and titles in messages."""

    group: str
    first: ServiceOverview  # any of its choices: the notice they share, the age rules
    channels: tuple[str, ...]
    rows: tuple[MessageKindRow, ...]
    titles: ServiceOverview | None

    @property
    def texts(self) -> dict[str, str]:
        return self.first.texts

    @property
    def choices(self) -> list[ServiceOverview]:
        cells = [
            row.cells[channel]
            for row in self.rows
            for channel in self.channels
            if channel in row.cells
        ]
        return cells + ([self.titles] if self.titles else [])

    @property
    def on(self) -> list[ServiceOverview]:
        return [choice for choice in self.choices if choice.status is Status.ON]


def message_grids(services: list[ServiceOverview]) -> list[ServiceOverview | MessageGrid]:
    """The services as My privacy lists them: each messaging service's choices gathered into
    one grid, where its first choice stood."""
    listed: list[ServiceOverview | str] = []  # a group's key where its grid goes
    groups: dict[str, list[ServiceOverview]] = {}
    for item in services:
        choice = item.service.choice
        if choice is None:
            listed.append(item)
            continue
        if choice.group not in groups:
            groups[choice.group] = []
            listed.append(choice.group)
        groups[choice.group].append(item)
    return [_grid(groups[item]) if isinstance(item, str) else item for item in listed]


def _grid(items: list[ServiceOverview]) -> MessageGrid:
    channels: list[str] = []
    rows: dict[str, MessageKindRow] = {}
    titles = None
    for item in items:
        choice = item.service.choice
        if choice is None:
            continue  # not one of a messaging service's choices
        if choice.kind is None or choice.channel is None:
            titles = item
            continue
        if choice.channel not in channels:
            channels.append(choice.channel)
        if choice.kind not in rows:
            texts = item.texts
            rows[choice.kind] = MessageKindRow(
                choice.kind, texts.get("kind_title", ""), texts.get("kind_says", ""), {}
            )
        rows[choice.kind].cells[choice.channel] = item
    group = items[0].service.choice.group if items[0].service.choice else ""
    return MessageGrid(group, items[0], tuple(channels), tuple(rows.values()), titles)


@dataclass(frozen=True)
class PrivacyOverview:
    """Everything My privacy shows: each service and its state, and for a minor how many
    guardians are linked."""

    services: list[ServiceOverview]  # every service, each message choice its own
    guardians: int  # linked now
    # A minor's guardian links, in force or recently ended: the child is told of each.
    guardian_links: list[LinkInfo]
    # Consents a guardian gave, paused since the patron came of age: now theirs to decide.
    now_in_charge: bool
    # Message choices carried over from a replaced service, unchanged since: the patron is
    # told what was kept on, until they choose themselves.
    carried_over: tuple[str, ...] = ()  # the messaging services' keys

    @property
    def listed(self) -> list[ServiceOverview | MessageGrid]:
        """As the page lists them: a messaging service as one grid."""
        return message_grids(self.services)


async def privacy_overview(
    patron_id: int,
    locale: str,
    age: AgeContext | None = None,
    *,
    now: datetime | None = None,
    version: int | None = None,
) -> PrivacyOverview:
    """The published catalog comes from memory, the states in one query; a minor's guardian
    links cost one more. Without `age`, no age rule is applied (a patron of unknown age)."""
    catalog = await published_catalog()
    states = await state_rows(patron_id, version)
    services = []
    for service in catalog.services:
        notice = catalog.notice(service.id, locale)
        if notice is None:
            continue  # publishing guarantees every enabled locale; a disabled one shows nothing
        services.append(overview_of(service, notice, states.get(service.id), age))
    minor = age is not None and age.band is not AgeBand.ADULT and now is not None
    links = await links_of(patron_id, now=now) if minor and now else []
    return PrivacyOverview(
        services=services,
        guardians=sum(1 for link in links if link.ended_at is None),
        guardian_links=links,
        now_in_charge=any(
            state.granted and state.suspension_reason == SuspensionReason.CAME_OF_AGE
            for state in states.values()
        ),
        carried_over=tuple(
            dict.fromkeys(
                service.choice.group
                for service in catalog.services
                if service.choice
                and (state := states.get(service.id)) is not None
                and state.granted
                and state.last_kind == EventKind.CARRIED_OVER
            )
        ),
    )


async def service_view(
    patron_id: int, key: str, locale: str, age: AgeContext | None = None
) -> ServiceOverview:
    """One service with its current notice, read from the database (never a stale notice)."""
    service = await current_service(key)
    if service is None:
        raise ConsentError(ConsentCode.UNKNOWN_SERVICE)
    notice = await current_notice(service, locale)
    if notice is None:
        raise ConsentError(ConsentCode.NOTICE_LOCALE)
    state = await ConsentState.get_or_none(patron_id=patron_id, service_id=service.id)
    return overview_of(service, notice, state, age)


async def message_grid(
    patron_id: int, group: str, locale: str, age: AgeContext | None = None
) -> MessageGrid:
    """One messaging service's grid, read from the database (never a stale notice)."""
    services = [
        service
        for service in await all_services()
        if service.choice is not None and service.choice.group == group
    ]
    if not services:
        raise ConsentError(ConsentCode.UNKNOWN_SERVICE)
    services.sort(key=lambda service: service.position)
    states = {
        state.service_id: state
        for state in await ConsentState.filter(
            patron_id=patron_id, service_id__in=[service.id for service in services]
        )
    }
    notices = await current_notices(services, locale)
    if len(notices) < len(services):
        raise ConsentError(ConsentCode.NOTICE_LOCALE)
    return _grid(
        [
            overview_of(service, notices[service.id], states.get(service.id), age)
            for service in services
        ]
    )


async def status_of_service(patron_id: int, service: PublishedService) -> Status:
    state = await ConsentState.get_or_none(patron_id=patron_id, service_id=service.id)
    return state_status(state, service.terms_revision)


async def status_of_store(patron_id: int, store: str) -> tuple[PublishedService | None, Status]:
    """The consent status of the service that owns a store of retained data."""
    service = await service_for_store(store)
    if service is None:
        return None, Status.NEVER_ASKED
    return service, await status_of_service(patron_id, service)


async def states_of(patron_ids: list[int]) -> dict[tuple[int, int], StateRow]:
    """Consent states of several patrons, keyed by (patron, service): a guardian's overview."""
    return {
        (state.patron_id, state.service_id): StateRow(
            service_id=state.service_id,
            granted=state.granted,
            granted_by=state.granted_by,
            last_kind=state.last_kind,
            terms_revision=state.terms_revision,
            suspended_at=state.suspended_at,
            suspension_reason=state.suspension_reason,
            revision=state.revision,
            updated_at=state.updated_at,
        )
        for state in await ConsentState.filter(patron_id__in=patron_ids)
    }


# A consent check by library systems. One pair, the common case: the patron's row, and the
# state for that one service if there is one.
_CHECK_ONE = (
    "SELECT p.born_on, s.granted, s.terms_revision, s.suspended_at IS NOT NULL AS suspended "
    "FROM patron p LEFT JOIN consent_state s ON s.patron_id = p.id AND s.service_id = ? "
    "WHERE p.card_lookup = ?"
)
# A batch: every (card, service) pair asked in one round trip.
_CHECK_MANY = (
    "SELECT p.card_lookup, p.born_on, s.service_id, s.granted, s.terms_revision, "
    "s.suspended_at IS NOT NULL AS suspended FROM patron p LEFT JOIN consent_state s "
    "ON s.patron_id = p.id "
    "AND s.service_id IN ({services}) WHERE p.card_lookup IN ({cards})"
)
_NEVER_ANSWERED: dict[str, Any] = {"granted": None, "suspended": None, "terms_revision": None}


@functools.cache
def _check_query(services: int, cards: int) -> str:
    """One text per shape, so the driver's statement cache prepares each shape once."""
    return _CHECK_MANY.format(services=", ".join("?" * services), cards=", ".join("?" * cards))


async def check_consents(
    pairs: list[tuple[str, PublishedService]], *, today: date
) -> list[CheckAnswer | None]:
    """The answer for each (card lookup, service) pair, None for a card the portal does not
    know: one query, whatever the number of pairs."""
    if len(pairs) == 1:
        lookup, service = pairs[0]
        rows = await fetch_rows(_CHECK_ONE, service.id, lookup)
        return [_check_answer(rows[0], _born_on(rows[0]), service, today) if rows else None]
    if not pairs:
        return []
    cards = sorted({lookup for lookup, _ in pairs})
    service_ids = sorted({service.id for _, service in pairs})
    rows = await fetch_rows(_check_query(len(service_ids), len(cards)), *service_ids, *cards)
    born: dict[str, date | None] = {}
    states: dict[tuple[str, int], dict[str, Any]] = {}
    for row in rows:
        born[row["card_lookup"]] = _born_on(row)
        if row["service_id"] is not None:
            states[(row["card_lookup"], row["service_id"])] = row
    return [
        _check_answer(
            states.get((lookup, service.id), _NEVER_ANSWERED), born[lookup], service, today
        )
        if lookup in born
        else None
        for lookup, service in pairs
    ]


def _born_on(row: dict[str, Any]) -> date | None:
    value = row["born_on"]
    return date.fromisoformat(value) if isinstance(value, str) else value


def _check_answer(
    state: dict[str, Any], born_on: date | None, service: PublishedService, today: date
) -> CheckAnswer:
    """`state` holds None in `granted` when the patron has never answered."""
    granted = state["granted"]
    return check_answer(
        granted=None if granted is None else bool(granted),
        suspended=bool(state["suspended"]),
        current_terms=state["terms_revision"] == service.terms_revision,
        offered=is_offered(service.minimum_age, born_on, today),
    )


@dataclass(frozen=True)
class SystemDeletion:
    """Where the latest erasure of a service stands in one connected system holding its
    data, as the ledger records it: requested, and confirmed or not yet."""

    system: str
    name: str
    requested_at: datetime
    confirmed_at: datetime | None


async def deletions_of(patron_id: int, service_id: int) -> list[SystemDeletion]:
    """Per connected system, the latest deletion request about this patron's data for the
    service, and its confirmation if there is one yet."""
    events = await ConsentEvent.filter(
        patron_id=patron_id,
        service_id=service_id,
        kind__in=(EventKind.DELETION_REQUESTED, EventKind.DELETION_CONFIRMED),
    ).order_by("id")
    latest: dict[str, tuple[str, SystemDeletion]] = {}
    confirmed: dict[str, datetime] = {}
    for event in events:
        if event.kind is EventKind.DELETION_CONFIRMED:
            confirmation = read_detail(event.kind, event.detail)
            confirmed.setdefault(confirmation["request"], event.occurred_at)
        elif event.kind is EventKind.DELETION_REQUESTED:
            asked = read_detail(event.kind, event.detail)
            system, name = asked["system"], asked["system_name"] or asked["system"]
            requested = SystemDeletion(system, name, event.occurred_at, None)
            latest[system] = (asked["request"], requested)
    return [
        SystemDeletion(found.system, found.name, found.requested_at, confirmed.get(request))
        for request, found in latest.values()
    ]
