"""Patrons sign in with the card and PIN the library system holds: the portal asks it over
SIP2 (a stand-in built on pysip2, an implementation the portal did not write, running as a
process of its own on loopback), makes the account on the first sign-in with everything
off, and says so plainly when the library system cannot be reached."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path

import httpx2 as httpx
import pytest
from pysip2 import calculate_checksum

from portal.app import create_app
from portal.catalog.jurisdiction import born_on_or_before
from portal.catalog.services import forget_published_catalog
from portal.consent.models import ConsentState
from portal.credentials.models import SignInCounter
from portal.desk.models import Handover
from portal.desk.policy import CardRef, make_ref
from portal.patrons.models import Patron, PinSetupCode
from portal.patrons.services import card_lookup
from portal.settings import Settings
from portal.staff.policy import Role
from tests.desk import create_card, hand_over, make_staff, staff_sign_in
from tests.factories import SECRET, now, publish, standard_catalog
from tests.ils_process import RunningIls, make_tls_files, running_ils
from tests.support import free_port, portal_client
from tests.web import hidden, visible_text

ADULT, CHILD, NO_CQ, NO_PASSWORD, UNKNOWN = (
    "21000000000011",
    "21000000000012",
    "21000000000013",
    "21000000000014",
    "21000000000015",
)
ADULT_PIN = "Pw8qZ4xk"  # library systems' PINs may be passwords: nothing in the portal limits it
DESK_CARD = "21000000000017"  # registered at the desk in the tests (no birth date in the ILS)
TEN_YEARS_AGO = born_on_or_before(now().date(), 10)
PATRONS = [
    {"card": ADULT, "pin": ADULT_PIN, "name": "Zoë Müller", "born": "19800214", "valid": True},
    {
        "card": CHILD,
        "pin": "4826",
        "name": "Ana Pérez",
        "born": TEN_YEARS_AGO.strftime("%Y%m%d"),
        "valid": True,
    },
    {"card": NO_CQ, "pin": "4826", "name": "X", "born": None, "valid": True, "omit_cq": True},
    {"card": NO_PASSWORD, "pin": None, "name": "Y", "born": None, "valid": True},
    {"card": DESK_CARD, "pin": "4826", "name": "Z", "born": None, "valid": True},
]


@pytest.fixture(scope="module")
def ils(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningIls]:
    with running_ils(
        tmp_path_factory.mktemp("ils"),
        PATRONS,
        login_user="portal",
        login_password="sip-secret",
    ) as running:
        yield running


def _through(settings: Settings, ils: RunningIls, **changes: object) -> Settings:
    through: dict[str, object] = {
        "identity_source": "sip2",
        "sip2_host": ils.host,
        "sip2_port": ils.port,
        "sip2_plain_loopback": True,
        "sip2_login_user": "portal",
        "sip2_login_password": "sip-secret",
        "sip2_read_timeout": 2.0,
        "sip2_connect_timeout": 2.0,
    }
    return replace(settings, **{**through, **changes})  # type: ignore[arg-type]


@pytest.fixture
def portal_settings(settings: Settings, ils: RunningIls) -> Settings:
    return _through(settings, ils)


def _asked_about(ils: RunningIls, card: str) -> int:
    return sum(1 for line in ils.requests() if line.split()[1:] == [card])


async def test_first_sign_in_makes_the_account_with_everything_off(portal, ils) -> None:
    await publish(standard_catalog())
    signed_in = await portal.client.post("/signin", data={"card": ADULT, "pin": ADULT_PIN})
    assert signed_in.status_code == 303, signed_in.text
    patron = await Patron.get(card_lookup=card_lookup(SECRET, ADULT))
    assert patron.pin_hash is None  # the PIN stays the library system's
    assert patron.born_on == date(1980, 2, 14)  # from PB
    assert await ConsentState.filter(patron_id=patron.id).count() == 0
    privacy = await portal.client.get("/privacy")
    assert privacy.status_code == 200
    # An adult decides alone (the child's test below sees no such button).
    assert 'value="yes"' in (await portal.client.get("/services/reading_history")).text
    assert 'aria-pressed="true"' not in privacy.text
    assert "checked" not in privacy.text

    # Signing out and in again: the same account, and one round trip (logged in already).
    await portal.client.post("/signout")
    before = ils.requests()
    again = await portal.client.post("/signin", data={"card": ADULT, "pin": ADULT_PIN})
    assert again.status_code == 303
    assert [line.split()[0] for line in ils.requests()[len(before) :]] == ["63"]
    assert await Patron.filter(card_lookup=card_lookup(SECRET, ADULT)).count() == 1


@pytest.mark.parametrize(
    ("card", "pin"),
    [(ADULT, "wrong-pin"), (UNKNOWN, "4826"), (NO_CQ, "4826"), (NO_PASSWORD, "4826")],
    ids=["CQ N", "BL N", "no CQ", "no password"],
)
async def test_anything_but_valid_patron_and_valid_pin_is_refused_and_counted(
    portal, ils, card: str, pin: str
) -> None:
    await publish(standard_catalog())
    refused = await portal.client.post("/signin", data={"card": card, "pin": pin})
    assert refused.status_code == 400
    assert "That card number and PIN do not match" in refused.text
    assert _asked_about(ils, card) >= 1  # the library system said no, not the portal
    assert await Patron.filter(card_lookup=card_lookup(SECRET, card)).count() == 0
    assert await SignInCounter.filter(attempts__gt=0).count() >= 1  # a failure counts


async def test_an_empty_pin_is_never_sent(portal, ils) -> None:
    await publish(standard_catalog())
    asked = _asked_about(ils, NO_PASSWORD)
    refused = await portal.client.post("/signin", data={"card": NO_PASSWORD, "pin": ""})
    assert refused.status_code == 400
    assert _asked_about(ils, NO_PASSWORD) == asked  # Koha would have said CQ Y


async def test_a_child_is_under_the_guardian_rules_from_the_first_visit(portal, ils) -> None:
    await publish(standard_catalog())
    signed_in = await portal.client.post("/signin", data={"card": CHILD, "pin": "4826"})
    assert signed_in.status_code == 303
    patron = await Patron.get(card_lookup=card_lookup(SECRET, CHILD))
    assert patron.born_on == TEN_YEARS_AGO
    notice = await portal.client.get("/services/reading_history")
    assert notice.status_code == 200
    # Below the guardian-consent age the child cannot turn a service on alone.
    assert 'value="yes"' not in notice.text


async def test_parallel_wrong_pins_reach_the_library_system_at_most_the_limit(portal, ils) -> None:
    await publish(standard_catalog())
    card = "21000000000016"  # unknown to the library system: every answer is "invalid"
    answers = await asyncio.gather(
        *(portal.client.post("/signin", data={"card": card, "pin": f"{n:04d}"}) for n in range(50))
    )
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses.count(400) <= 5
    assert set(statuses) <= {400, 429}
    assert _asked_about(ils, card) <= 5


async def test_the_pin_reaches_no_log_and_no_table(portal, ils, caplog, database_url) -> None:
    await publish(standard_catalog())
    with caplog.at_level(logging.DEBUG):
        await portal.client.post("/signin", data={"card": ADULT, "pin": ADULT_PIN})
        await portal.client.post("/signin", data={"card": ADULT, "pin": "wrong-Q7"})
    assert ADULT_PIN not in caplog.text
    assert "wrong-Q7" not in caplog.text
    assert ADULT not in caplog.text
    assert "AD" + ADULT_PIN not in caplog.text
    if database_url.startswith("sqlite://"):
        stored = b"".join(
            path.read_bytes() for path in Path(database_url[9:]).parent.glob("*.sqlite3*")
        )
        assert ADULT_PIN.encode() not in stored
        assert ADULT.encode() not in stored


async def test_readiness_reports_the_library_system_on_its_own_line(portal, ils) -> None:
    await publish(standard_catalog())
    ready = await portal.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "library_system": "reachable"}


class TestLibrarySystemDown:
    @pytest.fixture
    def portal_settings(self, settings: Settings, ils: RunningIls) -> Settings:
        nothing_there = replace(ils, port=free_port())
        return _through(settings, nothing_there, sip2_connect_timeout=0.5)

    async def test_sign_in_says_it_cannot_be_reached_and_changes_nothing(self, portal) -> None:
        await publish(standard_catalog())
        down = await portal.client.post("/signin", data={"card": ADULT, "pin": ADULT_PIN})
        assert down.status_code == 503
        assert "The library system cannot be reached just now" in down.text
        assert ADULT_PIN not in down.text
        assert await Patron.all().count() == 0
        assert await SignInCounter.filter(attempts__gt=0).count() == 0  # not a guess

    async def test_the_portal_stays_ready(self, portal) -> None:
        await publish(standard_catalog())
        ready = await portal.client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "library_system": "unreachable"}


async def test_no_second_pin_to_set_up(portal, ils) -> None:
    await publish(standard_catalog())
    page = await portal.client.get("/setup-pin")
    assert "To change your PIN" in visible_text(page.text)
    assert 'name="code"' not in page.text
    posted = await portal.client.post(
        "/setup-pin", data={"card": ADULT, "code": "X", "pin": "4826", "pin_again": "4826"}
    )
    assert posted.status_code == 409
    signin = await portal.client.get("/signin")
    assert "/setup-pin" not in signin.text
    assert 'name="pin" type="password" inputmode="numeric"' not in signin.text  # may be a word


async def test_the_desk_checks_a_new_card_and_hands_over_straight_to_the_notices(
    portal, ils
) -> None:
    await publish(standard_catalog())
    staff = await make_staff(Role.DESK)
    await staff_sign_in(portal.client, staff)
    unknown = await create_card(portal.client, card=UNKNOWN, locale="en")
    assert unknown.status_code == 409
    assert "The library system does not know this card" in unknown.text
    assert await Patron.filter(card_lookup=card_lookup(SECRET, UNKNOWN)).count() == 0

    created = await create_card(portal.client, card=ADULT, locale="en")
    assert created.status_code == 200, created.text
    text = visible_text(created.text)
    assert "Zoë" not in text
    assert "Müller" not in text
    assert "1980" not in text
    assert "setup slip" not in text
    await hand_over(portal.client, created)
    screen = await portal.client.get("/handover")
    assert 'name="pin"' not in screen.text  # no PIN to choose: straight to the notices
    assert (await Handover.get()).pin_set
    patron = await Patron.get(card_lookup=card_lookup(SECRET, ADULT))
    assert patron.born_on == date(1980, 2, 14)
    assert patron.pin_hash is None


async def test_the_desk_offers_no_pin_reset(portal, ils) -> None:
    await publish(standard_catalog())
    staff = await make_staff(Role.DESK)
    await staff_sign_in(portal.client, staff)
    await portal.client.post("/signin", data={"card": ADULT, "pin": ADULT_PIN})
    patron_id = (await Patron.get(card_lookup=card_lookup(SECRET, ADULT))).id
    await staff_sign_in(portal.client, staff)
    found = await portal.client.post("/desk/lookup", data={"card": ADULT})
    assert found.status_code == 200
    assert "Reset the PIN" not in found.text
    assert "Held by the library system" in visible_text(found.text)
    # Even posted by hand (a page from before the switch), neither is done.
    ref = make_ref(SECRET, staff.staff_id, CardRef(patron_id), now=now())
    for path in ("/desk/reset-pin", "/desk/setup-slip"):
        refused = await portal.client.post(path, data={"ref": ref})
        assert refused.status_code == 409
        assert "reset it there, not here" in refused.text
    assert await PinSetupCode.all().count() == 0


def test_plain_text_is_refused_for_a_host_that_is_not_this_machine(settings) -> None:
    with pytest.raises(ValueError, match="PLAIN_LOOPBACK"):
        replace(
            settings,
            identity_source="sip2",
            sip2_host="ils.example.org",
            sip2_plain_loopback=True,
        )


# A library system that misbehaves: each fault gives the patron the same plain page, and
# nothing changes (no account, nothing weaker tried). The PIN was on its way in each: the
# guess counts, so an ILS made to fail on purpose gives no free guesses.


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def _closing(handler: Handler) -> Handler:
    """The fault server's side of a connection is closed however the handler ends."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(reader, writer)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.transport.abort()

    return handle


requests_seen: dict[str, int] = {}


async def _never_answers(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(1)
    await asyncio.sleep(30)


async def _bad_checksum(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while await reader.readuntil(b"\r"):  # every answer damaged, the resends' too
        writer.write(
            b"64              00020261207    1200000000000000000000000000"
            b"00AOX|AA1|BLY|CQY|AY0AZ0000\r"
        )
        await writer.drain()


async def _cut_then_closed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r")
    writer.write(b"64              000202612")
    await writer.drain()
    writer.close()


async def _closed_mid_frame(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(10)
    writer.close()


async def _no_frame_end(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r")
    for _ in range(160):  # 10 MB, never a CR
        writer.write(b"6" * 65_536)
        await writer.drain()


@contextlib.asynccontextmanager
async def _portal(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    forget_published_catalog()
    app = create_app(settings)
    async with app.router.lifespan_context(app), portal_client(app) as client:
        yield client


FAULTS = {
    "never answers": _never_answers,
    "wrong checksum": _bad_checksum,
    "frame cut short": _cut_then_closed,
    "closed mid-frame": _closed_mid_frame,
    "10 MB without an end": _no_frame_end,
}


@pytest.mark.parametrize("fault", FAULTS)
async def test_each_fault_gives_the_plain_page_and_counts_the_guess(
    settings: Settings, ils: RunningIls, fault: str
) -> None:
    requests_seen[fault] = 0

    async def counted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests_seen[fault] += 1
        await FAULTS[fault](reader, writer)

    server = await asyncio.start_server(_closing(counted), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    misbehaving = _through(
        settings, replace(ils, port=port), sip2_login_user="", sip2_read_timeout=0.5
    )
    async with server, _portal(misbehaving) as client:
        await publish(standard_catalog())
        answer = await client.post("/signin", data={"card": ADULT, "pin": ADULT_PIN})
        assert answer.status_code == 503
        assert "The library system cannot be reached just now" in answer.text
        assert ADULT_PIN not in answer.text
        assert await Patron.all().count() == 0
        assert await SignInCounter.filter(attempts__gt=0).exists()  # counted: the PIN had left
    assert requests_seen[fault] <= 1  # never sent again on another connection


async def test_tls_signs_in_with_the_right_ca_and_never_falls_back_with_another(
    settings: Settings, tmp_path: Path
) -> None:
    other_ca = make_tls_files(tmp_path, name="other")
    with running_ils(tmp_path, PATRONS, tls=True) as tls_ils:
        over_tls = _through(settings, tls_ils, sip2_plain_loopback=False, sip2_login_user="")
        async with _portal(replace(over_tls, sip2_ca_file=str(tls_ils.ca_file))) as client:
            await publish(standard_catalog())
            signed_in = await client.post("/signin", data={"card": ADULT, "pin": ADULT_PIN})
            assert signed_in.status_code == 303
        asked = len(tls_ils.requests())
        async with _portal(replace(over_tls, sip2_ca_file=other_ca.ca_file)) as client:
            refused = await client.post("/signin", data={"card": ADULT, "pin": ADULT_PIN})
            assert refused.status_code == 503
            assert "The library system cannot be reached just now" in refused.text
        assert len(tls_ils.requests()) == asked  # not one frame reached it in plain text


def _answer_64(card: str, *, bl: str, cq: str, sequence: str, extra: bytes = b"") -> bytes:
    body = (
        f"64{' ' * 14}000{'20261207    120000'}{'0' * 24}AOMAIN|AA{card}|AEX|BL{bl}|CQ{cq}|"
        f"AY{sequence}AZ"
    ).encode("cp850")
    return body + calculate_checksum(body).encode() + b"\r" + extra


async def _sequence_of(reader: asyncio.StreamReader) -> str:
    request = await reader.readuntil(b"\r")
    return request[request.rindex(b"AY") + 2 : request.rindex(b"AY") + 3].decode()


async def test_a_stray_frame_is_never_read_as_the_answer_to_another_sign_in(
    settings: Settings, ils: RunningIls
) -> None:
    """A patron's name carrying a CR and a forged answer (an ILS that echoes it unescaped):
    the bytes after the first answer must not answer the victim's sign-in."""
    victim = "21000000000099"

    async def echoing(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        first = await _sequence_of(reader)
        forged = b"".join(_answer_64(victim, bl="Y", cq="Y", sequence=str(n)) for n in range(10))
        writer.write(_answer_64(ADULT, bl="Y", cq="N", sequence=first, extra=forged))
        await writer.drain()
        while True:  # later requests on this connection: a plain "no"
            writer.write(_answer_64(victim, bl="Y", cq="N", sequence=await _sequence_of(reader)))
            await writer.drain()

    server = await asyncio.start_server(_closing(echoing), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    through = _through(settings, replace(ils, port=port), sip2_login_user="")
    async with server, _portal(through) as client:
        await publish(standard_catalog())
        own = await client.post("/signin", data={"card": ADULT, "pin": "wrong-PIN"})
        assert own.status_code == 400
        taken = await client.post("/signin", data={"card": victim, "pin": "any-PIN"})
        assert taken.status_code == 400
        assert await Patron.filter(card_lookup=card_lookup(SECRET, victim)).count() == 0


async def test_an_answer_about_another_card_is_no_sign_in(
    settings: Settings, ils: RunningIls
) -> None:
    """Some library systems also find a patron by login name and answer with the card:
    the portal signs in only the card it asked about (one person, one account)."""

    async def other_card(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            sequence = await _sequence_of(reader)
            writer.write(_answer_64("21000000000098", bl="Y", cq="Y", sequence=sequence))
            await writer.drain()

    server = await asyncio.start_server(_closing(other_card), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    through = _through(settings, replace(ils, port=port), sip2_login_user="")
    async with server, _portal(through) as client:
        await publish(standard_catalog())
        refused = await client.post("/signin", data={"card": ADULT, "pin": ADULT_PIN})
        assert refused.status_code == 400
        assert await Patron.all().count() == 0


async def test_readiness_asks_the_library_system_at_most_every_few_seconds(portal, ils) -> None:
    await publish(standard_catalog())
    before = ils.requests().count("99")
    for _ in range(20):
        assert (await portal.client.get("/readyz")).json()["library_system"] == "reachable"
    assert ils.requests().count("99") - before <= 1


async def test_a_handed_back_screen_is_not_handed_over_again(portal, ils) -> None:
    """No PIN guards a card on the hand-over here: once the screen came back, the same page
    cannot open it again (to decide in the patron's name)."""
    await publish(standard_catalog())
    staff = await make_staff(Role.DESK)
    await staff_sign_in(portal.client, staff)
    created = await create_card(portal.client, card=DESK_CARD, locale="en")
    assert created.status_code == 200, created.text
    await hand_over(portal.client, created)
    await portal.client.post("/handover/back")
    await staff_sign_in(portal.client, staff)
    again = await portal.client.post(
        "/desk/handover", data={"ref": hidden(created.text, "ref"), "purpose": "new_card"}
    )
    assert again.status_code == 409
    assert await Handover.all().count() == 1
