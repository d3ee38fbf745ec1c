"""Deletions reaching connected systems, as patrons and library systems see them: the page
after turning a service off, the consent record, and the deletions API. The app runs with its
delivery worker in process, sending to a real receiver process on loopback."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest

from portal.api.access import Scope
from portal.api.policy import ApiError
from portal.consent.policy import Decision
from portal.errors import ApiCode
from portal.outbox.models import OutboxMessage
from portal.outbox.policy import DeliveryState
from portal.settings import Settings
from portal.stores.reading_history import services as reading_history
from portal.stores.reading_history.models import HistoryEntry
from tests.api import bearer as api_bearer
from tests.delivery import ReceiverProcess, delivery_catalog
from tests.factories import (
    catalog_text,
    decides,
    make_patron,
    now,
    publish,
    service_table,
    standard_catalog,
    system_secrets,
    system_table,
)
from tests.web import choose, sign_in, visible_text

# Names and dates are isolated with <bdi> in every message: the visible text has a space.
WAITING = "Library system : waiting for confirmation. We keep asking until it is done."


@pytest.fixture
def portal_settings(settings: Settings, tmp_path: Path) -> Settings:
    """The worker in process, fast: a poll every 0.1 s, the first retry after 0.2 s."""
    system_secrets(tmp_path / "system-secrets.toml", "ils")
    return replace(
        settings,
        delivery_in_process=True,
        delivery_poll_seconds=0.1,
        delivery_retry_seconds=0.2,
        delivery_lease_seconds=2,
        system_secrets_file=tmp_path / "system-secrets.toml",
    )


@pytest.fixture
def receiver(tmp_path: Path):
    secret = (tmp_path / "system-secrets.toml").read_text().split('"')[1]
    made = ReceiverProcess(tmp_path, secret)
    yield made
    made.stop()


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
    await asyncio.sleep(0.5)  # the worker tries, and fails: nobody answers
    assert WAITING in visible_text((await portal.client.get("/services/reading_history")).text)

    receiver.start()
    deadline = time.monotonic() + 20
    page = ""
    while "deletion confirmed on" not in page and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        page = visible_text((await portal.client.get("/services/reading_history")).text)
    assert "Library system : deletion confirmed on" in page
    assert WAITING not in page
    applied = [entry for entry in receiver.entries("answered") if entry["applied"]]
    assert len(applied) == 2  # the consent, then the deletion: each applied once
    record = visible_text((await portal.client.get("/privacy/record")).text)
    assert "We asked Library system to delete your data" in record
    assert "Library system confirmed your data was deleted" in record


async def test_turning_on_again_shows_no_deletion(portal, receiver: ReceiverProcess) -> None:
    await publish(delivery_catalog(receiver.endpoint))
    patron = await make_patron()
    await sign_in(portal.client, patron)
    await choose(portal.client, "reading_history", "yes")
    await choose(portal.client, "reading_history", "no")
    await choose(portal.client, "reading_history", "yes")
    page = visible_text((await portal.client.get("/services/reading_history")).text)
    assert "Deleted here" not in page


async def bearer(system: str = "ils") -> dict[str, str]:
    """A client of the connected system `system` (published in the catalog)."""
    return await api_bearer(Scope.DELETIONS_READ, Scope.DELETIONS_ACK, system=system)


async def test_a_system_catches_up_and_acknowledges_through_the_api(
    portal, receiver: ReceiverProcess
) -> None:
    await publish(delivery_catalog(receiver.endpoint))  # never started: nothing is delivered
    patron = await make_patron()
    await decides(patron.id, "reading_history", Decision.YES)
    await decides(patron.id, "reading_history", Decision.NO)
    headers = await bearer()
    listed = await portal.client.get("/api/v1/deletions?system=ils", headers=headers)
    assert listed.status_code == 200
    [deletion] = listed.json()["deletions"]
    assert deletion["service"] == "reading_history"
    assert deletion["reason"] == "withdrawn"
    assert deletion["status"] == "pending"
    assert listed.json()["next"] is None
    for _ in range(2):  # acknowledged twice: recorded once
        acked = await portal.client.post(f"/api/v1/deletions/{deletion['id']}/ack", headers=headers)
        assert acked.status_code == 200
        assert acked.json()["status"] == "confirmed"
    message = await OutboxMessage.get(message_id=deletion["id"])
    assert message.state is DeliveryState.CONFIRMED
    assert message.confirmed_via == "ack"
    left = await portal.client.get("/api/v1/deletions?system=ils", headers=headers)
    assert left.json()["deletions"] == []
    everything = await portal.client.get("/api/v1/deletions?status=all&limit=1", headers=headers)
    assert len(everything.json()["deletions"]) == 1
    assert everything.json()["next"] is not None


async def test_the_deletions_api_refuses_unknown_requests_and_bad_queries(
    portal, receiver: ReceiverProcess
) -> None:
    await publish(delivery_catalog(receiver.endpoint))
    headers = await bearer()
    unknown = await portal.client.post("/api/v1/deletions/msg_nothing/ack", headers=headers)
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "deletion_unknown"
    for query in ("status=some", "limit=0", "limit=501", "after=-1", "system=ILS!"):
        bad = await portal.client.get(f"/api/v1/deletions?{query}", headers=headers)
        assert bad.status_code == 400, query
        assert bad.json()["error"] == "query_invalid"
    anonymous = await portal.client.get("/api/v1/deletions")
    assert anonymous.status_code == 401


def two_systems_catalog(endpoint: str) -> str:
    return catalog_text(
        system_table("ils", endpoint, name="Library system"),
        system_table("ebooks", endpoint, name="eBook vendor"),
        service_table("reading_history", store="reading_history", systems=("ils",)),
        service_table("ebook_link", systems=("ebooks",)),
    )


async def test_each_system_sees_and_confirms_only_its_own_deletion_requests(
    portal, receiver: ReceiverProcess
) -> None:
    """A request names the patron: the e-book vendor learns nothing of what the patron asked
    the library system to delete, and cannot confirm it in the library system's name."""
    await publish(two_systems_catalog(receiver.endpoint))  # never started: nothing delivered
    patron = await make_patron()
    for service in ("reading_history", "ebook_link"):
        await decides(patron.id, service, Decision.YES)
        await decides(patron.id, service, Decision.NO)
    ils, ebooks = await bearer("ils"), await bearer("ebooks")
    [for_ils] = (await portal.client.get("/api/v1/deletions", headers=ils)).json()["deletions"]
    [for_ebooks] = (await portal.client.get("/api/v1/deletions", headers=ebooks)).json()[
        "deletions"
    ]
    assert (for_ils["system"], for_ils["service"]) == ("ils", "reading_history")
    assert (for_ebooks["system"], for_ebooks["service"]) == ("ebooks", "ebook_link")
    peeking = await portal.client.get("/api/v1/deletions?system=ils", headers=ebooks)
    assert (peeking.status_code, peeking.json()["error"]) == (403, "system_not_yours")
    forged = await portal.client.post(f"/api/v1/deletions/{for_ils['id']}/ack", headers=ebooks)
    assert (forged.status_code, forged.json()["error"]) == (404, "deletion_unknown")
    assert (await OutboxMessage.get(message_id=for_ils["id"])).state is DeliveryState.PENDING


async def test_a_client_speaking_for_no_system_sees_no_deletion_requests(
    portal, receiver: ReceiverProcess
) -> None:
    await publish(delivery_catalog(receiver.endpoint))
    patron = await make_patron()
    await decides(patron.id, "reading_history", Decision.YES)
    await decides(patron.id, "reading_history", Decision.NO)
    [message] = await OutboxMessage.filter(kind="deletion.requested")
    headers = await api_bearer(Scope.DELETIONS_READ, Scope.DELETIONS_ACK)
    listed = await portal.client.get("/api/v1/deletions", headers=headers)
    acked = await portal.client.post(f"/api/v1/deletions/{message.message_id}/ack", headers=headers)
    for answer in (listed, acked):
        assert (answer.status_code, answer.json()["error"]) == (403, "system_required")
    assert (await OutboxMessage.get(id=message.id)).state is DeliveryState.PENDING


async def test_a_client_cannot_speak_for_a_system_the_catalog_does_not_name(portal) -> None:
    await publish(standard_catalog())
    with pytest.raises(ApiError) as refused:
        await api_bearer(Scope.DELETIONS_READ, system="ils")
    assert refused.value.code is ApiCode.SYSTEM_UNKNOWN
