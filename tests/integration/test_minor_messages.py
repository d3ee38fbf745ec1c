"""A child's messages against a real database: each pair under the guardian rules of any
service, the number a guardian gives kept as the child's and erased with the child's last
choice on its channel, and where a child's messages go given only by a guardian."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from portal.consent import reads
from portal.consent.models import ConsentState
from portal.consent.policy import ConsentError
from portal.contacts.services import contact_of
from portal.decisions.services import MessageCell, choose_messages
from portal.ledger.models import ConsentEvent, EventKind
from portal.minors import services as minors
from tests.factories import SECRET, catalog_text, make_patron, messages_table, publish

pytestmark = pytest.mark.usefixtures("db")

NOW = datetime(2026, 7, 1, 16, 0, tzinfo=UTC)
TZ = "America/New_York"
HOLD_BY_TEXT = "messages__hold_filled__sms"
NUMBER = "(201) 555-0123"


async def cells(patron_id: int, on: set[str]) -> list[MessageCell]:
    """The whole grid as its page sends it, `on` ticked."""
    grid = await reads.message_grid(patron_id, "messages", "en")
    return [
        MessageCell(choice.service.key, choice.service.key in on, choice.notice.id, choice.revision)
        for choice in grid.choices
    ]


async def guardian_saves(guardian_id: int, link_id: int, child_id: int, on: set[str], **contacts):
    return await minors.guardian_choose_messages(
        guardian_id, link_id, "messages", await cells(child_id, on), contacts,
        locale="en", now=NOW, timezone=TZ, phone_region="US",
    )  # fmt: skip


async def child_saves(child_id: int, on: set[str], **contacts):
    return await choose_messages(
        child_id, "messages", await cells(child_id, on), contacts,
        locale="en", now=NOW, timezone=TZ, phone_region="US",
    )  # fmt: skip


async def child_and_guardian(born_on: date):
    child = await make_patron(born_on=born_on)
    guardian = await make_patron(born_on=date(1985, 5, 5))
    made = await minors.link_at_desk(SECRET, guardian.card, child.card, "Kid", now=NOW, timezone=TZ)
    return child, guardian, made.link_id


async def test_a_verified_guardian_gives_the_childs_number_and_the_child_takes_it_away() -> None:
    await publish(catalog_text(messages_table()))
    child, guardian, link_id = await child_and_guardian(date(2016, 3, 3))
    with pytest.raises(ConsentError, match="guardian_required"):
        await child_saves(child.id, {HOLD_BY_TEXT}, sms=NUMBER)
    assert await ConsentState.filter(patron_id=child.id).count() == 0

    assert await guardian_saves(guardian.id, link_id, child.id, {HOLD_BY_TEXT}, sms=NUMBER) == [
        HOLD_BY_TEXT
    ]
    assert await contact_of(child.id, "sms") == "+12015550123"
    assert await contact_of(guardian.id, "sms") is None
    given = await ConsentEvent.get(patron_id=child.id, kind=EventKind.GIVEN)
    assert given.actor == "guardian"

    # The child cannot say where the guardian's yes sends messages; nothing changes.
    with pytest.raises(ConsentError, match="guardian_required"):
        await child_saves(child.id, {HOLD_BY_TEXT}, sms="(201) 555-0199")
    assert await contact_of(child.id, "sms") == "+12015550123"

    assert await child_saves(child.id, set()) == [HOLD_BY_TEXT]
    assert await contact_of(child.id, "sms") is None
    erased = await ConsentEvent.filter(patron_id=child.id, kind=EventKind.ERASED).first()
    assert erased is not None
    assert erased.detail == {"rows_deleted": 1, "contact": "sms"}


async def test_a_teenager_decides_alone_and_the_guardian_cannot() -> None:
    await publish(catalog_text(messages_table()))
    teen, guardian, link_id = await child_and_guardian(date(2011, 1, 1))  # 15
    assert await child_saves(teen.id, {HOLD_BY_TEXT}, sms=NUMBER) == [HOLD_BY_TEXT]
    before = await ConsentEvent.filter(patron_id=teen.id).count()
    for on in (set(), {HOLD_BY_TEXT, "messages__item_due__sms"}):
        with pytest.raises(ConsentError, match="not_guardians_choice"):
            await guardian_saves(guardian.id, link_id, teen.id, on)
    assert await ConsentEvent.filter(patron_id=teen.id).count() == before
    assert await contact_of(teen.id, "sms") == "+12015550123"


async def test_a_guardian_linked_with_a_code_cannot_choose() -> None:
    await publish(catalog_text(messages_table()))
    child = await make_patron(born_on=date(2016, 3, 3))
    adult = await make_patron(born_on=date(1970, 1, 1))
    code, _ = await minors.issue_link_code(SECRET, child.id, now=NOW, timezone=TZ)
    link_id = await minors.redeem_link_code(SECRET, adult.id, code, "Kid", now=NOW, timezone=TZ)
    with pytest.raises(minors.MinorsError, match="guardian_not_verified"):
        await guardian_saves(adult.id, link_id, child.id, {HOLD_BY_TEXT}, sms=NUMBER)
    assert await ConsentState.filter(patron_id=child.id).count() == 0
    assert await contact_of(child.id, "sms") is None


async def test_a_guardian_sees_a_messaging_service_as_one_grid() -> None:
    await publish(catalog_text(messages_table(channels=("email", "sms", "phone"))))
    _, guardian, _ = await child_and_guardian(date(2016, 3, 3))
    [view] = await minors.children(guardian.id, "en", now=NOW, timezone=TZ)
    [grid] = view.listed
    assert isinstance(grid, reads.MessageGrid)
    assert grid.channels == ("email", "sms", "phone")
    assert [row.title for row in grid.rows] == ["hold_filled en notice", "item_due en notice"]


async def test_a_guardian_can_neither_change_a_teenagers_number_nor_probe_their_choices() -> None:
    await publish(catalog_text(messages_table()))
    teen, guardian, link_id = await child_and_guardian(date(2011, 3, 3))  # 15 on NOW
    assert await choose_messages(
        teen.id, "messages", await cells(teen.id, {HOLD_BY_TEXT}), {"sms": NUMBER},
        locale="en", now=NOW, timezone=TZ, phone_region="US",
    ) == [HOLD_BY_TEXT]  # fmt: skip
    events = await ConsentEvent.filter(patron_id=teen.id).count()
    # Nothing ticked or unticked: only a new number, then a probe of a choice that is on.
    for on in (set(), {HOLD_BY_TEXT}):
        with pytest.raises(ConsentError, match="not_guardians_choice"):
            await guardian_saves(guardian.id, link_id, teen.id, on, sms="(201) 555-0199")
    with pytest.raises(ConsentError, match="not_guardians_choice"):
        await guardian_saves(guardian.id, link_id, teen.id, {HOLD_BY_TEXT})
    assert await contact_of(teen.id, "sms") == "+12015550123"
    assert await ConsentEvent.filter(patron_id=teen.id).count() == events
