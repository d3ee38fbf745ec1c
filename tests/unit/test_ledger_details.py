"""Each ledger event kind's detail, pure: written through its shape, stored as the same JSON
as always (rows, receipts and exports already hold it), read back into the same shape."""

from __future__ import annotations

import json

import pytest

from portal.ledger.details import (
    SHAPES,
    DeletionConfirmed,
    DeletionRequested,
    DetailError,
    Erased,
    EventDetail,
    GuardianLinked,
    GuardianLinkEnded,
    NoDetail,
    Suspended,
    checked,
    read_detail,
)
from portal.ledger.vocabulary import EventKind

# (kind, the detail as written, the JSON it is stored as: compact, as Tortoise writes it;
# its keys, and their order, as ever)
STORED: list[tuple[EventKind, EventDetail, str]] = [
    (EventKind.GIVEN, NoDetail(), "{}"),
    (EventKind.REFUSED, NoDetail(), "{}"),
    (EventKind.WITHDRAWN, NoDetail(), "{}"),
    (EventKind.RENEWED, NoDetail(), "{}"),
    (EventKind.EXPIRED, NoDetail(), "{}"),
    (EventKind.ERASED, Erased(rows_deleted=5), '{"rows_deleted":5}'),
    (
        EventKind.ERASED,
        Erased(rows_deleted=0, reason="retention"),
        '{"rows_deleted":0,"reason":"retention"}',
    ),
    (
        EventKind.SUSPENDED,
        Suspended(reason="material_change", terms_revision=2),
        '{"reason":"material_change","terms_revision":2}',
    ),
    (EventKind.GUARDIAN_LINKED, GuardianLinked(link=12), '{"link":12}'),
    (
        EventKind.GUARDIAN_LINK_ENDED,
        GuardianLinkEnded(link=12, reason="ended_by_library"),
        '{"link":12,"reason":"ended_by_library"}',
    ),
    (
        EventKind.DELETION_REQUESTED,
        DeletionRequested(
            system="sms", system_name="SMS gateway", request="msg_a1", reason="withdrawn"
        ),
        '{"system":"sms","system_name":"SMS gateway","request":"msg_a1","reason":"withdrawn"}',
    ),
    (
        EventKind.DELETION_CONFIRMED,
        DeletionConfirmed(
            system="sms", system_name="SMS gateway", request="msg_a1", via="response"
        ),
        '{"system":"sms","system_name":"SMS gateway","request":"msg_a1","via":"response"}',
    ),
    (
        EventKind.DELETION_CONFIRMED,
        DeletionConfirmed(
            system="sms", system_name="SMS gateway", request="msg_a1", via="ack", client=7
        ),
        '{"system":"sms","system_name":"SMS gateway","request":"msg_a1","via":"ack","client":7}',
    ),
    (
        EventKind.CARRIED_OVER,
        {"from_service": "sms_notices"},
        '{"from_service":"sms_notices"}',
    ),
    (
        EventKind.CARRIED_OVER,
        {"to_service": "messages", "channel": "sms", "kinds": "hold_filled,item_due"},
        '{"to_service":"messages","channel":"sms","kinds":"hold_filled,item_due"}',
    ),
]


def test_every_kind_of_event_has_a_shape_for_its_detail() -> None:
    assert set(SHAPES) == set(EventKind)
    assert {kind for kind, _, _ in STORED} == set(EventKind)


@pytest.mark.parametrize(("kind", "detail", "stored"), STORED)
def test_a_detail_is_stored_as_it_always_was_and_reads_back_as_written(
    kind: EventKind, detail: EventDetail, stored: str
) -> None:
    written = json.dumps(checked(kind, detail), separators=(",", ":"))
    assert written == stored
    assert read_detail(kind, json.loads(written)) == detail
    assert list(read_detail(kind, json.loads(written))) == list(detail)  # in the same order


@pytest.mark.parametrize(
    ("kind", "detail"),
    [
        (EventKind.GIVEN, {"rows_deleted": 1}),  # another kind's detail
        (EventKind.ERASED, {}),  # a key it needs is missing
        (EventKind.ERASED, {"rows_deleted": 1, "note": "x"}),  # a key it does not know
        (EventKind.ERASED, {"rows_deleted": "1"}),  # a value of the wrong type
        (EventKind.ERASED, {"rows_deleted": True}),  # a boolean is not a count
        (EventKind.GUARDIAN_LINKED, {"link": None}),
        (EventKind.DELETION_CONFIRMED, {"system": "sms", "request": "msg_a1", "via": "ack"}),
    ],
)
def test_a_detail_that_is_not_its_kinds_shape_is_never_written(
    kind: EventKind, detail: dict[str, object]
) -> None:
    with pytest.raises(DetailError):
        checked(kind, detail)


def test_a_stored_detail_with_a_key_this_version_does_not_know_still_reads() -> None:
    stored = {"rows_deleted": 3, "reason": "retention", "by_a_later_version": True}
    assert read_detail(EventKind.ERASED, stored) == {"rows_deleted": 3, "reason": "retention"}


def test_a_stored_detail_missing_what_its_kind_needs_is_refused_on_reading() -> None:
    with pytest.raises(DetailError):
        read_detail(EventKind.DELETION_REQUESTED, {"system": "ils"})
