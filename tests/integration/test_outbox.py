"""The outbox against a real database: requests written with the change they follow, claimed
by one worker at a time, in order per patron, answered, acknowledged, retried, given up and
listed. (Real receivers and real processes: tests/system/test_delivery.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import socket
import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from portal.catalog.policy import CatalogError
from portal.catalog.services import connected_systems, current_service
from portal.consent import reads
from portal.consent.policy import Decision
from portal.credentials.policy import reference_key
from portal.db import Erasure
from portal.decisions import services as decisions
from portal.erasure.services import apply_retention
from portal.ledger.models import ConsentEvent, EventKind
from portal.minors import services as minors
from portal.outbox import delivery
from portal.outbox import services as outbox
from portal.outbox.keys import SecretsError
from portal.outbox.models import OutboxMessage
from portal.outbox.policy import DeliveryState, MessageKind
from portal.outbox.worker import CONCURRENT, DeliveryWorker, in_process
from portal.patrons.models import Patron
from portal.settings import Settings
from portal.stores.reading_history import services as reading_history
from portal.stores.registry import STORES
from tests.delivery import delivery_catalog, fast_delivery
from tests.factories import (
    SECRET,
    catalog_text,
    decides,
    make_patron,
    now,
    publish,
    service_table,
    system_table,
)

pytestmark = pytest.mark.usefixtures("db")

LEASE = 30.0


def catalog(*, history_categories: tuple[str, ...] = ("titles",)) -> str:
    return catalog_text(
        system_table("ils", "https://ils.library.example/hooks", name="Library system"),
        system_table("sms", "https://sms.example/hooks", name="TextRelay"),
        service_table(
            "reading_history",
            store="reading_history",
            systems=("ils",),
            data_categories=history_categories,
        ),
        service_table("sms_notices", systems=("sms", "ils"), retention_days=30),
        service_table("newsletter"),
    )


async def deletions(patron_id: int) -> list[OutboxMessage]:
    return await OutboxMessage.filter(
        patron_id=patron_id, kind=MessageKind.DELETION_REQUESTED
    ).order_by("id")


async def deliver(status: int | None, *, at: datetime | None = None) -> list[DeliveryState | None]:
    """A worker's round: claim what is due and record `status` as every answer."""
    moment = at or now()
    claimed = await delivery.claim_due(now=moment, limit=100, lease_seconds=LEASE)
    error = None if status else "ConnectError"
    return [
        await delivery.record_answer(message, status, error, now=moment, first_retry_seconds=30)
        for message in claimed
    ]


async def test_a_withdrawal_asks_each_system_to_delete_with_a_ledger_event_each() -> None:
    await publish(catalog())
    patron = await make_patron()
    await decides(patron.id, "sms_notices", Decision.YES)
    outcome = await decides(patron.id, "sms_notices", Decision.NO)
    assert outcome.erased == 0  # nothing kept here: the data lives in the two systems
    requests = await deletions(patron.id)
    assert [request.system for request in requests] == ["sms", "ils"]
    reference = as_a_library_system_computes_it(patron.card)
    for request in requests:
        body = json.loads(request.body)
        assert body["data"] == {
            "service": "sms_notices", "patron": reference, "reason": "withdrawn", "before": None
        }  # fmt: skip
        assert patron.card not in request.body
    events = await ConsentEvent.filter(patron_id=patron.id, kind=EventKind.DELETION_REQUESTED)
    assert [(e.detail["system_name"], e.detail["request"]) for e in events] == [
        ("TextRelay", requests[0].message_id),
        ("Library system", requests[1].message_id),
    ]


def as_a_library_system_computes_it(card: str) -> str:
    """From its own card number and the key `portal reference-key` printed, and nothing else."""
    key = bytes.fromhex(reference_key(SECRET).hex())
    return hmac.new(key, card.replace(" ", "").upper().encode(), hashlib.sha256).hexdigest()


async def test_systems_are_sent_a_reference_under_its_own_key_not_the_card_lookup() -> None:
    await publish(catalog())
    patron = await make_patron()
    await decides(patron.id, "sms_notices", Decision.YES)
    await decides(patron.id, "sms_notices", Decision.NO)
    stored = await Patron.get(id=patron.id)
    [sent] = {json.loads(request.body)["data"]["patron"] for request in await deletions(patron.id)}
    assert sent == stored.reference == as_a_library_system_computes_it(patron.card)
    assert sent != stored.card_lookup  # the sign-in lookup, keyed with the secret, stays inside


async def test_an_account_from_before_keeps_the_reference_systems_already_hold() -> None:
    await publish(catalog())
    patron = await make_patron()
    await Patron.filter(id=patron.id).update(reference=None)  # as migration 0016 leaves it
    await decides(patron.id, "sms_notices", Decision.YES)
    await decides(patron.id, "sms_notices", Decision.NO)
    stored = await Patron.get(id=patron.id)
    sent = {json.loads(request.body)["data"]["patron"] for request in await deletions(patron.id)}
    assert sent == {stored.card_lookup}


async def test_a_withdrawal_that_fails_midway_writes_no_request(monkeypatch) -> None:
    await publish(catalog())
    patron = await make_patron()
    await decides(patron.id, "reading_history", Decision.YES)

    async def crash(erasure: Erasure, patron_id: int) -> int:
        raise RuntimeError("power cut during the erasure")

    monkeypatch.setitem(STORES, "reading_history", replace(STORES["reading_history"], erase=crash))
    with pytest.raises(RuntimeError):
        await decides(patron.id, "reading_history", Decision.NO)
    assert await deletions(patron.id) == []
    monkeypatch.undo()
    await decides(patron.id, "reading_history", Decision.NO)
    assert len(await deletions(patron.id)) == 1


async def test_consent_given_tells_the_systems_and_nothing_else_does() -> None:
    await publish(catalog())
    patron = await make_patron()
    await decides(patron.id, "newsletter", Decision.YES)  # a service with no system
    await decides(patron.id, "sms_notices", Decision.NO)  # a refusal deletes nothing
    assert await OutboxMessage.all().count() == 0
    await decides(patron.id, "sms_notices", Decision.YES)
    given = await OutboxMessage.filter(kind=MessageKind.CONSENT_GIVEN).order_by("id")
    assert [message.system for message in given] == ["sms", "ils"]


async def test_expiry_tells_systems_why_after_a_change_and_after_coming_of_age() -> None:
    await publish(catalog())
    adult = await make_patron()
    await decides(adult.id, "reading_history", Decision.YES)
    await publish(catalog(history_categories=("titles", "ratings")))  # material: paused
    grace = {"material_grace_days": 30, "majority_grace_days": 30}
    assert await decisions.expire_unanswered(now=now() + timedelta(days=31), **grace) == 1
    [expired] = await deletions(adult.id)
    assert json.loads(expired.body)["data"]["reason"] == "expired"

    # A guardian agreed when the child was ten; at eighteen nobody confirmed it.
    child = await make_patron(born_on=date(2008, 7, 2))
    guardian = await make_patron(born_on=date(1980, 1, 1))
    past = datetime(2019, 1, 10, tzinfo=UTC)
    await minors.link_at_desk(SECRET, guardian.card, child.card, "Kid", now=past, timezone="UTC")
    [link] = await minors.children(guardian.id, "en", now=past, timezone="UTC")
    view = await reads.service_view(child.id, "sms_notices", "en")
    await minors.guardian_decide(
        guardian.id, link.link_id, "sms_notices", Decision.YES, notice_version_id=view.notice.id,
        expected_revision=view.revision, locale="en", now=past, timezone="UTC",
    )  # fmt: skip
    birthday = datetime(2026, 7, 2, 12, tzinfo=UTC)
    await minors.coming_of_age(now=birthday, timezone="UTC")
    await decisions.expire_unanswered(now=birthday + timedelta(days=31), **grace)
    reasons = {json.loads(m.body)["data"]["reason"] for m in await deletions(child.id)}
    assert reasons == {"came_of_age"}


async def test_retention_asks_each_system_once_a_day_about_every_patron() -> None:
    await publish(catalog())
    patron = await make_patron()
    await decides(patron.id, "reading_history", Decision.YES)
    old = reading_history.Loan("Old", "", date(2020, 1, 1))
    await reading_history.record_loans(patron.id, [old], now=now())
    today = now().date()
    assert await apply_retention(now=now(), today=today) == 1
    assert await apply_retention(now=now(), today=today) == 0
    sweeps = await OutboxMessage.filter(patron_id=None).order_by("id")
    assert sorted((m.system, json.loads(m.body)["data"]["service"]) for m in sweeps) == [
        ("ils", "reading_history"), ("ils", "sms_notices"), ("sms", "sms_notices")
    ]  # fmt: skip
    assert {json.loads(m.body)["data"]["before"] for m in sweeps if m.system == "sms"} == {
        (today - timedelta(days=30)).isoformat()
    }
    await apply_retention(now=now(), today=today + timedelta(days=1))
    assert await OutboxMessage.filter(patron_id=None).count() == 6


async def test_concurrent_workers_never_claim_the_same_request() -> None:
    await publish(catalog())
    for _ in range(12):
        patron = await make_patron()
        await decides(patron.id, "sms_notices", Decision.YES)
    # 24 consent notices, one per patron and system: none waits behind another.
    batches = await asyncio.gather(
        *(delivery.claim_due(now=now(), limit=5, lease_seconds=LEASE) for _ in range(6))
    )
    claimed = [message.id for batch in batches for message in batch]
    assert len(claimed) == len(set(claimed)) == 24
    assert await delivery.claim_due(now=now(), limit=5, lease_seconds=LEASE) == []


async def test_a_request_held_by_a_worker_is_taken_over_when_its_lease_ends() -> None:
    await publish(catalog())
    patron = await make_patron()
    await decides(patron.id, "reading_history", Decision.YES)
    [first] = await delivery.claim_due(now=now(), limit=10, lease_seconds=LEASE)
    assert await delivery.claim_due(now=now() + timedelta(seconds=LEASE - 1), limit=10,
                                  lease_seconds=LEASE) == []  # fmt: skip
    later = now() + timedelta(seconds=LEASE + 1)
    [second] = await delivery.claim_due(now=later, limit=10, lease_seconds=LEASE)
    assert second.message_id == first.message_id
    assert second.claim != first.claim
    # The worker that lost its lease answers late: ignored, the new holder's answer counts.
    assert await delivery.record_answer(first, 200, None, now=later, first_retry_seconds=30) is None
    assert await delivery.record_answer(second, 200, None, now=later, first_retry_seconds=30) == (
        DeliveryState.CONFIRMED
    )


async def test_requests_about_one_patron_reach_a_system_in_the_order_written() -> None:
    await publish(catalog())
    patron = await make_patron()
    await decides(patron.id, "reading_history", Decision.YES)
    await decides(patron.id, "reading_history", Decision.NO)
    assert await deliver(None) == [DeliveryState.PENDING]  # only the consent: the system is down
    # However the backoff falls, the deletion does not overtake the consent before it.
    later = now() + timedelta(hours=1)
    claimed = await delivery.claim_due(now=later, limit=10, lease_seconds=LEASE)
    assert [message.kind for message in claimed] == [MessageKind.CONSENT_GIVEN]
    await delivery.record_answer(claimed[0], 204, None, now=later, first_retry_seconds=30)
    [deletion] = await delivery.claim_due(now=later, limit=10, lease_seconds=LEASE)
    assert deletion.kind is MessageKind.DELETION_REQUESTED


async def test_a_confirmation_is_a_ledger_event_once_and_the_patron_sees_it() -> None:
    await publish(catalog())
    patron = await make_patron()
    await decides(patron.id, "sms_notices", Decision.YES)
    await deliver(200)
    await decides(patron.id, "sms_notices", Decision.NO)
    service_id = (await reads.service_view(patron.id, "sms_notices", "en")).service.id
    waiting = await reads.deletions_of(patron.id, service_id)
    assert [(d.name, d.confirmed_at) for d in waiting] == [
        ("TextRelay", None),
        ("Library system", None),
    ]
    assert await deliver(500) == [DeliveryState.PENDING, DeliveryState.PENDING]
    assert await deliver(200, at=now() + timedelta(hours=1)) == [DeliveryState.CONFIRMED] * 2
    assert all(d.confirmed_at for d in await reads.deletions_of(patron.id, service_id))
    confirmations = await ConsentEvent.filter(
        patron_id=patron.id, kind=EventKind.DELETION_CONFIRMED
    )
    assert [(e.channel, e.detail["via"]) for e in confirmations] == [("api", "response")] * 2


async def test_an_acknowledgement_after_202_is_recorded_once_with_the_client() -> None:
    await publish(catalog())
    patron = await make_patron()
    await decides(patron.id, "reading_history", Decision.YES)
    await deliver(204)
    await decides(patron.id, "reading_history", Decision.NO)
    assert await deliver(202) == [DeliveryState.ACCEPTED]
    [request] = await deletions(patron.id)
    for _ in range(2):
        acknowledged = await outbox.acknowledge(
            request.message_id, system=request.system, client_id=7, now=now()
        )
        assert acknowledged.state is DeliveryState.CONFIRMED
    [event] = await ConsentEvent.filter(patron_id=patron.id, kind=EventKind.DELETION_CONFIRMED)
    assert event.detail["via"] == "ack"
    assert event.detail["client"] == 7
    with pytest.raises(outbox.OutboxError):
        await outbox.acknowledge("msg_unknown", system=request.system, client_id=7, now=now())


async def test_a_system_that_never_answers_is_given_up_after_three_days_and_listed() -> None:
    await publish(catalog())
    patron = await make_patron()
    await decides(patron.id, "reading_history", Decision.YES)
    await deliver(204)
    requested = now()
    await decides(patron.id, "reading_history", Decision.NO, at=requested)
    assert await outbox.unconfirmed(now=requested + timedelta(hours=23)) == []
    moment, states = requested, [DeliveryState.PENDING]
    while states == [DeliveryState.PENDING]:
        moment += timedelta(hours=7)
        states = await deliver(None, at=moment)
    assert states == [DeliveryState.GAVE_UP]
    assert moment - requested <= timedelta(days=3, hours=7)
    [late] = await outbox.unconfirmed(now=moment)
    assert (late.system, late.state, late.last_error) == ("ils", "gave_up", "ConnectError")
    assert await outbox.retry_given_up(now=moment) == 1
    assert await deliver(200, at=moment) == [DeliveryState.CONFIRMED]
    assert await outbox.unconfirmed(now=moment) == []


async def test_a_system_back_after_an_outage_gets_what_waited_at_once() -> None:
    await publish(catalog())
    patrons = [await make_patron() for _ in range(3)]
    for patron in patrons:
        await decides(patron.id, "reading_history", Decision.YES)
    assert await deliver(None) == [DeliveryState.PENDING] * 3
    later = now() + timedelta(minutes=5)
    claimed = await delivery.claim_due(now=later, limit=1, lease_seconds=LEASE)
    await delivery.record_answer(claimed[0], 204, None, now=later, first_retry_seconds=30)
    # The two others were backing off; the system answers again, so they are due now.
    assert len(await delivery.claim_due(now=later, limit=10, lease_seconds=LEASE)) == 2


async def test_the_api_lists_deletions_per_system_oldest_first() -> None:
    await publish(catalog())
    patron = await make_patron()
    await decides(patron.id, "sms_notices", Decision.YES)
    await decides(patron.id, "sms_notices", Decision.NO)
    found = await outbox.deletion_requests(system="ils", unconfirmed_only=True, after=0, limit=10)
    assert [(r.system, r.service, r.reason) for r in found] == [("ils", "sms_notices", "withdrawn")]
    assert await outbox.deletion_requests(
        system="ils", unconfirmed_only=True, after=found[0].position, limit=10
    ) == []  # fmt: skip


async def test_confirmed_requests_are_deleted_after_thirty_days() -> None:
    await publish(catalog())
    patron = await make_patron()
    await decides(patron.id, "reading_history", Decision.YES)
    await deliver(200)
    assert await outbox.purge_confirmed(now=now() + timedelta(days=29)) == 0
    assert await outbox.purge_confirmed(now=now() + timedelta(days=31)) == 1


async def test_published_systems_are_kept_and_their_endpoints_change_in_place() -> None:
    await publish(catalog())
    moved = catalog().replace("https://sms.example/hooks", "https://sms.example/v2")
    await publish(moved)
    assert (await connected_systems())["sms"].endpoint == "https://sms.example/v2"
    without_sms = catalog_text(
        system_table("ils", "https://ils.library.example/hooks"),
        service_table("reading_history", store="reading_history", systems=("ils",)),
        service_table("sms_notices", systems=("ils",)),
        service_table("newsletter"),
    )
    with pytest.raises(CatalogError, match="system 'sms' is published"):
        await publish(without_sms)


async def test_delivery_refuses_to_start_without_a_published_systems_secret(tmp_path) -> None:
    await publish(catalog())
    settings = Settings(secret_key=SECRET, data_dir=tmp_path)
    with pytest.raises(SecretsError, match="ils, sms"):
        async with in_process(settings):
            pass
    async with in_process(replace(settings, delivery_in_process=False)) as worker:
        assert worker is None  # `portal deliver` runs elsewhere


async def test_delivery_refuses_a_name_that_resolves_to_an_internal_address_now(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Published while the name did not resolve (or resolved to a public address), the
    endpoint's host now answers with an address on the library's own network: nothing is
    sent there. (127.0.0.2 stands for it: loopback, and not the one the operator named.)"""
    endpoint = "https://ils.library.example/hooks"
    await publish(delivery_catalog(endpoint))
    patron = await make_patron()
    await decides(patron.id, "reading_history", Decision.YES)
    await decides(patron.id, "reading_history", Decision.NO)
    real = socket.getaddrinfo

    def answers(host: object, *args: Any, **kwargs: Any) -> Any:
        if host == "ils.library.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", 443))]
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", answers)
    settings = fast_delivery(Settings(secret_key=SECRET, data_dir=tmp_path), tmp_path)
    worker = DeliveryWorker(settings)
    try:
        assert await worker.deliver_due() == 1
    finally:
        await worker.close()
    # The first of the patron's requests (the consent given, then its deletion, in order).
    request = await OutboxMessage.filter(patron_id=patron.id).order_by("id").first()
    assert request is not None
    assert request.attempts == 1
    assert request.state is DeliveryState.PENDING  # tried again later, when it may be fixed
    assert request.last_error == "endpoint not allowed (PORTAL_SYSTEM_ALLOWED_ADDRESSES)"


class CountingReceiver:
    """A connected system answering 200 after `delay` seconds, over HTTP/1.1 kept-alive
    connections, counting the connections opened, the requests in flight at once and the
    requests each webhook-id arrived in."""

    def __init__(self, delay: float = 0.02) -> None:
        self.delay = delay
        self.connections = 0
        self.in_flight = 0
        self.most_in_flight = 0
        self.received: list[str] = []
        self.server: asyncio.Server | None = None
        self.handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/hooks"

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for handler in self.handlers:
                handler.cancel()
            await asyncio.gather(*self.handlers, return_exceptions=True)
            await self.server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        handler = asyncio.current_task()
        assert handler is not None
        self.handlers.add(handler)
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                headers = dict(
                    line.split(": ", 1) for line in head.decode().split("\r\n")[1:] if ": " in line
                )
                headers = {key.lower(): value for key, value in headers.items()}
                await reader.readexactly(int(headers.get("content-length", "0")))
                self.in_flight += 1
                self.most_in_flight = max(self.most_in_flight, self.in_flight)
                self.received.append(headers["webhook-id"])
                await asyncio.sleep(self.delay)
                self.in_flight -= 1
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()


async def retention_requests(days: int) -> None:
    """A retention request to the library system for each of `days` days: about every
    patron, none waits behind another (and no patron need be made for each)."""
    service = await current_service("reading_history")
    assert service is not None
    for day in range(days):
        await outbox.request_retention(
            service, before=now().date() - timedelta(days=day), now=now()
        )


async def test_a_worker_sends_a_whole_batch_some_at_a_time(tmp_path: Path) -> None:
    receiver = CountingReceiver()
    await publish(delivery_catalog(await receiver.start()))
    await retention_requests(60)
    settings = replace(
        fast_delivery(Settings(secret_key=SECRET, data_dir=tmp_path), tmp_path),
        delivery_lease_seconds=60,
    )
    worker = DeliveryWorker(settings)
    try:
        assert await worker.deliver_due() == 60  # claimed in one statement, all sent
    finally:
        await worker.close()
        await receiver.stop()
    assert sorted(receiver.received) == sorted(
        await OutboxMessage.all().values_list("message_id", flat=True)
    )
    assert 1 < receiver.most_in_flight <= CONCURRENT
    assert await OutboxMessage.filter(state=DeliveryState.CONFIRMED).count() == 60


async def test_a_worker_sends_over_connections_kept_alive(tmp_path: Path) -> None:
    receiver = CountingReceiver(delay=0)
    await publish(delivery_catalog(await receiver.start()))
    await retention_requests(3 * CONCURRENT)
    settings = fast_delivery(Settings(secret_key=SECRET, data_dir=tmp_path), tmp_path)
    worker = DeliveryWorker(settings)
    try:
        assert await worker.deliver_all_due() == 3 * CONCURRENT
    finally:
        await worker.close()
        await receiver.stop()
    # Each connection carried several requests: opening one per request would cost a
    # handshake each, and at a consortium's volume leave thousands in TIME_WAIT.
    assert len(receiver.received) == 3 * CONCURRENT
    assert receiver.connections <= CONCURRENT


async def test_a_batch_of_answers_is_recorded_as_each_would_be_alone() -> None:
    await publish(catalog())
    patrons = [await make_patron() for _ in range(4)]
    for patron in patrons:
        await decides(patron.id, "reading_history", Decision.YES)
    await deliver(204)  # the consents, confirmed: the deletions are due next
    for patron in patrons:
        await decides(patron.id, "reading_history", Decision.NO)
    moment = now()
    claimed = await delivery.claim_due(now=moment, limit=10, lease_seconds=LEASE)
    assert len(claimed) == 4
    # The last one's lease ended and another worker took it over meanwhile.
    later = moment + timedelta(seconds=LEASE + 1)
    [taken] = await delivery.claim_due(now=later, limit=1, lease_seconds=LEASE)
    assert taken.id == claimed[0].id
    answers = [
        delivery.Answer(claimed[0], 200, None),
        delivery.Answer(claimed[1], 200, None),
        delivery.Answer(claimed[2], 202, None),
        delivery.Answer(claimed[3], None, "ConnectError"),
    ]
    states = await delivery.record_answers(answers, now=later, first_retry_seconds=30)
    assert states == [
        None,
        DeliveryState.CONFIRMED,
        DeliveryState.ACCEPTED,
        DeliveryState.PENDING,
    ]
    rows = {m.id: m for m in await OutboxMessage.filter(id__in=[c.id for c in claimed])}
    assert rows[claimed[0].id].state is DeliveryState.PENDING  # the new holder's, untouched
    assert rows[claimed[0].id].claim == taken.claim
    confirmed = rows[claimed[1].id]
    assert (confirmed.attempts, confirmed.last_status, confirmed.claim) == (1, 200, None)
    assert confirmed.confirmed_at == later
    assert confirmed.confirmed_via == "response"
    accepted = rows[claimed[2].id]
    assert (accepted.accepted_at, accepted.confirmed_at) == (later, None)
    failed = rows[claimed[3].id]
    assert (failed.attempts, failed.last_error, failed.claim) == (1, "ConnectError", None)
    assert failed.due_ms > delivery.to_ms(later)
    # One ledger confirmation: the deletion confirmed by its answer, in its patron's record.
    events = await ConsentEvent.filter(kind=EventKind.DELETION_CONFIRMED)
    assert [(e.patron_id, e.detail["request"]) for e in events] == [
        (claimed[1].patron_id, claimed[1].message_id)
    ]


async def test_two_workers_in_parallel_send_each_request_once(engine: str, tmp_path: Path) -> None:
    if engine != "postgres":
        pytest.skip("workers in parallel hold rows on PostgreSQL (FOR UPDATE SKIP LOCKED)")
    receiver = CountingReceiver(delay=0.005)
    await publish(delivery_catalog(await receiver.start()))
    await retention_requests(250)
    settings = replace(
        fast_delivery(Settings(secret_key=SECRET, data_dir=tmp_path), tmp_path),
        delivery_lease_seconds=60,
    )
    workers = [DeliveryWorker(settings), DeliveryWorker(settings)]
    try:
        sent = await asyncio.gather(*(worker.deliver_all_due() for worker in workers))
    finally:
        for worker in workers:
            await worker.close()
        await receiver.stop()
    assert sum(sent) == 250
    assert all(sent)  # both took part
    assert len(receiver.received) == len(set(receiver.received)) == 250
    assert await OutboxMessage.filter(state=DeliveryState.CONFIRMED).count() == 250


class TricklingReceiver(CountingReceiver):
    """A connected system that answers one header line at a time, each well within a read
    timeout, for `seconds` in all: httpx's timeouts bound each read, not the answer."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        self.handlers.add(handler)
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\n")
            for _ in range(int(self.seconds / 0.05)):
                writer.write(b"x-wait: 1\r\n")
                await writer.drain()
                await asyncio.sleep(0.05)
            writer.write(b"content-length: 0\r\n\r\n")
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def test_a_receiver_answering_slowly_cannot_hold_a_batch_past_its_lease(
    tmp_path: Path,
) -> None:
    receiver = TricklingReceiver(seconds=4)
    await publish(delivery_catalog(await receiver.start()))
    await retention_requests(1)
    settings = replace(
        fast_delivery(Settings(secret_key=SECRET, data_dir=tmp_path), tmp_path),
        delivery_lease_seconds=1.5,
    )
    worker = DeliveryWorker(settings)
    started = time.monotonic()
    try:
        assert await worker.deliver_due() == 1
    finally:
        await worker.close()
        await receiver.stop()
    # Answered (as not in time) and recorded while the lease still held it.
    assert time.monotonic() - started < settings.delivery_lease_seconds
    request = await OutboxMessage.get()
    assert request.last_error == "no answer in time"
    assert request.state is DeliveryState.PENDING
