"""The SIP2 client against small ILS stand-ins on 127.0.0.1, one behaviour each: they read the
portal's requests with pysip2's codec and answer frames made by hand. Every fault ends as
IlsUnavailable with its reason, and the next call, to a well-behaved ILS, works."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import trustme
from pysip2.codec import DecodedMessage, calculate_checksum, decode_message
from pysip2.models import PatronInformationRequest, PatronStatusRequest, SIPMessage

from portal.sip2.client import IlsUnavailable, PatronAnswer, Sip2Client, Sip2Config
from portal.sip2.codec import UnsendableValue
from tests.support import free_port

CARD = "21000099887766"
PIN = "4711"
NAME = "Zoë Ångström"
DATE = "20240305    140709"


def frame(body: str, sequence: int | None, *, good_checksum: bool = True) -> bytes:
    """A hand-made answer, checksummed as pysip2 does it."""
    prefix = body.encode("cp850") + (b"AZ" if sequence is None else b"AY%dAZ" % sequence)
    total = calculate_checksum(prefix)
    if not good_checksum:
        total = f"{(int(total, 16) + 1) & 0xFFFF:04X}"
    return prefix + total.encode("ascii") + b"\r"


def patron_fields(bl: str = "Y", cq: str | None = "Y", extra: str = "", name: str = NAME) -> str:
    password = "" if cq is None else f"CQ{cq}|"
    return f"AOINST|AA{CARD}|AE{name}|BL{bl}|{password}{extra}"


def answer_64(**fields: Any) -> str:
    return "64" + " " * 14 + "000" + DATE + "0000" * 6 + patron_fields(**fields)


def answer_24(**fields: Any) -> str:
    return "24" + " " * 14 + "000" + DATE + patron_fields(**fields)


def well_behaved(request: DecodedMessage[SIPMessage], **fields: Any) -> bytes:
    """The answer a healthy ILS gives, echoing the request's sequence number."""
    command = type(request.message).__name__
    body = {
        "LoginRequest": "941",
        "PatronInformationRequest": answer_64(**fields),
        "PatronStatusRequest": answer_24(**fields),
        "SCStatusRequest": "98YNNNNN030003" + DATE + "2.00AOINST|BX" + "Y" * 16 + "|",
    }[command]
    return frame(body, request.sequence_number)


@dataclass(frozen=True)
class Hangup:
    """A behaviour's answer: send these bytes, if any, then close the connection."""

    sent: bytes = b""


Reply = bytes | Hangup | None  # None: stay silent
Behaviour = Callable[["Ils", DecodedMessage[SIPMessage]], Awaitable[Reply]]


async def healthy(ils: Ils, request: DecodedMessage[SIPMessage]) -> Reply:
    return well_behaved(request)


@dataclass
class Ils:
    """A SIP2 server stand-in: `behaviour` answers each request (None: stays silent)."""

    behaviour: Behaviour
    port: int
    tls: ssl.SSLContext | None = None
    requests: list[SIPMessage] = field(default_factory=list)
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    server: asyncio.Server | None = None

    def commands(self) -> list[str]:
        return [type(message).__name__ for message in self.requests]

    async def start(self) -> Ils:
        self.server = await asyncio.start_server(self.serve, "127.0.0.1", self.port)
        return self

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            if self.tls is not None:
                await writer.start_tls(self.tls)
            while True:
                request = decode_message(await reader.readuntil(b"\r"))
                self.requests.append(request.message)
                answer = await self.behaviour(self, request)
                if isinstance(answer, Hangup):
                    writer.write(answer.sent)
                    await writer.drain()
                    break
                if answer is not None:
                    writer.write(answer)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            self.open_now -= 1
            writer.transport.abort()

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


@pytest.fixture
async def world() -> AsyncIterator[World]:
    made = World()
    yield made
    for client in made.clients:
        await client.close()
    for ils in made.servers:
        await ils.stop()


@dataclass
class World:
    servers: list[Ils] = field(default_factory=list)
    clients: list[Sip2Client] = field(default_factory=list)

    async def ils(
        self, behaviour: Behaviour = healthy, *, port: int | None = None, **options: Any
    ) -> Ils:
        ils = Ils(behaviour, port or free_port(), **options)
        self.servers.append(ils)
        return await ils.start()

    def client(self, port: int, **options: Any) -> Sip2Client:
        settings: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": port,
            "tls": False,
            "login_user": "portal",
            "login_password": "secret",
            "institution": "INST",
            "connect_timeout": 1.0,
            "read_timeout": 0.3,
        } | options
        client = Sip2Client(Sip2Config(**settings))
        self.clients.append(client)
        return client


def answering(**fields: Any) -> Behaviour:
    async def behaviour(ils: Ils, request: DecodedMessage[SIPMessage]) -> Reply:
        return well_behaved(request, **fields)

    return behaviour


def faulty_until_fixed(fault: Behaviour) -> tuple[Behaviour, Callable[[], None]]:
    """A behaviour that misbehaves on patron requests until `fix()` is called."""
    broken = [True]

    async def behaviour(ils: Ils, request: DecodedMessage[SIPMessage]) -> Reply:
        if broken[0] and isinstance(request.message, PatronInformationRequest):
            return await fault(ils, request)
        return well_behaved(request)

    def fix() -> None:
        broken[0] = False

    return behaviour, fix


async def reason_of(call: Awaitable[Any]) -> str:
    with pytest.raises(IlsUnavailable) as unavailable:
        await call
    return unavailable.value.reason


# --- Answers --------------------------------------------------------------------------------


async def test_a_known_card_and_its_pin_sign_in(world: World) -> None:
    ils = await world.ils()
    answer = await world.client(ils.port).patron(CARD, PIN)
    assert answer.authenticated
    assert answer.personal_name == NAME
    request = ils.requests[-1]
    assert isinstance(request, PatronInformationRequest)
    assert (request.institution_id, request.patron_identifier) == ("INST", CARD)
    assert request.patron_password == PIN


@pytest.mark.parametrize(
    ("fields", "patron", "password"),
    [
        ({"cq": "N"}, True, False),
        ({"bl": "N", "cq": "N"}, False, False),
        ({"cq": None}, True, False),  # no CQ at all is no proof of the PIN
    ],
    ids=["wrong PIN", "unknown card", "no CQ"],
)
async def test_anything_short_of_bl_and_cq_yes_is_not_a_sign_in(
    world: World, fields: dict[str, Any], patron: bool, password: bool
) -> None:
    ils = await world.ils(answering(**fields))
    answer = await world.client(ils.port).patron(CARD, PIN)
    assert (answer.valid_patron, answer.valid_password, answer.authenticated) == (
        patron,
        password,
        False,
    )


@pytest.mark.parametrize(
    ("birth_field", "extra", "born_on"),
    [
        ("PB", "PB19800229|", date(1980, 2, 29)),
        ("BC", "PB19800229|BC19790101|", date(1979, 1, 1)),
        ("PB", "PB19800229 extra|", date(1980, 2, 29)),
        ("PB", "PB19801399|", None),
        ("PB", "PBunknown|", None),
        ("PB", "PB|", None),
        ("PB", "", None),
        ("", "PB19800229|", None),
    ],
)
async def test_the_birth_date_is_read_from_the_configured_field(
    world: World, birth_field: str, extra: str, born_on: date | None
) -> None:
    ils = await world.ils(answering(extra=extra))
    client = world.client(ils.port, birth_date_field=birth_field)
    assert (await client.patron(CARD, PIN)).born_on == born_on


async def test_the_portal_logs_in_once_per_connection(world: World) -> None:
    ils = await world.ils()
    client = world.client(ils.port)
    await client.patron(CARD, PIN)
    await client.patron(CARD, PIN)
    assert ils.commands() == [
        "LoginRequest",
        "PatronInformationRequest",
        "PatronInformationRequest",
    ]
    assert ils.connections == 1


async def test_a_refused_login_makes_the_ils_unavailable(world: World) -> None:
    async def refusing(ils: Ils, request: DecodedMessage[SIPMessage]) -> Reply:
        return frame("940", request.sequence_number)

    ils = await world.ils(refusing)
    assert await reason_of(world.client(ils.port).patron(CARD, PIN)) == "login-refused"
    assert ils.commands() == ["LoginRequest"]


async def test_patron_status_is_asked_when_configured(world: World) -> None:
    ils = await world.ils(answering(cq="N"))
    answer = await world.client(ils.port, use_patron_status=True).patron(CARD, PIN)
    assert isinstance(ils.requests[-1], PatronStatusRequest)
    assert (answer.valid_patron, answer.valid_password) == (True, False)


async def test_a_card_check_asks_with_patron_information_even_when_status_is_configured(
    world: World,
) -> None:
    ils = await world.ils(answering(cq="N"))
    answer = await world.client(ils.port, use_patron_status=True).patron(CARD, None)
    assert isinstance(ils.requests[-1], PatronInformationRequest)  # 23 would need an AD
    assert answer.valid_patron


async def test_an_empty_pin_is_refused_before_anything_is_sent(world: World) -> None:
    ils = await world.ils()
    with pytest.raises(UnsendableValue):
        await world.client(ils.port).patron(CARD, "")
    assert ils.connections == 0


@pytest.mark.parametrize(
    "pin", ["1234|AAother", "12\r63", "€uro", "x" * 256], ids=["field", "CR", "not CP850", "long"]
)
async def test_a_pin_that_cannot_travel_is_refused_before_anything_is_sent(
    world: World, pin: str
) -> None:
    ils = await world.ils()
    with pytest.raises(UnsendableValue):
        await world.client(ils.port).patron(CARD, pin)
    assert ils.connections == 0


async def test_without_a_pin_no_password_is_sent(world: World) -> None:
    ils = await world.ils(answering(cq=None))
    answer = await world.client(ils.port).patron(CARD, None)
    assert answer.valid_patron
    request = ils.requests[-1]
    assert isinstance(request, PatronInformationRequest)
    assert request.patron_password is None


async def test_probe_asks_for_the_acs_status(world: World) -> None:
    ils = await world.ils()
    await world.client(ils.port).probe()
    assert ils.commands()[-1] == "SCStatusRequest"


# --- Faults ---------------------------------------------------------------------------------


async def test_nothing_listening_then_an_ils_that_starts(world: World) -> None:
    port = free_port()
    client = world.client(port)
    assert await reason_of(client.patron(CARD, PIN)) == "connect"
    await world.ils(port=port)
    assert (await client.patron(CARD, PIN)).authenticated


async def never_answers(ils: Ils, request: DecodedMessage[SIPMessage]) -> Reply:
    return None


async def test_an_ils_that_never_answers_times_out(world: World) -> None:
    behaviour, fix = faulty_until_fixed(never_answers)
    ils = await world.ils(behaviour)
    client = world.client(ils.port)
    started = time.monotonic()
    assert await reason_of(client.patron(CARD, PIN)) == "timeout"
    assert time.monotonic() - started < 1
    fix()
    assert (await client.patron(CARD, PIN)).authenticated
    assert ils.connections == 2  # the silent connection was dropped, not pooled


async def test_a_damaged_answer_is_asked_for_again(world: World) -> None:
    last: list[bytes] = []

    async def damaged_once(ils: Ils, request: DecodedMessage[SIPMessage]) -> Reply:
        if isinstance(request.message, PatronInformationRequest):
            last.append(frame(answer_64(), request.sequence_number))
            return frame(answer_64(), request.sequence_number, good_checksum=False)
        if type(request.message).__name__ == "RequestACSResend":
            return last[-1]
        return well_behaved(request)

    ils = await world.ils(damaged_once)
    assert (await world.client(ils.port).patron(CARD, PIN)).authenticated
    assert ils.commands() == ["LoginRequest", "PatronInformationRequest", "RequestACSResend"]


async def test_answers_that_stay_damaged_make_the_ils_unavailable(world: World) -> None:
    broken = [True]

    async def always_damaged(ils: Ils, request: DecodedMessage[SIPMessage]) -> Reply:
        if type(request.message).__name__ == "LoginRequest" or not broken[0]:
            return well_behaved(request)
        return frame(answer_64(), 0, good_checksum=False)

    ils = await world.ils(always_damaged)
    client = world.client(ils.port)
    assert await reason_of(client.patron(CARD, PIN)) == "checksum"
    assert ils.commands().count("RequestACSResend") == 2
    broken[0] = False
    assert (await client.patron(CARD, PIN)).authenticated


async def test_the_request_is_resent_when_the_ils_asks(world: World) -> None:
    asked = [False]

    async def resend_once(ils: Ils, request: DecodedMessage[SIPMessage]) -> Reply:
        if isinstance(request.message, PatronInformationRequest) and not asked[0]:
            asked[0] = True
            return frame("96", None)
        return well_behaved(request)

    ils = await world.ils(resend_once)
    assert (await world.client(ils.port).patron(CARD, PIN)).authenticated
    assert ils.requests[1] == ils.requests[2]
    assert ils.commands().count("PatronInformationRequest") == 2


async def test_an_answer_for_another_request_is_garbage(world: World) -> None:
    async def wrong_sequence(ils: Ils, request: DecodedMessage[SIPMessage]) -> Reply:
        if isinstance(request.message, PatronInformationRequest):
            return frame(answer_64(), ((request.sequence_number or 0) + 1) % 10)
        return well_behaved(request)

    ils = await world.ils(wrong_sequence)
    assert await reason_of(world.client(ils.port).patron(CARD, PIN)) == "garbage"


async def half_an_answer(ils: Ils, request: DecodedMessage[SIPMessage]) -> Reply:
    return Hangup(frame(answer_64(), request.sequence_number)[:30])


async def test_an_answer_cut_short_then_closed(world: World) -> None:
    behaviour, fix = faulty_until_fixed(half_an_answer)
    ils = await world.ils(behaviour)
    client = world.client(ils.port)
    assert await reason_of(client.patron(CARD, PIN)) == "closed"
    fix()
    assert (await client.patron(CARD, PIN)).authenticated


async def endless_answer(ils: Ils, request: DecodedMessage[SIPMessage]) -> Reply:
    return Hangup(b"6" * 10_000_000)


async def test_an_endless_answer_is_cut_off(world: World) -> None:
    behaviour, fix = faulty_until_fixed(endless_answer)
    ils = await world.ils(behaviour)
    client = world.client(ils.port, max_frame_bytes=4096)
    started = time.monotonic()
    assert await reason_of(client.patron(CARD, PIN)) == "frame-too-long"
    assert time.monotonic() - started < 2
    fix()
    assert (await client.patron(CARD, PIN)).authenticated


async def test_a_pooled_connection_the_ils_closed_is_replaced(world: World) -> None:
    async def answer_then_hang_up(ils: Ils, request: DecodedMessage[SIPMessage]) -> Reply:
        answer = well_behaved(request)
        if isinstance(request.message, PatronInformationRequest):
            return Hangup(answer)
        return answer

    ils = await world.ils(answer_then_hang_up)
    client = world.client(ils.port)
    assert (await client.patron(CARD, PIN)).authenticated
    await asyncio.sleep(0.05)  # the ILS has closed the idle connection
    assert (await client.patron(CARD, PIN)).authenticated
    assert ils.connections == 2
    assert ils.commands().count("LoginRequest") == 2


async def test_a_fresh_connection_closed_before_the_answer_is_not_retried(world: World) -> None:
    async def hang_up(ils: Ils, request: DecodedMessage[SIPMessage]) -> Reply:
        return Hangup()

    ils = await world.ils(hang_up)
    assert await reason_of(world.client(ils.port).patron(CARD, PIN)) == "closed"
    assert ils.connections == 1


# --- TLS ------------------------------------------------------------------------------------


def tls_server(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


async def test_tls_with_the_ils_certificate_authority(world: World, tmp_path: Path) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    ils = await world.ils(tls=tls_server(ca))
    client = world.client(ils.port, tls=True, ca_file=str(tmp_path / "ca.pem"))
    assert (await client.patron(CARD, PIN)).authenticated


async def test_tls_with_another_authority_fails_and_nothing_is_sent_in_the_clear(
    world: World, tmp_path: Path
) -> None:
    ca, other = trustme.CA(), trustme.CA()
    other.cert_pem.write_to_path(str(tmp_path / "other.pem"))
    ils = await world.ils(tls=tls_server(ca))
    client = world.client(ils.port, tls=True, ca_file=str(tmp_path / "other.pem"))
    assert await reason_of(client.patron(CARD, PIN)) == "tls"
    assert ils.connections == 1  # no second attempt, in plain text or otherwise
    assert ils.requests == []


def test_plain_text_is_allowed_only_to_the_machine_itself() -> None:
    with pytest.raises(ValueError, match="loopback"):
        Sip2Config(host="ils.example.org", port=6001, tls=False)
    for host in ("127.0.0.1", "::1", "localhost"):
        assert not Sip2Config(host=host, port=6001, tls=False).tls


def test_the_configuration_never_shows_its_passwords() -> None:
    config = Sip2Config(
        host="ils.example.org", port=6001, login_password="s3cr3t", terminal_password="t3rm"
    )
    assert "s3cr3t" not in repr(config)
    assert "t3rm" not in repr(config)


# --- Load and logs --------------------------------------------------------------------------


async def test_concurrent_sign_ins_share_a_bounded_pool(world: World) -> None:
    async def slow(ils: Ils, request: DecodedMessage[SIPMessage]) -> Reply:
        await asyncio.sleep(0.01)
        message = request.message
        if isinstance(message, PatronInformationRequest):
            name = f"Patron {message.patron_identifier}"
            return frame(answer_64(name=name), request.sequence_number)
        return well_behaved(request)

    ils = await world.ils(slow)
    client = world.client(ils.port, pool_size=2)
    cards = [f"2100{number:04}" for number in range(20)]
    answers: list[PatronAnswer] = await asyncio.gather(
        *(client.patron(card, PIN) for card in cards)
    )
    assert [answer.personal_name for answer in answers] == [f"Patron {card}" for card in cards]
    assert ils.most_open <= 2
    assert ils.commands().count("PatronInformationRequest") == 20


async def test_the_logs_hold_no_card_pin_name_or_frame(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="portal")
    behaviour, fix = faulty_until_fixed(half_an_answer)
    ils = await world.ils(behaviour)
    client = world.client(ils.port)
    assert await reason_of(client.patron(CARD, PIN)) == "closed"
    fix()
    assert (await client.patron(CARD, PIN)).authenticated
    assert "closed" in caplog.text  # the failure was logged, with its reason
    for secret in (CARD, PIN, NAME, "Ångström", f"AA{CARD}", f"AD{PIN}", "63000", "BLY"):
        assert secret not in caplog.text


def test_a_client_used_from_another_event_loop_starts_afresh() -> None:
    port = free_port()
    client = Sip2Client(Sip2Config(host="127.0.0.1", port=port, tls=False, read_timeout=0.3))

    async def sign_in(*, then_close: bool) -> list[str]:
        ils = await Ils(healthy, port).start()
        try:
            assert (await client.patron(CARD, PIN)).authenticated
            return ils.commands()
        finally:
            if then_close:
                await client.close()
            await ils.stop()

    first = asyncio.new_event_loop()
    try:
        assert first.run_until_complete(sign_in(then_close=False)) == ["PatronInformationRequest"]
        # Another loop, the first one's connection still pooled: a new connection is made.
        assert asyncio.run(sign_in(then_close=True)) == ["PatronInformationRequest"]
        first.run_until_complete(asyncio.sleep(0.05))  # lets it finish closing the old one
    finally:
        first.close()
