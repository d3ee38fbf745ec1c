"""The catalog's messaging services: each kind by each channel published as a choice of its
own with its own terms, and every mistake in declaring one named before anything is
published."""

from __future__ import annotations

import pytest

from portal.catalog.parsing import parse_catalog
from portal.catalog.policy import CatalogError, Terms, is_material_change
from portal.contacts.policy import ContactError, normalised
from tests.factories import catalog_text, messages_table, service_table

STORES = ("reading_history", "saved_lists")


def parsed(text: str, locales: tuple[str, ...] = ("en",)):  # type: ignore[no-untyped-def]
    return parse_catalog(text, locales, STORES)


def problems(text: str, locales: tuple[str, ...] = ("en",)) -> list[str]:
    with pytest.raises(CatalogError) as refused:
        parsed(text, locales)
    return refused.value.problems


def test_each_kind_by_each_channel_and_titles_are_published_each_with_its_own_line() -> None:
    catalog = parsed(catalog_text(messages_table(channels=("email", "sms", "phone"))))
    keys = [spec.key for spec in catalog.published]
    assert keys == [
        "messages__hold_filled__email",
        "messages__hold_filled__sms",
        "messages__hold_filled__phone",
        "messages__item_due__email",
        "messages__item_due__sms",
        "messages__item_due__phone",
        "messages__titles",
    ]
    hold_by_text = catalog.published[1]
    assert hold_by_text.choice is not None
    assert hold_by_text.choice.ils_name == "Hold_Filled"
    texts = hold_by_text.notices["en"].as_dict()
    assert texts["kind_title"] == "hold_filled en notice"
    assert texts["title"] == "messages title en"  # the one notice of the service
    child = hold_by_text.child_notices["en"].as_dict()
    assert child["kind_title"] == "hold_filled en child_notice"
    assert catalog.published[-1].notices["en"].as_dict()["kind_title"] == "Titles en notice"


def test_a_channels_data_and_recipients_and_a_kinds_purposes_make_each_choices_terms() -> None:
    text = (
        catalog_text(messages_table(channels=("email", "sms")))
        .replace(
            '[service.messages]\nchannels = ["email", "sms"]',
            '[service.messages]\nchannels = ["email", "sms"]\n'
            "[service.messages.channel_terms.sms]\n"
            'data_categories = ["mobile_phone_number"]\nrecipients = ["Texts Inc."]',
        )
        .replace(
            'key = "hold_filled"\nils_name = "Hold_Filled"\ncontains = ["branch"]',
            'key = "hold_filled"\nils_name = "Hold_Filled"\ncontains = ["branch"]\n'
            'purposes = ["hold_notices"]',
        )
    )
    published = {spec.key: spec.terms for spec in parsed(text).published}
    assert published["messages__hold_filled__sms"] == Terms(
        ("hold_notices",), ("contact_detail", "mobile_phone_number"), ("library", "Texts Inc."), 30
    )
    assert published["messages__item_due__email"] == Terms(
        ("notices",), ("contact_detail",), ("library",), 30
    )
    # Titles in messages reach every channel's recipients, and carry the titles.
    titles = published["messages__titles"]
    assert "Texts Inc." in titles.recipients
    assert "item_titles_in_messages" in titles.data_categories
    # An email choice never agreed to the text-message company.
    assert is_material_change(
        published["messages__item_due__email"], published["messages__item_due__sms"]
    )


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (('channels = ["email", "sms"]', 'channels = ["email", "pigeon"]'), "messages.channels"),
        (('channels = ["email", "sms"]', 'channels = ["sms", "sms"]'), "messages.channels"),
        (('ils_name = "Hold_Filled"\n', ""), "needs ils_name"),
        (('contains = ["branch"]', 'contains = ["title"]', 1), "contains may name only"),
        (('key = "item_due"', 'key = "item__due"'), "single _"),
        (("hold_filled = {", "hold_filed = {", 1), "kinds.hold_filled needs title, says"),
        (
            ('titles = { title = "Titles en notice"', 'titles = { name = "Titles en notice"', 1),
            "titles needs title, says",
        ),
        (("[service.messages]", "[service.messages]\nfrequency = 2"), "unknown key 'frequency'"),
    ],
)
def test_a_mistake_in_a_messaging_service_is_named_and_nothing_is_published(
    edit: tuple[str, ...], named: str
) -> None:
    text = catalog_text(messages_table())
    old, new, *count = edit
    assert old in text
    found = problems(text.replace(old, new, *(int(n) for n in count)))
    assert any(named in problem for problem in found), found


def test_a_key_too_long_for_its_choices_or_with_a_double_underscore_is_refused() -> None:
    long_kind = "k" * 30
    found = problems(catalog_text(messages_table(kinds=(long_kind,))))
    assert any("over 40 characters" in problem for problem in found), found
    found = problems(catalog_text(messages_table(key="my__messages")))
    assert any("cannot contain '__'" in problem for problem in found), found


def test_carrying_over_names_kinds_of_this_service_and_a_service_gone_from_the_catalog() -> None:
    undeclared = messages_table(carry_over=(("sms_notices", "sms", ("renewals",)),))
    assert any("kinds must be" in p for p in problems(catalog_text(undeclared)))
    other_channel = messages_table(carry_over=(("sms_notices", "phone", ("hold_filled",)),))
    assert any("channel" in p for p in problems(catalog_text(other_channel)))
    still_there = catalog_text(
        messages_table(carry_over=(("sms_notices", "sms", ("hold_filled",)),)),
        service_table("sms_notices"),
    )
    assert any("still in the catalog" in p for p in problems(still_there))


def test_every_locale_needs_every_kinds_words() -> None:
    text = catalog_text(messages_table(locales=("en", "fr")))
    broken = text.replace(
        'item_due = { title = "item_due fr notice", says = "item_due says fr" }\n', ""
    )
    assert broken != text
    assert any("notice.fr.kinds.item_due" in p for p in problems(broken, ("en", "fr")))


@pytest.mark.parametrize(
    ("channel", "typed", "kept"),
    [
        ("sms", "(201) 555-0123", "+12015550123"),
        ("sms", "+44 7911 123456", "+447911123456"),
        ("sms", "٢٠١٥٥٥٠١٢٣", "+12015550123"),  # Arabic-Indic digits
        ("email", "Reader@Example.org", "Reader@example.org"),
        ("email", "reader@bücher.example", "reader@xn--bcher-kva.example"),
    ],
)
def test_a_contact_detail_is_kept_in_the_form_every_system_can_use(
    channel: str, typed: str, kept: str
) -> None:
    assert normalised(channel, typed, region="US") == kept


@pytest.mark.parametrize(
    ("channel", "typed"),
    [
        ("sms", "+"),
        ("sms", "12"),
        ("phone", "(201) 555-0123 ext. 45"),  # an extension E.164 cannot carry
        ("sms", "9" * 300),
        ("email", "me@"),
        ("email", "lecteur.é@example.org"),  # a non-ASCII local part many mailers refuse
        ("email", "Name <a@example.org>"),
    ],
)
def test_a_contact_detail_that_cannot_be_used_is_refused(channel: str, typed: str) -> None:
    with pytest.raises(ContactError):
        normalised(channel, typed, region="US")
