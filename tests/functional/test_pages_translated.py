"""Every page in every language: no English left on a non-English page, the notice shown in
the patron's language, and the consent recorded with the language actually shown."""

from __future__ import annotations

import re
import tomllib
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from portal.app import create_app
from portal.catalog.models import Service
from portal.catalog.services import forget_published_catalog
from portal.i18n import KNOWN_LOCALES, LOCALES_DIR, gettext, text_direction, use_locale
from portal.ledger.models import Actor, Channel, ConsentEvent, EventKind, Method
from portal.locale_codes import fallbacks
from portal.minors import services as minors
from portal.rights.keys import rotate
from portal.staff.policy import Role
from portal.stores.reading_history import services as reading_history
from tests.conftest import Portal
from tests.desk import create_card, hand_over, make_staff, new_card_number, staff_sign_in
from tests.factories import (
    SECRET,
    aged,
    make_patron,
    notice_strings,
    now,
    publish,
    standard_catalog,
)
from tests.support import portal_client
from tests.web import choose, choose_messages, hidden, sign_in, visible_text

CATALOG = (Path(__file__).resolve().parents[2] / "deploy" / "catalog.toml").read_text("utf-8")
ALL = tuple(KNOWN_LOCALES)


@pytest.fixture
def portal_settings(settings):
    return replace(settings, locales=ALL)


@pytest.fixture
async def portal_with_receipts(settings, tmp_path: Path):
    """The portal with its receipt signing key, in every language."""
    keys = tmp_path / "receipt-keys.json"
    rotate(keys)
    forget_published_catalog()
    app = create_app(replace(settings, locales=ALL, receipt_keys_file=keys))
    async with app.router.lifespan_context(app), portal_client(app) as client:
        yield Portal(app, client)


def english_phrases(code: str) -> set[str]:
    """Source texts that must not appear untranslated on a page in `code`."""
    with (LOCALES_DIR / code / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        catalog = read_po(handle)
    phrases = set()
    for message in catalog:
        source = message.id if isinstance(message.id, str) else message.id[0]
        target = message.string if isinstance(message.string, str) else message.string[0]
        plain = re.sub(r"%\(\w+\)s", "", source).strip(" .")
        if plain and target != source and len(plain.split()) >= 2:
            phrases.add(plain)
    for service in tomllib.loads(CATALOG)["service"]:
        phrases.update(text for _, text in notice_strings(service["notice"]["en"]))
    return phrases


async def pages_of_a_patron_using_everything(client) -> dict[str, str]:
    pages = {}
    for path in ("/privacy", "/services/newsletter", "/reading-history", "/saved-lists"):
        pages[path] = (await client.get(path)).text
    pages["decision"] = (await choose(client, "newsletter", "yes")).text
    pages["withdrawal"] = (await choose(client, "newsletter", "no")).text
    await choose(client, "reading_history", "yes")
    await choose(client, "saved_lists", "yes")
    await client.post("/saved-lists", data={"name": "Lista"})
    for path in ("/reading-history", "/saved-lists", "/privacy/record", "/services/telepathy"):
        pages[path] = (await client.get(path)).text
    pages["all off"] = (
        await client.get((await client.post("/privacy/everything-off")).headers["location"])
    ).text
    return pages


async def pages_of_minors_and_their_guardian(portal, code: str) -> dict[str, str]:
    guardian = await make_patron(born_on=date(1980, 1, 1))
    child = await make_patron(born_on=aged(10))
    teen = await make_patron(born_on=aged(15))
    for minor, label in ((child, "Ana"), (teen, "Ben")):
        await minors.link_at_desk(
            SECRET, guardian.card, minor.card, label, now=now(), timezone="America/New_York"
        )
    pages = {}
    for name, person in (("guardian", guardian), ("child", child), ("teen", teen)):
        async with portal_client(portal.app) as client:
            await client.post("/language", data={"locale": code, "next": "/signin"})
            await sign_in(client, person)
            if name == "guardian":
                pages["guardian home"] = (await client.get("/guardian")).text
                pages["guardian notice"] = (
                    await client.get("/guardian/services/ebook_vendor")
                ).text
                pages["guardian record"] = (await client.get("/privacy/record")).text
            else:
                pages[f"{name} privacy"] = (await client.get("/privacy")).text
                pages[f"{name} notice"] = (await client.get("/services/ebook_vendor")).text
                pages[f"{name} code"] = (await client.post("/privacy/guardian-code")).text
                pages[f"{name} record"] = (await client.get("/privacy/record")).text
    return pages


async def pages_of_a_patrons_rights(portal, client, code: str) -> dict[str, str]:
    """My data, a receipt, the verify page (valid and not), the notices' history."""
    await choose(client, "newsletter", "no")
    record = (await client.get("/privacy/record")).text
    event = record.split('href="/privacy/receipts/')[1].split('"')[0]
    version = re.findall(r'href="(/notices/\w+/v\d+/\w+)"', record)[0]
    receipt = (await client.get(f"/privacy/receipts/{event}/download")).text
    pages = {
        path: (await client.get(path)).text
        for path in (
            "/privacy/my-data",
            f"/privacy/receipts/{event}",
            "/receipts/verify",
            "/notices",
            "/notices/newsletter",
            version,
        )
    }
    pages["valid receipt"] = (await client.post("/receipts/verify", data={"receipt": receipt})).text
    pages["altered receipt"] = (
        await client.post("/receipts/verify", data={"receipt": receipt[:-3] + "AAA"})
    ).text
    return pages


@pytest.mark.parametrize("code", [c for c in ALL if c != "en"])
async def test_a_patrons_rights_pages_are_fully_translated(portal_with_receipts, code: str) -> None:
    await publish(CATALOG, ALL)
    client = portal_with_receipts.client
    await client.post("/language", data={"locale": code, "next": "/signin"})
    await sign_in(client, await make_patron())
    pages = await pages_of_a_patrons_rights(portal_with_receipts, client, code)
    phrases = english_phrases(code)
    for name, page in pages.items():
        text = visible_text(page)
        left = sorted(phrase for phrase in phrases if phrase in text)
        assert left == [], f"English left on {name} in {code}: {left}"


@pytest.mark.parametrize("code", [c for c in ALL if c != "en"])
async def test_every_page_is_fully_translated(portal, code: str) -> None:
    await publish(CATALOG, ALL)
    patron = await make_patron()
    client = portal.client
    await client.post("/language", data={"locale": code, "next": "/signin"})
    pages = {path: (await client.get(path)).text for path in ("/signin", "/setup-pin")}
    await sign_in(client, patron)
    pages.update(await pages_of_a_patron_using_everything(client))
    pages.update(await pages_of_minors_and_their_guardian(portal, code))
    phrases = english_phrases(code)
    info = KNOWN_LOCALES[code]
    names = tomllib.loads(CATALOG)["library"]["name_in"]
    library_name = next(names[c] for c in fallbacks(code) if c in names)
    for name, page in pages.items():
        assert f'<html lang="{info.html_lang}" dir="{text_direction(code)}">' in page, name
        assert f'<p class="library">{library_name}</p>' in page, name
        text = visible_text(page)
        left = sorted(phrase for phrase in phrases if phrase in text)
        assert left == [], f"English left on {name} in {code}: {left}"


async def test_consent_given_in_vietnamese_is_recorded_as_shown_in_vietnamese(portal) -> None:
    await publish(CATALOG, ALL)
    patron = await make_patron()
    await sign_in(portal.client, patron)
    await portal.client.post("/language", data={"locale": "vi", "next": "/privacy"})
    notice = await portal.client.get("/services/reading_history")
    assert "Lịch sử đọc sách" in notice.text
    await portal.client.post(
        "/services/reading_history/decision",
        data={
            "decision": "yes",
            "notice_version": hidden(notice.text, "notice_version"),
            "revision": hidden(notice.text, "revision"),
        },
    )
    event = await ConsentEvent.get(patron_id=patron.id)
    assert event.locale == "vi"
    await reading_history.record_loans(
        patron.id, [reading_history.Loan("Truyện Kiều", "Nguyễn Du", date(2026, 1, 15))], now=now()
    )
    history = await portal.client.get("/reading-history")
    assert "15 tháng 1, 2026" in history.text


async def test_language_follows_the_browser_until_the_patron_chooses(portal) -> None:
    await publish(CATALOG, ALL)
    page = await portal.client.get("/signin", headers={"accept-language": "ru-RU,ru;q=0.9"})
    assert '<html lang="ru"' in page.text
    await portal.client.post("/language", data={"locale": "ar", "next": "/signin"})
    page = await portal.client.get("/signin", headers={"accept-language": "ru-RU,ru;q=0.9"})
    assert '<html lang="ar" dir="rtl">' in page.text


async def test_chosen_language_is_remembered_in_the_profile(portal) -> None:
    await publish(CATALOG, ALL)
    patron = await make_patron()
    await sign_in(portal.client, patron)
    await portal.client.post("/language", data={"locale": "ko", "next": "/privacy"})
    portal.client.cookies.clear()
    await sign_in(portal.client, patron)  # a new visit, on another device
    page = await portal.client.get("/privacy")
    assert '<html lang="ko"' in page.text


async def test_language_switcher_names_each_language_in_itself(portal) -> None:
    await publish(CATALOG, ALL)
    page = (await portal.client.get("/signin")).text
    for info in KNOWN_LOCALES.values():
        assert f'lang="{info.html_lang}"' in page
        assert info.native_name in page


async def test_notice_missing_in_the_patrons_language_is_never_shown_in_another(portal) -> None:
    # Published while the library had only English enabled; Vietnamese was enabled later.
    await publish(standard_catalog(("en",)), ("en",))
    patron = await make_patron()
    await sign_in(portal.client, patron)
    await portal.client.post("/language", data={"locale": "vi", "next": "/privacy"})
    page = await portal.client.get("/services/reading_history")
    assert page.status_code == 503
    assert "reading_history data en" not in page.text
    with use_locale("vi"):
        assert gettext("This privacy notice is not available in your language yet.") in page.text


@pytest.mark.parametrize("code", [c for c in ALL if c != "en"])
async def test_hand_over_slip_and_welcome_sheet_are_fully_translated(portal, code: str) -> None:
    await publish(CATALOG, ALL)
    staff = await make_staff(Role.DESK)
    client = portal.client
    await staff_sign_in(client, staff)
    slip_card = await create_card(client, card=new_card_number(), locale=code)
    pages = {
        "setup slip": (
            await client.post("/desk/setup-slip", data={"ref": hidden(slip_card.text, "ref")})
        ).text,
        "welcome sheet": (await client.get(f"/desk/welcome/{code}")).text,
    }
    await hand_over(client, await create_card(client, card=new_card_number(), locale=code))
    pages["choose a PIN"] = (await client.get("/handover")).text
    pages["PIN mismatch"] = (
        await client.post("/handover/pin", data={"pin": "4826", "pin_again": "4862"})
    ).text
    await client.post("/handover/pin", data={"pin": "4826", "pin_again": "4826"})
    pages["notice"] = (await client.get("/handover")).text
    await client.post("/handover/later")
    pages["all done"] = (await client.get("/handover")).text
    pages["cleared"] = (await client.get("/handover/cleared")).text
    phrases = english_phrases(code)
    info = KNOWN_LOCALES[code]
    names = tomllib.loads(CATALOG)["library"]["name_in"]
    library_name = next(names[c] for c in fallbacks(code) if c in names)
    for name, page in pages.items():
        assert f'<html lang="{info.html_lang}" dir="{text_direction(code)}">' in page, name
        assert f'<p class="library">{library_name}</p>' in page, name
        left = sorted(phrase for phrase in phrases if phrase in visible_text(page))
        assert left == [], f"English left on {name} in {code}: {left}"


async def test_a_ledger_entry_written_as_tl_reads_as_filipino(portal) -> None:
    # Consents given before the rename say "tl" in the append-only ledger, as written.
    await publish(CATALOG, ALL)
    patron = await make_patron()
    await sign_in(portal.client, patron)
    service = (await Service.get(key="newsletter")).id
    await ConsentEvent.create(
        patron_id=patron.id,
        service_id=service,
        kind=EventKind.GIVEN,
        locale="tl",
        purposes=[],
        occurred_at=now(),
        method=Method.ONLINE,
        actor=Actor.PATRON,
        channel=Channel.WEB,
        detail={},
    )
    await portal.client.post("/language", data={"locale": "tl", "next": "/privacy"})
    record = await portal.client.get("/privacy/record")
    assert '<html lang="fil"' in record.text
    assert "Filipino (Tagalog)" in visible_text(record.text)
    assert (await ConsentEvent.get(patron_id=patron.id)).locale == "tl"


@pytest.mark.parametrize("page_language", ["ar", "en"])
async def test_an_arabic_notice_version_is_right_to_left_with_its_latin_names_isolated(
    portal, page_language: str
) -> None:
    """On an Arabic page and on an English one alike: the version keeps its own direction
    and "TextRelay Messaging Inc." keeps its full stop."""
    await publish(CATALOG, ALL)
    await portal.client.post("/language", data={"locale": page_language, "next": "/signin"})
    page = (await portal.client.get("/notices/messages__hold_filled__sms/v1/ar")).text
    facts = re.findall(r'<dd lang="ar" dir="(\w+)">(.*?)</dd>', page, re.S)
    assert len(facts) == 7  # the message, what, why, who, how long, how to stop, the language
    assert {direction for direction, _ in facts} == {"rtl"}
    assert '<bdi dir="ltr">TextRelay Messaging Inc.</bdi> التي' in page
    assert '<article class="notice" lang="ar" dir="rtl">' in page


async def test_an_english_notice_version_on_an_arabic_page_is_left_to_right(portal) -> None:
    await publish(CATALOG, ALL)
    await portal.client.post("/language", data={"locale": "ar", "next": "/signin"})
    page = (await portal.client.get("/notices/messages__hold_filled__sms/v1/en")).text
    assert '<article class="notice" lang="en" dir="ltr">' in page
    assert re.findall(r'<dd lang="en" dir="(\w+)">', page) == ["ltr"] * 7
    assert "<bdi" not in page.split("<article", 1)[1].split("</dl>")[0]


@pytest.mark.parametrize("code", ALL)
async def test_a_receipt_shows_the_notices_words_beside_the_signed_values(
    portal_with_receipts, code: str
) -> None:
    """Purposes, data and recipients are signed as machine values ("TextRelay Messaging Inc.
    (text message provider)"); the patron reads them in the words of the notice shown."""
    await publish(CATALOG, ALL)
    client = portal_with_receipts.client
    await client.post("/language", data={"locale": code, "next": "/signin"})
    await sign_in(client, await make_patron())
    saved = await choose_messages(
        client, "messages", ["messages__hold_filled__sms"], {"sms": "+1 201 555 0123"}
    )
    assert saved.status_code == 303
    record = (await client.get("/privacy/record")).text
    event = record.split('href="/privacy/receipts/')[1].split('"')[0]
    page = (await client.get(f"/privacy/receipts/{event}")).text
    receipt = (await client.get(f"/privacy/receipts/{event}/download")).text
    checked = (await client.post("/receipts/verify", data={"receipt": receipt})).text
    notice = next(s for s in tomllib.loads(CATALOG)["service"] if s["key"] == "messages")
    shown_in = next(c for c in fallbacks(code) if c in notice["notice"])  # zh_Hant_HK: zh_Hant
    info = KNOWN_LOCALES[shown_in]
    for shown in (page, checked):
        text = visible_text(shown)
        for field in ("purpose", "data", "recipients"):
            assert " ".join(notice["notice"][shown_in][field].split()) in text, (field, code)
        assert "TextRelay Messaging Inc. (text message provider)" in text  # still signed
        assert f'<span class="worded" lang="{info.html_lang}" dir="{text_direction(code)}">' in (
            shown
        )


async def test_a_hong_kong_reader_gets_hong_kong_words_and_the_traditional_chinese_notice(
    portal,
) -> None:
    """Chosen for zh-HK, offered in the switcher; the catalog has no Hong Kong notices, so
    the Traditional Chinese one is shown and the ledger says so."""
    await publish(CATALOG, ALL)
    patron = await make_patron()
    signin = await portal.client.get("/signin", headers={"accept-language": "zh-HK,zh;q=0.9"})
    assert '<html lang="zh-Hant-HK" dir="ltr">' in signin.text
    assert "繁體中文（香港）" in signin.text  # the switcher offers it
    assert "借閱證" not in visible_text(signin.text)
    await portal.client.post("/language", data={"locale": "zh_Hant_HK", "next": "/signin"})
    await sign_in(portal.client, patron)
    notice = await portal.client.get("/services/reading_history")
    assert notice.status_code == 200
    traditional = next(
        s for s in tomllib.loads(CATALOG)["service"] if s["key"] == "reading_history"
    )
    assert traditional["notice"]["zh_Hant"]["summary"] in visible_text(notice.text)
    await choose(portal.client, "reading_history", "yes")
    event = await ConsentEvent.get(patron_id=patron.id)
    assert (event.kind, event.locale) == (EventKind.GIVEN, "zh_Hant")  # the language shown


async def test_a_catalog_may_give_hong_kong_its_own_notice(portal) -> None:
    text = standard_catalog(("en", "zh_Hant", "zh_Hant_HK"))
    await publish(text, ("en", "zh_Hant", "zh_Hant_HK"))
    patron = await make_patron()
    await portal.client.post("/language", data={"locale": "zh_Hant_HK", "next": "/signin"})
    await sign_in(portal.client, patron)
    page = visible_text((await portal.client.get("/services/newsletter")).text)
    assert "newsletter summary zh_Hant_HK" in page
    await choose(portal.client, "newsletter", "yes")
    assert (await ConsentEvent.get(patron_id=patron.id)).locale == "zh_Hant_HK"


async def test_hong_kong_alone_enabled_publishes_and_shows_the_traditional_chinese_notice(
    portal,
) -> None:
    await publish(standard_catalog(("en", "zh_Hant")), ("en", "zh_Hant_HK"))
    await portal.client.post("/language", data={"locale": "zh_Hant_HK", "next": "/signin"})
    await sign_in(portal.client, await make_patron())
    page = visible_text((await portal.client.get("/services/newsletter")).text)
    assert "newsletter summary zh_Hant" in page
