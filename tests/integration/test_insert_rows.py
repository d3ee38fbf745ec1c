"""`portal.db.insert_rows`, which a job's batch writes events and requests with, writes the
very row the ORM writes: every column, converted as its field converts it (JSON, enums,
times), and a field left out taking its default."""

from __future__ import annotations

import pytest

from portal.catalog.models import Service
from portal.db import insert_rows
from portal.ledger.details import DeletionRequested
from portal.ledger.models import ConsentEvent, EventKind
from portal.ledger.services import SYSTEM_JOB, event, record
from portal.outbox.models import OutboxMessage
from portal.outbox.policy import DeliveryState, MessageKind
from tests.factories import make_patron, now, publish, standard_catalog

pytestmark = pytest.mark.usefixtures("db")

_COMPARED = [name for name in ConsentEvent._meta.db_fields if name != "id"]


async def test_an_event_written_in_a_batch_is_the_event_record_writes() -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    moment = now()
    detail = DeletionRequested(system="ils", system_name="ILS", request="m-1", reason="expired")
    columns = event(
        patron.id,
        EventKind.DELETION_REQUESTED,
        SYSTEM_JOB,
        now=moment,
        purposes=["a", "b"],
        detail=detail,
    )
    await record(
        patron.id,
        EventKind.DELETION_REQUESTED,
        SYSTEM_JOB,
        now=moment,
        purposes=["a", "b"],
        detail=detail,
    )
    await insert_rows(ConsentEvent, [columns, columns])
    one, two, three = (
        await ConsentEvent.filter(patron_id=patron.id).order_by("id").values(*_COMPARED)
    )
    assert one == two == three
    assert one["detail"]["request"] == "m-1"
    assert one["purposes"] == ["a", "b"]


async def test_a_field_left_out_takes_its_default() -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    service = await Service.first()
    assert service is not None
    moment = now()
    await insert_rows(
        OutboxMessage,
        [
            dict(
                message_id="msg_batch",
                system="ils",
                kind=MessageKind.DELETION_REQUESTED,
                patron_id=patron.id,
                service_id=service.id,
                body="{}",
                created_at=moment,
                give_up_at=moment,
                state=DeliveryState.PENDING,
                due_ms=1,
            )
        ],
    )
    written = await OutboxMessage.get(message_id="msg_batch")
    assert (written.attempts, written.lease_until_ms, written.claim) == (0, 0, None)
    assert written.kind is MessageKind.DELETION_REQUESTED
    assert written.created_at == moment
