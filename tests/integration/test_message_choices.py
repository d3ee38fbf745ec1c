"""Messages per kind and channel: a messaging service is published as one service per kind
of message by channel (and one for titles in messages), each its own consent; a service of
one channel it replaces hands over exactly the kinds its notice named, nothing more."""

from __future__ import annotations

import pytest

from portal.catalog.models import Service
from portal.catalog.publishing import Change
from portal.catalog.services import published_catalog
from portal.consent import reads
from portal.consent.models import ConsentState
from portal.consent.policy import ConsentError, Decision, Status
from portal.ledger.models import ConsentEvent, EventKind
from portal.outbox.models import OutboxMessage
from tests.factories import (
    catalog_text,
    decides,
    make_patron,
    messages_table,
    publish,
    service_table,
    system_table,
)

pytestmark = pytest.mark.usefixtures("db")

GATEWAY = system_table("sms_gateway", "http://127.0.0.1:9/deletions")
PAIRS = (
    "messages__hold_filled__email",
    "messages__hold_filled__sms",
    "messages__item_due__email",
    "messages__item_due__sms",
    "messages__titles",
)


def before() -> str:
    """Today's catalog: one switch for every text message, of any kind."""
    return GATEWAY + catalog_text(
        service_table(
            "sms_notices",
            systems=("sms_gateway",),
            purposes=("notices",),
            data_categories=("contact_detail",),
            retention_days=30,
        ), service_table("newsletter")
    )


def after(**changes: object) -> str:
    options: dict[str, object] = {
        "kinds": ("hold_filled", "item_due", "renewed"),
        "carry_over": (("sms_notices", "sms", ("hold_filled", "item_due")),),
        "channel_systems": {"sms": ("sms_gateway",)},
    }
    options.update(changes)
    return GATEWAY + catalog_text(
        messages_table(**options),  # type: ignore[arg-type]
        service_table("newsletter"),
    )


async def statuses(patron_id: int, keys: list[str]) -> dict[str, Status]:
    return {key: (await reads.service_view(patron_id, key, "en")).status for key in keys}


async def test_each_kind_by_each_channel_is_its_own_choice_all_off() -> None:
    report = await publish(catalog_text(messages_table(), service_table("newsletter")))
    assert set(report.changes) == {*PAIRS, "newsletter"}
    patron = await make_patron()
    assert set((await statuses(patron.id, list(PAIRS))).values()) == {Status.NEVER_ASKED}
    await decides(patron.id, "messages__hold_filled__sms", Decision.YES)
    assert await statuses(patron.id, list(PAIRS)) == {
        key: Status.ON if key == "messages__hold_filled__sms" else Status.NEVER_ASKED
        for key in PAIRS
    }
    event = await ConsentEvent.filter(patron_id=patron.id, kind=EventKind.GIVEN).get()
    service = await Service.get(id=event.service_id)
    assert service.choice == {
        "group": "messages",
        "kind": "hold_filled",
        "channel": "sms",
        "ils_name": "Hold_Filled",
        "contains": ["branch"],
    }
    assert event.notice_hash
    assert event.locale == "en"


async def test_adding_a_kind_or_channel_changes_no_consent_given_to_another() -> None:
    await publish(catalog_text(messages_table(), service_table("newsletter")))
    patron = await make_patron()
    await decides(patron.id, "messages__hold_filled__sms", Decision.YES)
    report = await publish(
        catalog_text(
            messages_table(
                kinds=("hold_filled", "item_due", "renewed"), channels=("email", "sms", "phone")
            ),
            service_table("newsletter"),
        )
    )
    assert report.consents_suspended == 0
    assert report.changes["messages__renewed__phone"] is Change.NEW
    assert report.changes["messages__hold_filled__sms"] is Change.UNCHANGED
    assert (await statuses(patron.id, ["messages__hold_filled__sms"])) == {
        "messages__hold_filled__sms": Status.ON
    }


async def test_a_material_change_of_the_messaging_notice_pauses_every_choice_in_force() -> None:
    await publish(catalog_text(messages_table(), service_table("newsletter")))
    patron = await make_patron()
    await decides(patron.id, "messages__hold_filled__sms", Decision.YES)
    await decides(patron.id, "messages__titles", Decision.YES)
    report = await publish(
        catalog_text(messages_table(recipients=("library", "Vendor")), service_table("newsletter"))
    )
    assert report.consents_suspended == 2


async def test_a_kind_cannot_be_removed_once_published() -> None:
    await publish(catalog_text(messages_table(), service_table("newsletter")))
    with pytest.raises(Exception, match="cannot be removed"):
        await publish(
            catalog_text(messages_table(kinds=("hold_filled",)), service_table("newsletter"))
        )


async def test_text_reminders_become_exactly_the_kinds_their_notice_named() -> None:
    await publish(before())
    kept = await make_patron()
    never = await make_patron()
    off = await make_patron()
    await decides(kept.id, "sms_notices", Decision.YES)
    await decides(off.id, "sms_notices", Decision.YES)
    await decides(off.id, "sms_notices", Decision.NO)
    requests_before = await OutboxMessage.all().count()

    report = await publish(after())

    assert report.consents_carried == 1
    carried = await statuses(
        kept.id,
        [
            "messages__hold_filled__sms",
            "messages__item_due__sms",
            "messages__renewed__sms",
            "messages__hold_filled__email",
            "messages__titles",
        ],
    )
    assert carried == {
        "messages__hold_filled__sms": Status.ON,
        "messages__item_due__sms": Status.ON,
        "messages__renewed__sms": Status.NEVER_ASKED,
        "messages__hold_filled__email": Status.NEVER_ASKED,
        "messages__titles": Status.NEVER_ASKED,
    }
    for patron in (never, off):
        granted = await ConsentState.filter(patron_id=patron.id, granted=True).count()
        assert granted == 0
    # Both sides of the move are in the ledger, and nothing was erased or asked deleted:
    # the number is still used, for the kinds the patron agreed to.
    events = await ConsentEvent.filter(patron_id=kept.id, kind=EventKind.CARRIED_OVER)
    details = sorted(str(sorted(event.detail.items())) for event in events)
    assert details == sorted(
        [
            str([("from_service", "sms_notices")]),
            str([("from_service", "sms_notices")]),
            str(
                [("channel", "sms"), ("kinds", "hold_filled,item_due"), ("to_service", "messages")]
            ),
        ]
    )
    assert await OutboxMessage.all().count() == requests_before
    # The old switch is no longer offered, anywhere.
    assert "sms_notices" not in (await published_catalog()).by_key
    with pytest.raises(ConsentError):
        await decides(kept.id, "sms_notices", Decision.YES)
    # Publishing the same catalog again carries nothing twice.
    assert (await publish(after())).consents_carried == 0


async def test_carrying_over_to_terms_that_go_further_pauses_the_choices() -> None:
    await publish(before())
    patron = await make_patron()
    await decides(patron.id, "sms_notices", Decision.YES)
    await publish(after(purposes=("notices", "marketing")))
    assert await statuses(patron.id, ["messages__hold_filled__sms"]) == {
        "messages__hold_filled__sms": Status.NEEDS_RENEWAL
    }
