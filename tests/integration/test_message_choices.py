"""Messages per kind and channel: a messaging service is published as one service per kind
of message by channel (and one for titles in messages), each its own consent; a service of
one channel it replaces hands over exactly the kinds its notice named, nothing more."""

from __future__ import annotations

import json

import pytest

from portal.catalog.models import Service
from portal.catalog.publishing import Change
from portal.catalog.services import published_catalog
from portal.consent import reads
from portal.consent.models import ConsentState
from portal.consent.policy import ConsentError, Decision, Status
from portal.contacts.models import MessageContact
from portal.contacts.policy import ContactError
from portal.contacts.services import contact_of
from portal.decisions import services as decisions
from portal.errors import MessagesCode
from portal.ledger.models import ConsentEvent, EventKind
from portal.outbox.delivery import claim_due
from portal.outbox.models import OutboxMessage
from portal.outbox.policy import body_of
from portal.outbox.services import bodies_to_send
from portal.retained_keys.models import RetainedDataKey
from tests.factories import (
    catalog_text,
    decides,
    make_patron,
    messages_table,
    now,
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
        ),
        service_table("newsletter"),
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
    last = await OutboxMessage.all().order_by("-id").first()
    requests_before = last.id if last else 0

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
    # The gateway learns each choice now in force, from which service; nothing is deleted.
    sent_now = await OutboxMessage.filter(id__gt=requests_before).order_by("id")
    bodies = [json.loads(message.body)["data"] for message in sent_now]
    assert [(body["service"], body["message"]["carried_from"]) for body in bodies] == [
        ("messages__hold_filled__sms", "sms_notices"),
        ("messages__item_due__sms", "sms_notices"),
    ]
    assert {message.kind for message in sent_now} == {"consent.given"}
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


# --- contact details live only while they are used ---------------------------------------


async def decides_with(patron_id: int, key: str, decision: Decision, contact: str | None):
    view = await reads.service_view(patron_id, key, "en")
    return await decisions.decide(
        patron_id,
        key,
        decision,
        notice_version_id=view.notice.id,
        expected_revision=view.revision,
        locale="en",
        now=now(),
        timezone="UTC",
        contact=contact,
    )


def with_gateway() -> str:
    return GATEWAY + catalog_text(
        messages_table(channel_systems={"sms": ("sms_gateway",)}), service_table("newsletter")
    )


async def sent(patron_id: int) -> list[dict[str, object]]:
    """The requests as the systems are sent them (a number is kept sealed in the outbox)."""
    rows = await OutboxMessage.filter(patron_id=patron_id).order_by("id")
    bodies = await bodies_to_send(rows)
    return [json.loads(bodies[row.id]) for row in rows]


async def test_the_first_choice_on_a_channel_asks_for_its_number_and_nothing_changes_without():
    await publish(with_gateway())
    patron = await make_patron()
    with pytest.raises(ContactError) as refused:
        await decides_with(patron.id, "messages__hold_filled__sms", Decision.YES, None)
    assert refused.value.code is MessagesCode.CONTACT_REQUIRED
    for bad, code in (
        ("not a number", MessagesCode.CONTACT_INVALID),
        ("+1 555 0100", MessagesCode.CONTACT_INVALID),
        ("(201) 555-0123x" + "9" * 300, MessagesCode.CONTACT_INVALID),
    ):
        with pytest.raises(ContactError) as refused:
            await decides_with(patron.id, "messages__hold_filled__sms", Decision.YES, bad)
        assert refused.value.code is code
    assert await MessageContact.filter(patron_id=patron.id).count() == 0
    assert await ConsentState.filter(patron_id=patron.id).count() == 0
    assert await ConsentEvent.filter(patron_id=patron.id).count() == 0

    await decides_with(patron.id, "messages__hold_filled__sms", Decision.YES, "(201) 555-0123")
    assert await contact_of(patron.id, "sms") == "+12015550123"
    # The second choice on the channel needs none; the gateway is told each, with the number.
    await decides_with(patron.id, "messages__item_due__sms", Decision.YES, None)
    given = [body for body in await sent(patron.id) if body["type"] == "consent.given"]
    assert {body["data"]["message"]["kind"] for body in given} == {"Hold_Filled", "Item_Due"}
    assert {body["data"]["message"]["contact"] for body in given} == {"+12015550123"}
    # An email choice asks for an address of its own.
    with pytest.raises(ContactError):
        await decides_with(patron.id, "messages__hold_filled__email", Decision.YES, None)
    with pytest.raises(ContactError):
        await decides_with(patron.id, "messages__hold_filled__email", Decision.YES, "me@")


async def test_the_last_choice_off_on_a_channel_erases_its_number_with_a_deletion_request():
    await publish(with_gateway())
    patron = await make_patron()
    await decides_with(patron.id, "messages__hold_filled__sms", Decision.YES, "+44 7911 123456")
    await decides_with(patron.id, "messages__item_due__sms", Decision.YES, None)
    await decides_with(
        patron.id, "messages__hold_filled__email", Decision.YES, "Reader@Example.org"
    )

    await decides_with(patron.id, "messages__hold_filled__sms", Decision.NO, None)
    assert await contact_of(patron.id, "sms") == "+447911123456"  # one text choice still on
    await decides_with(patron.id, "messages__item_due__sms", Decision.NO, None)
    assert await contact_of(patron.id, "sms") is None
    assert await contact_of(patron.id, "email") == "Reader@example.org"
    erased = await ConsentEvent.filter(patron_id=patron.id, kind=EventKind.ERASED)
    assert [event.detail for event in erased] == [{"rows_deleted": 1, "contact": "sms"}]
    deletions = [body for body in await sent(patron.id) if body["type"] == "deletion.requested"]
    assert [body["data"]["message"]["contact_erased"] for body in deletions] == [False, True]


async def test_a_patron_changes_a_number_without_touching_their_choices():
    await publish(with_gateway())
    patron = await make_patron()
    with pytest.raises(ContactError) as refused:
        await decisions.change_contact(patron.id, "sms", "+12015550123", region="US", now=now())
    assert refused.value.code is MessagesCode.CONTACT_UNUSED
    await decides_with(patron.id, "messages__hold_filled__sms", Decision.YES, "+12015550123")
    events = await ConsentEvent.filter(patron_id=patron.id).count()
    await decisions.change_contact(patron.id, "sms", "201-555-0199", region="US", now=now())
    assert await contact_of(patron.id, "sms") == "+12015550199"
    assert await ConsentEvent.filter(patron_id=patron.id).count() == events
    changed = [body for body in await sent(patron.id) if body["type"] == "contact.changed"]
    assert [body["data"]["contact"] for body in changed] == ["+12015550199"]


async def test_the_last_carried_text_choice_off_tells_the_gateway_to_delete_the_number() -> None:
    """The portal never had this number (the gateway held it under the old service): the
    deletion request still says it goes."""
    await publish(before())
    patron = await make_patron()
    await decides(patron.id, "sms_notices", Decision.YES)
    await publish(after())
    await decides_with(patron.id, "messages__hold_filled__sms", Decision.NO, None)
    await decides_with(patron.id, "messages__item_due__sms", Decision.NO, None)
    deletions = [body for body in await sent(patron.id) if body["type"] == "deletion.requested"]
    assert [body["data"]["message"]["contact_erased"] for body in deletions] == [False, True]


async def test_an_erased_number_is_taken_out_of_every_request_that_carried_it() -> None:
    await publish(with_gateway())
    patron = await make_patron()
    await decides_with(patron.id, "messages__hold_filled__sms", Decision.YES, "+12015550123")
    await decisions.change_contact(patron.id, "sms", "+12015550199", region="US", now=now())
    await decides_with(patron.id, "messages__hold_filled__sms", Decision.NO, None)
    bodies = [message.body for message in await OutboxMessage.filter(patron_id=patron.id)]
    assert bodies
    assert not [body for body in bodies if "+1201555" in body]


async def test_two_messaging_services_share_one_number_per_channel() -> None:
    await publish(
        catalog_text(
            messages_table("news", kinds=("digest",), channels=("email",)),
            messages_table("alerts", kinds=("hold_filled",), channels=("email",)),
        )
    )
    patron = await make_patron()
    await decides_with(patron.id, "news__digest__email", Decision.YES, "a@example.org")
    await decides_with(patron.id, "alerts__hold_filled__email", Decision.YES, None)
    await decides_with(patron.id, "news__digest__email", Decision.NO, None)
    assert await contact_of(patron.id, "email") == "a@example.org"  # alerts still use it
    await decides_with(patron.id, "alerts__hold_filled__email", Decision.NO, None)
    assert await contact_of(patron.id, "email") is None


async def test_a_new_number_typed_with_a_new_tick_is_a_change_for_the_choices_already_on():
    await publish(with_gateway())
    patron = await make_patron()
    await decides_with(patron.id, "messages__hold_filled__sms", Decision.YES, "+12015550123")
    await decides_with(patron.id, "messages__item_due__sms", Decision.YES, "+12015550199")
    changed = [body for body in await sent(patron.id) if body["type"] == "contact.changed"]
    assert [body["data"]["contact"] for body in changed] == ["+12015550199"]


async def test_moving_a_tick_between_kinds_on_one_channel_keeps_its_number() -> None:
    await publish(with_gateway())
    patron = await make_patron()
    await decides_with(patron.id, "messages__hold_filled__sms", Decision.YES, "+12015550123")
    grid = await reads.message_grid(patron.id, "messages", "en")
    cells = [
        decisions.MessageCell(
            choice.service.key,
            choice.service.key == "messages__item_due__sms",
            choice.notice.id,
            choice.revision,
        )
        for choice in grid.choices
    ]
    changed = await decisions.choose_messages(
        patron.id, "messages", cells, {}, locale="en", now=now(), timezone="UTC"
    )
    assert sorted(changed) == ["messages__hold_filled__sms", "messages__item_due__sms"]
    assert await contact_of(patron.id, "sms") == "+12015550123"


async def test_a_kind_whose_messages_may_carry_more_asks_again() -> None:
    await publish(catalog_text(messages_table(), service_table("newsletter")))
    patron = await make_patron()
    await decides(patron.id, "messages__hold_filled__sms", Decision.YES)
    more = catalog_text(messages_table(), service_table("newsletter")).replace(
        'key = "hold_filled"\nils_name = "Hold_Filled"\ncontains = ["branch"]',
        'key = "hold_filled"\nils_name = "Hold_Filled"\ncontains = ["branch", "pickup_by"]',
    )
    report = await publish(more)
    assert report.changes["messages__hold_filled__sms"] is Change.MATERIAL
    assert report.changes["messages__item_due__sms"] is Change.UNCHANGED
    assert await statuses(patron.id, ["messages__hold_filled__sms"]) == {
        "messages__hold_filled__sms": Status.NEEDS_RENEWAL
    }


async def test_the_gateway_is_sent_the_number_as_written_while_the_outbox_keeps_it_sealed():
    """The stored request holds the number sealed under the patron's key for the channel;
    the gateway gets the very bytes it got before numbers were sealed, the same on every
    retry, and the number null once its key is gone."""
    await publish(with_gateway())
    patron = await make_patron()
    await decides_with(patron.id, "messages__hold_filled__sms", Decision.YES, "+12015550123")
    [stored] = await OutboxMessage.filter(patron_id=patron.id)
    assert "+12015550123" not in stored.body

    async def sent_now() -> bytes:
        [claimed] = await claim_due(now=now(), limit=10, lease_seconds=60)
        await OutboxMessage.filter(id=claimed.id).update(claim=None, lease_until_ms=0)
        return claimed.body

    first = await sent_now()
    as_written = json.loads(stored.body)
    as_written["data"]["message"]["contact"] = "+12015550123"
    assert first == body_of(as_written).encode()
    assert await sent_now() == first
    await RetainedDataKey.filter(patron_id=patron.id, store="contact:sms").delete()
    as_written["data"]["message"]["contact"] = None
    assert await sent_now() == body_of(as_written).encode()
