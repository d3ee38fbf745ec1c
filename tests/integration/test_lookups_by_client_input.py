"""The use cases that look something up by what a client sent (a deletion id, a notice key
and revision, a receipt reference) answer "not found" for any value no row could hold,
before the database sees it: no driver error, whose text would quote the value into a log."""

from __future__ import annotations

import pytest

from portal.consent.policy import Decision
from portal.errors import ApiCode
from portal.outbox import services as outbox
from portal.outbox.services import OutboxError
from portal.rights import services as rights
from tests.factories import SECRET, decides, make_patron, now, publish, standard_catalog

pytestmark = pytest.mark.usefixtures("db")

CARD_LIKE = "4111111111111111"


@pytest.mark.parametrize("message_id", ["m" * 41, CARD_LIKE * 3, "msg_\u00e9t\u00e9", "a\nb", ""])
async def test_an_id_no_deletion_request_could_have_is_unknown(message_id: str) -> None:
    with pytest.raises(OutboxError) as refused:
        await outbox.acknowledge(message_id, system="ils", client_id=1, now=now())
    assert refused.value.code is ApiCode.DELETION_UNKNOWN
    assert CARD_LIKE not in str(refused.value)


@pytest.mark.parametrize("key", ["n" * 41, "newsletter\n", "n\u00e9ws", CARD_LIKE * 3])
async def test_a_notice_key_no_service_could_have_has_no_history(key: str) -> None:
    await publish(standard_catalog())
    assert await rights.notice_history(key) is None
    assert await rights.shown_version(key, 1, "en") is None


@pytest.mark.parametrize("revision", [2**31, 2**63, 10**30, -1])
async def test_a_revision_past_the_column_shows_no_version(revision: int) -> None:
    await publish(standard_catalog())
    assert await rights.shown_version("newsletter", revision, "en") is None
    assert await rights.shown_version("newsletter", 1, "e" * 300) is None


@pytest.mark.parametrize("reference", ["\u00e9" * 24, "٣" * 24, "r" * 300, "A" * 24])
async def test_a_receipt_reference_of_another_shape_names_no_receipt(reference: str) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    await decides(patron.id, "newsletter", Decision.YES)
    assert await rights.receipt_facts(patron.id, reference, secret=SECRET) is None
