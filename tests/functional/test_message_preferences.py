"""The library system reads which messages each patron agreed to (/api/v1/message-preferences):
the kinds by channel that are on now, by its own names, the contact details only with their
own scope, one patron by reference or up to a hundred in one round trip, in a query count
that does not grow with the batch."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

import jsonschema_rs
import pytest

from portal.api.access import Scope
from portal.api.openapi import document
from portal.api.reads import PatronAsked, message_preferences
from portal.catalog.services import forget_published_catalog, published_catalog
from portal.consent.models import ConsentState
from portal.consent.policy import Decision
from portal.patrons.models import Patron
from portal.patrons.policy import normalise_card
from portal.patrons.services import card_lookup, patron_reference
from tests.api import bearer
from tests.factories import (
    SECRET,
    TEST_CONTACTS,
    FactoryPatron,
    catalog_text,
    decides,
    make_patron,
    messages_table,
    now,
    publish,
    service_table,
)

PATH = "/api/v1/message-preferences"
HOLD_BY_TEXT = "messages__hold_filled__sms"
HOLD_BY_TEXT_ANSWER = {
    "group": "messages",
    "kind": "Hold_Filled",
    "channel": "sms",
    "contains": ["branch"],
    "titles": False,
}


def catalog(**changes: object) -> str:
    return catalog_text(messages_table(**changes), service_table("newsletter"))  # type: ignore[arg-type]


def reference(patron: FactoryPatron) -> str:
    return patron_reference(SECRET, normalise_card(patron.card) or "")


async def readers(*scopes: Scope) -> dict[str, str]:
    return await bearer(*scopes)


async def get(portal, patron: str, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    return await portal.client.get(PATH, params={"patron": patron}, headers=headers)


async def post(portal, patrons: list[dict[str, str]], headers: dict[str, str]):  # type: ignore[no-untyped-def]
    return await portal.client.post(PATH, json={"patrons": patrons}, headers=headers)


async def test_one_patron_by_reference_gets_the_pairs_on_by_the_library_systems_names(
    portal,
) -> None:
    await publish(catalog())
    patron = await make_patron()
    await decides(patron.id, HOLD_BY_TEXT, Decision.YES)
    await decides(patron.id, "messages__item_due__email", Decision.NO)
    await decides(patron.id, "newsletter", Decision.YES)  # no message: not answered here
    answer = await get(portal, reference(patron), await readers(Scope.PREFERENCES_READ))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"patron": reference(patron), "messages": [HOLD_BY_TEXT_ANSWER]}


async def test_titles_in_messages_is_said_with_each_message(portal) -> None:
    await publish(catalog())
    patron = await make_patron()
    await decides(patron.id, HOLD_BY_TEXT, Decision.YES)
    await decides(patron.id, "messages__titles", Decision.YES)
    answer = await get(portal, reference(patron), await readers(Scope.PREFERENCES_READ))
    assert answer.json()["messages"] == [{**HOLD_BY_TEXT_ANSWER, "titles": True}]


async def test_contact_details_only_with_the_contacts_scope(portal) -> None:
    await publish(catalog())
    patron = await make_patron()
    await decides(patron.id, HOLD_BY_TEXT, Decision.YES)
    without = await get(portal, reference(patron), await readers(Scope.PREFERENCES_READ))
    assert "contacts" not in without.json()
    with_scope = await readers(Scope.PREFERENCES_READ, Scope.CONTACTS_READ)
    answer = await get(portal, reference(patron), with_scope)
    assert answer.json()["contacts"] == {"sms": TEST_CONTACTS["sms"]}
    batch = await post(portal, [{"patron": reference(patron)}], with_scope)
    assert batch.json()["results"][0]["contacts"] == {"sms": TEST_CONTACTS["sms"]}
    batch = await post(
        portal, [{"patron": reference(patron)}], await readers(Scope.PREFERENCES_READ)
    )
    assert "contacts" not in batch.json()["results"][0]


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_without_the_preferences_scope_nothing_is_answered(portal, method: str) -> None:
    await publish(catalog())
    patron = await make_patron()
    await decides(patron.id, HOLD_BY_TEXT, Decision.YES)
    # Contacts alone, or every other scope: neither reads anyone's preferences.
    others = [scope for scope in Scope if scope is not Scope.PREFERENCES_READ]
    for scopes in ([Scope.CONTACTS_READ], others):
        headers = await readers(*scopes)
        if method == "GET":
            answer = await get(portal, reference(patron), headers)
        else:
            answer = await post(portal, [{"patron": reference(patron)}], headers)
        assert answer.status_code == 403
        assert answer.json()["error"] == "insufficient_scope"
        assert answer.json()["scope"] == "preferences:read"
        assert "messages" not in answer.text


@pytest.mark.parametrize("size", [0, 101])
async def test_a_batch_holds_one_to_a_hundred_patrons(portal, size: int) -> None:
    await publish(catalog())
    patron = await make_patron()
    await decides(patron.id, HOLD_BY_TEXT, Decision.YES)
    answer = await post(
        portal, [{"patron": reference(patron)}] * size, await readers(Scope.PREFERENCES_READ)
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "patrons_invalid"
    assert set(answer.json()) == {"error", "message"}  # nobody's choices


async def test_a_batch_of_a_hundred_is_answered_in_order(portal) -> None:
    await publish(catalog())
    patrons = [await make_patron() for _ in range(4)]
    await decides(patrons[1].id, HOLD_BY_TEXT, Decision.YES)
    asked = [{"card_number": patrons[n % 4].card} for n in range(100)]
    answer = await post(portal, asked, await readers(Scope.PREFERENCES_READ))
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert len(results) == 100
    assert [len(result["messages"]) for result in results[:4]] == [0, 1, 0, 0]
    assert results[5]["patron"] == reference(patrons[1])


@pytest.mark.parametrize(
    "shape",
    [
        {"patrons": "x"},
        {"patrons": [{"patron": "a"}]},  # not a reference
        {"patrons": [{"patron": "a" * 64, "card_number": "20000000001"}]},  # which one?
        {"patrons": [7]},
        {"cards": []},
        [],
    ],
)
async def test_a_malformed_batch_is_refused_whole(portal, shape: object) -> None:
    answer = await portal.client.post(
        PATH, json=shape, headers=await readers(Scope.PREFERENCES_READ)
    )
    assert (answer.status_code, answer.json()["error"]) == (400, "patrons_invalid")


async def test_unknown_patrons_are_answered_unknown_and_nothing_more(portal) -> None:
    await publish(catalog())
    patron = await make_patron()
    await decides(patron.id, HOLD_BY_TEXT, Decision.YES)
    headers = await readers(Scope.PREFERENCES_READ, Scope.CONTACTS_READ)
    stranger = patron_reference(SECRET, "29999999999")
    answer = await get(portal, stranger, headers)
    assert (answer.status_code, answer.json()["error"]) == (404, "patron_unknown")
    assert set(answer.json()) == {"error", "message"}
    # A card number is no reference: refused, never looked up, whoever it belongs to.
    for not_a_reference in (patron.card, card_lookup(SECRET, patron.card)[:40], ""):
        answer = await get(portal, not_a_reference, headers)
        assert (answer.status_code, answer.json()["error"]) == (400, "query_invalid")
    answer = await portal.client.get(PATH, headers=headers)
    assert (answer.status_code, answer.json()["error"]) == (400, "query_invalid")
    batch = await post(
        portal,
        [
            {"patron": stranger},
            {"card_number": "29999999999"},
            {"card_number": "12"},
            {"card_number": patron.card},
        ],
        headers,
    )
    assert batch.json()["results"] == [
        {"patron": stranger, "error": "patron_unknown"},
        {"error": "card_unknown"},
        {"error": "card_format"},
        {
            "patron": reference(patron),
            "messages": [HOLD_BY_TEXT_ANSWER],
            "contacts": {"sms": TEST_CONTACTS["sms"]},
        },
    ]


async def test_a_pair_turned_off_disappears_with_its_contact(portal) -> None:
    await publish(catalog())
    patron = await make_patron()
    await decides(patron.id, HOLD_BY_TEXT, Decision.YES)
    await decides(patron.id, "messages__item_due__email", Decision.YES)
    await decides(patron.id, HOLD_BY_TEXT, Decision.NO)
    answer = await get(
        portal, reference(patron), await readers(Scope.PREFERENCES_READ, Scope.CONTACTS_READ)
    )
    assert answer.json()["messages"] == [
        {
            "group": "messages",
            "kind": "Item_Due",
            "channel": "email",
            "contains": ["branch"],
            "titles": False,
        }
    ]
    assert answer.json()["contacts"] == {"email": TEST_CONTACTS["email"]}


async def test_a_paused_pair_is_not_on_and_its_contact_is_not_given(portal) -> None:
    await publish(catalog())
    patron = await make_patron()
    await decides(patron.id, HOLD_BY_TEXT, Decision.YES)
    await decides(patron.id, "messages__item_due__email", Decision.YES)
    # Paused (as after coming of age): the patron's to confirm before anything is sent.
    state = await ConsentState.get(patron_id=patron.id, service__key=HOLD_BY_TEXT)
    state.suspended_at = now()
    await state.save()
    answer = await get(
        portal, reference(patron), await readers(Scope.PREFERENCES_READ, Scope.CONTACTS_READ)
    )
    assert [m["kind"] for m in answer.json()["messages"]] == ["Item_Due"]
    assert answer.json()["contacts"] == {"email": TEST_CONTACTS["email"]}


async def test_a_changed_notice_pauses_the_pair(portal) -> None:
    await publish(catalog())
    patron = await make_patron()
    await decides(patron.id, HOLD_BY_TEXT, Decision.YES)
    headers = await readers(Scope.PREFERENCES_READ)
    assert (await get(portal, reference(patron), headers)).json()["messages"]
    await publish(
        catalog_text(messages_table(purposes=("notices", "reminders")), service_table("newsletter"))
    )
    forget_published_catalog()
    assert (await get(portal, reference(patron), headers)).json()["messages"] == []


async def test_a_patron_from_before_references_is_known_by_the_reference_they_were_sent(
    portal,
) -> None:
    await publish(catalog())
    patron = await make_patron()
    await decides(patron.id, HOLD_BY_TEXT, Decision.YES)
    await Patron.filter(id=patron.id).update(reference=None)
    lookup = card_lookup(SECRET, patron.card)
    headers = await readers(Scope.PREFERENCES_READ)
    answer = await get(portal, lookup, headers)
    assert answer.json() == {"patron": lookup, "messages": [HOLD_BY_TEXT_ANSWER]}
    batch = await post(portal, [{"card_number": patron.card}], headers)
    assert batch.json()["results"][0]["patron"] == lookup


async def test_the_query_count_does_not_grow_with_the_batch(
    portal, caplog: pytest.LogCaptureFixture
) -> None:
    await publish(catalog(kinds=tuple(f"kind_{n}" for n in range(10))))
    patrons = [await make_patron(born_on=date(1990, 1, 1)) for _ in range(20)]
    for patron in patrons[::2]:
        await decides(patron.id, "messages__kind_1__sms", Decision.YES)
        await decides(patron.id, "messages__kind_2__email", Decision.YES)
    await published_catalog()  # held in memory between publications, as in a running server

    async def statements(size: int) -> int:
        asked = [
            PatronAsked(card_lookup=card_lookup(SECRET, patrons[n % 20].card)) for n in range(size)
        ]
        caplog.set_level(logging.DEBUG, logger="tortoise.db_client")
        caplog.clear()
        found = await message_preferences(asked, today=now().date(), with_contacts=True)
        assert sum(1 for one in found if one and one.messages) == (size + 1) // 2
        return sum(1 for r in caplog.records if r.name == "tortoise.db_client")

    assert await statements(1) == await statements(100) == 2  # the choices, the contacts


def matches_the_document(body: Any, schema: str) -> list[str]:
    """What in `body` the OpenAPI document's schema `schema` does not allow (its $refs
    resolved within the document)."""
    validator = jsonschema_rs.validator_for(
        {**document(), "$ref": f"#/components/schemas/{schema}"}
    )
    return [error.message for error in validator.iter_errors(body)]


async def test_every_answer_is_as_the_openapi_document_says(portal) -> None:
    """The live schemathesis run (tests/system/test_api_schema.py) serves the demo catalog,
    which has no messaging service: the answers with messages, titles and contacts are
    checked against the document here."""
    await publish(catalog())
    patron = await make_patron()
    await decides(patron.id, HOLD_BY_TEXT, Decision.YES)
    await decides(patron.id, "messages__item_due__email", Decision.YES)
    await decides(patron.id, "messages__titles", Decision.YES)
    headers = await readers(Scope.PREFERENCES_READ, Scope.CONTACTS_READ)
    one = await get(portal, reference(patron), headers)
    assert len(one.json()["messages"]) == 2
    assert one.json()["contacts"]
    assert matches_the_document(one.json(), "MessagePreferences") == []
    asked = [
        {"patron": reference(patron)},
        {"patron": patron_reference(SECRET, "29999999999")},
        {"card_number": "12"},
    ]
    assert matches_the_document({"patrons": asked}, "MessagePreferencesBatch") == []
    batch = await post(portal, asked, headers)
    assert matches_the_document(batch.json(), "MessagePreferencesBatchAnswer") == []
    # The check can fail: an answer the document does not allow is named.
    assert matches_the_document({**one.json(), "patron": patron.card}, "MessagePreferences")
