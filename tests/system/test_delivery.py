"""Delivery to real receivers and through real faults: each receiver is its own process on
loopback verifying signatures with the `standardwebhooks` library; the portal delivers from
`portal serve` (its in-process worker) or `portal deliver`, and is killed with SIGKILL.

The test itself writes only before the portal's processes start: on SQLite one process
writes at a time. (A withdrawal while the receiver is down, through the pages, with the
worker in process: tests/system/test_deletion_pages.py.)"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from portal.api.access import Scope
from portal.consent import reads
from portal.ledger.models import ConsentEvent, EventKind
from portal.outbox.models import OutboxMessage
from portal.outbox.policy import DeliveryState
from portal.stores.reading_history.models import HistoryEntry
from tests.api import make_client, signed_token
from tests.delivery import (
    delivery_catalog,
    delivery_problems,
    kill_run,
    portal_environment,
    prepare,
    running,
    serving,
    turn_on_and_off,
    wait_until_settled,
)
from tests.factories import publish
from tests.support import free_port, until

pytestmark = pytest.mark.usefixtures("db")


async def every_consent_notice_tried() -> list[OutboxMessage] | None:
    """Every request, once the worker has tried to send each consent notice."""
    messages = await OutboxMessage.all()
    notices = [m for m in messages if m.kind == "consent.given"]
    return messages if notices and all(m.attempts > 0 for m in notices) else None


async def test_a_receiver_down_for_a_while_gets_every_request_once_it_is_back(
    database_url: str, tmp_path: Path, receivers
) -> None:
    receiver = receivers()
    receiver.secret = await prepare(tmp_path, receiver.endpoint)
    patrons = await turn_on_and_off(4)
    assert await HistoryEntry.all().count() == 0  # deleted here at once
    with serving(portal_environment(database_url, tmp_path)):
        waiting = await until(
            every_consent_notice_tried, what="the worker to try each patron's consent notice"
        )
        assert {m.state for m in waiting} == {DeliveryState.PENDING}
        # Each patron's consent notice is tried (and retried); their deletions wait behind
        # it, so that they reach the system in the order they happened.
        assert {(m.kind.value, m.attempts > 0, m.last_error) for m in waiting} == {
            ("consent.given", True, "ConnectError"),
            ("deletion.requested", False, None),
        }
        service_id = (await reads.service_view(patrons[0], "reading_history", "en")).service.id
        [waiting] = await reads.deletions_of(patrons[0], service_id)
        assert waiting.confirmed_at is None
        receiver.start()
        messages = await wait_until_settled(8, seconds=30)
    assert delivery_problems(receiver, messages) == []
    [confirmed] = await reads.deletions_of(patrons[0], service_id)
    assert confirmed.confirmed_at is not None


async def test_a_receiver_failing_three_times_gets_the_same_request_a_fourth(
    database_url: str, tmp_path: Path, receivers
) -> None:
    receiver = receivers("--fail-first", "3")
    receiver.secret = await prepare(tmp_path, receiver.endpoint)
    receiver.start()
    await turn_on_and_off(1)
    with running(portal_environment(database_url, tmp_path), "deliver"):
        messages = await wait_until_settled(2, seconds=30)
    assert delivery_problems(receiver, messages) == []
    assert [m.attempts for m in messages] == [4, 4]
    for message in messages:
        answers = [e for e in receiver.entries("answered") if e["id"] == message.message_id]
        assert [answer["status"] for answer in answers] == [500, 500, 500, 200]
        assert len({answer["body"] for answer in answers}) == 1


async def test_a_receiver_accepting_with_202_confirms_later_through_the_api(
    database_url: str, tmp_path: Path, receivers
) -> None:
    # The client speaks for the system "ils", which the catalog must name before it exists.
    await publish(delivery_catalog("http://127.0.0.1:9/not-yet"))
    token = await signed_token(await make_client(Scope.DELETIONS_ACK, system="ils"))
    port = free_port()
    receiver = receivers("--accept", "--ack-url", f"http://127.0.0.1:{port}", "--ack-token", token)
    receiver.secret = await prepare(tmp_path, receiver.endpoint)
    receiver.start()
    [patron] = await turn_on_and_off(1)
    with serving(portal_environment(database_url, tmp_path), port=port):
        messages = await wait_until_settled(2, seconds=30)
    assert delivery_problems(receiver, messages) == []
    deletion = next(m for m in messages if m.kind == "deletion.requested")
    assert deletion.confirmed_via == "ack"
    assert deletion.accepted_at is not None
    [event] = await ConsentEvent.filter(patron_id=patron, kind=EventKind.DELETION_CONFIRMED)
    assert event.detail["via"] == "ack"
    assert isinstance(event.detail["client"], int)


async def test_killing_portal_deliver_mid_batch_loses_no_request(
    engine: str, database_url: str, tmp_path: Path
) -> None:
    if engine != "postgres":
        pytest.skip("workers in several processes share PostgreSQL (row locks, SKIP LOCKED)")
    started = time.monotonic()
    report = await kill_run(database_url, tmp_path, patrons=6, kills=2)
    assert report.kills == 2
    assert report.problems == []
    assert report.duplicates > 0  # requests cut off mid-flight were sent again, same id
    assert time.monotonic() - started < 30
