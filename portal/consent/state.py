"""Reading a patron's consent state: the one question every other domain asks
("may this service hold this patron's data right now?")."""

from __future__ import annotations

from portal.catalog.models import Service
from portal.consent.models import ConsentState, EventKind
from portal.consent.policy import Status, StoredChoice, status_of


def stored_choice(state: ConsentState | None) -> StoredChoice | None:
    if state is None:
        return None
    return StoredChoice(
        granted=state.granted,
        terms_revision=state.terms_revision,
        suspended=state.suspended_at is not None,
        ever_granted=state.last_kind in (EventKind.WITHDRAWN, EventKind.EXPIRED),
    )


def status_for(state: ConsentState | None, service: Service) -> Status:
    return status_of(stored_choice(state), service.terms_revision)


async def status_of_store(patron_id: int, store: str) -> tuple[Service | None, Status]:
    """The consent status of the service that owns a portal-native store."""
    service = await Service.get_or_none(store=store)
    if service is None:
        return None, Status.NEVER_ASKED
    state = await ConsentState.get_or_none(patron_id=patron_id, service_id=service.id)
    return service, status_for(state, service)
