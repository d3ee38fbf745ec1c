"""A withdrawal reaching a connected system, as the patron sees it on the pages: the app runs
with its delivery worker in process, sending to a real receiver process on loopback that is
down at first. (The deletions API, with nobody answering: tests/functional/test_deletions.py.)"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from portal.outbox.models import OutboxMessage
from portal.outbox.policy import DeliveryState, MessageKind
from portal.settings import Settings
from portal.stores.reading_history import services as reading_history
from portal.stores.reading_history.models import HistoryEntry
from tests.delivery import ReceiverProcess, delivery_catalog, fast_delivery
from tests.factories import make_patron, now, publish
from tests.support import until
from tests.web import choose, sign_in, visible_text

# Names and dates are isolated with <bdi> in every message: the visible text has a space.
WAITING = "Library system : waiting for confirmation. We keep asking until it is done."


@pytest.fixture
def portal_settings(settings: Settings, tmp_path: Path) -> Settings:
    return fast_delivery(settings, tmp_path)


@pytest.fixture
def receiver(
    portal_settings: Settings, receivers: Callable[..., ReceiverProcess]
) -> ReceiverProcess:
    assert portal_settings.system_secrets_file is not None
    secrets = tomllib.loads(portal_settings.system_secrets_file.read_text(encoding="utf-8"))
    return receivers(secret=secrets["ils"])


async def failed_attempt() -> OutboxMessage | None:
    """The patron's consent notice (sent before the deletion), once the worker has tried to
    send it to the system that is down, and failed."""
    message = await OutboxMessage.get(kind=MessageKind.CONSENT_GIVEN)
    return message if message.attempts > 0 and message.last_error else None


async def test_a_withdrawal_while_the_system_is_down_deletes_here_and_shows_waiting(
    portal, receiver: ReceiverProcess
) -> None:
    await publish(delivery_catalog(receiver.endpoint))
    patron = await make_patron()
    await sign_in(portal.client, patron)
    await choose(portal.client, "reading_history", "yes")
    loan = reading_history.Loan("Beloved", "Toni Morrison", date(2026, 3, 1))
    await reading_history.record_loans(patron.id, [loan], now=now())

    turned_off = visible_text((await choose(portal.client, "reading_history", "no")).text)
    assert await HistoryEntry.filter(patron_id=patron.id).count() == 0
    assert "1 saved item was deleted." in turned_off
    assert "Deleted here, in this portal." in turned_off
    assert WAITING in turned_off
    tried = await until(failed_attempt, what="the worker to try the system, and fail")
    assert tried.state is DeliveryState.PENDING
    assert WAITING in visible_text((await portal.client.get("/services/reading_history")).text)

    receiver.start()

    async def confirmed_page() -> str | None:
        page = visible_text((await portal.client.get("/services/reading_history")).text)
        return page if "deletion confirmed on" in page else None

    page = await until(confirmed_page, what="the deletion confirmed on the service's page")
    assert "Library system : deletion confirmed on" in page
    assert WAITING not in page
    applied = [entry for entry in receiver.entries("answered") if entry["applied"]]
    assert len(applied) == 2  # the consent, then the deletion: each applied once
    record = visible_text((await portal.client.get("/privacy/record")).text)
    assert "We asked Library system to delete your data" in record
    assert "Library system confirmed your data was deleted" in record
