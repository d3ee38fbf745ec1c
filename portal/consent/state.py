"""Reading a patron's consent state: the one question every other domain asks
("may this service hold this patron's data right now?")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from portal.catalog.models import Service
from portal.catalog.services import PublishedService
from portal.consent.models import ConsentState, EventKind
from portal.consent.policy import Status, StoredChoice, status_of
from portal.db import as_datetime, as_optional_datetime, fetch_rows


@dataclass(frozen=True)
class StateRow:
    """A consent state read for display; the same fields the status rules look at."""

    service_id: int
    granted: bool
    last_kind: str
    terms_revision: int
    suspended_at: datetime | None
    suspension_reason: str | None
    revision: int
    updated_at: datetime


STATE_COLUMNS = (
    "c.service_id, c.granted, c.last_kind, c.terms_revision, c.suspended_at, "
    "c.suspension_reason, c.revision, c.updated_at"
)


def state_from_row(row: dict[str, Any]) -> StateRow:
    return StateRow(
        service_id=row["service_id"],
        granted=bool(row["granted"]),
        last_kind=row["last_kind"],
        terms_revision=row["terms_revision"],
        suspended_at=as_optional_datetime(row["suspended_at"]),
        suspension_reason=row["suspension_reason"],
        revision=row["revision"],
        updated_at=as_datetime(row["updated_at"]),
    )


async def state_rows(patron_id: int) -> dict[int, StateRow]:
    """Every consent state of a patron, keyed by service."""
    rows = await fetch_rows(
        f"SELECT {STATE_COLUMNS} FROM consent_state c WHERE c.patron_id = ?",  # noqa: S608 - constant columns
        patron_id,
    )
    return {row["service_id"]: state_from_row(row) for row in rows}


def stored_choice(state: ConsentState | StateRow | None) -> StoredChoice | None:
    if state is None:
        return None
    return StoredChoice(
        granted=state.granted,
        terms_revision=state.terms_revision,
        suspended=state.suspended_at is not None,
        ever_granted=state.last_kind in (EventKind.WITHDRAWN, EventKind.EXPIRED),
    )


def status_for(
    state: ConsentState | StateRow | None, service: Service | PublishedService
) -> Status:
    return status_of(stored_choice(state), service.terms_revision)


async def status_of_store(patron_id: int, store: str) -> tuple[Service | None, Status]:
    """The consent status of the service that owns a portal-native store."""
    service = await Service.get_or_none(store=store)
    if service is None:
        return None, Status.NEVER_ASKED
    state = await ConsentState.get_or_none(patron_id=patron_id, service_id=service.id)
    return service, status_for(state, service)
