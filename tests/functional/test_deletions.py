"""Deletions for connected systems, as patrons and library systems see them: the service's
page after turning it on again, and the deletions API. The app runs with its delivery worker
in process; the connected systems' endpoint answers nobody, so nothing is delivered. (A real
receiver process, down and then back: tests/system/test_deletion_pages.py.)"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from portal.api.access import Scope
from portal.api.policy import ApiError, sign_access_token
from portal.consent.policy import Decision
from portal.errors import ApiCode
from portal.outbox.models import OutboxMessage
from portal.outbox.policy import DeliveryState
from portal.settings import Settings
from tests.api import bearer as api_bearer
from tests.delivery import delivery_catalog, fast_delivery
from tests.factories import (
    SECRET,
    catalog_text,
    decides,
    make_patron,
    publish,
    service_table,
    standard_catalog,
    system_table,
)
from tests.web import choose, sign_in, visible_text

# Nothing listens on the discard port: every delivery attempt fails at once.
NOBODY = "http://127.0.0.1:9/hooks"


@pytest.fixture
def portal_settings(settings: Settings, tmp_path: Path) -> Settings:
    return fast_delivery(settings, tmp_path)


async def test_turning_on_again_shows_no_deletion(portal) -> None:
    await publish(delivery_catalog(NOBODY))
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


async def test_a_system_catches_up_and_acknowledges_through_the_api(portal) -> None:
    await publish(delivery_catalog(NOBODY))
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


async def test_the_deletions_api_refuses_unknown_requests_and_bad_queries(portal) -> None:
    await publish(delivery_catalog(NOBODY))
    headers = await bearer()
    unknown = await portal.client.post("/api/v1/deletions/msg_nothing/ack", headers=headers)
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "deletion_unknown"
    # after=2147483648: past the 32-bit id column (PostgreSQL refused to bind it: a 500).
    for query in (
        "status=some",
        "limit=0",
        "limit=501",
        "after=-1",
        "after=2147483648",
        "system=ILS!",
    ):
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


async def test_each_system_sees_and_confirms_only_its_own_deletion_requests(portal) -> None:
    """A request names the patron: the e-book vendor learns nothing of what the patron asked
    the library system to delete, and cannot confirm it in the library system's name."""
    await publish(two_systems_catalog(NOBODY))
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


async def test_a_client_speaking_for_no_system_sees_no_deletion_requests(portal) -> None:
    await publish(delivery_catalog(NOBODY))
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


async def test_a_token_for_a_client_that_does_not_exist_lists_nothing(portal) -> None:
    await publish(delivery_catalog(NOBODY))
    patron = await make_patron()
    await decides(patron.id, "reading_history", Decision.YES)
    await decides(patron.id, "reading_history", Decision.NO)
    await bearer()  # the system's real client exists: 999 is not it
    forged = sign_access_token(
        SECRET,
        client=999,
        client_id="no-such-client",
        name="ils",
        generation=1,
        scopes=frozenset(Scope),
        now=int(time.time()),
        system="ils",
    )
    listed = await portal.client.get(
        "/api/v1/deletions?system=ils", headers={"authorization": f"Bearer {forged}"}
    )
    assert listed.status_code == 401
    assert "deletions" not in listed.json()
