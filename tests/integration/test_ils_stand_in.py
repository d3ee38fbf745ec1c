"""The library system stand-in answers as the library systems document it, read with pysip2's
own codec over a plain socket (never the portal's), so the SIP2 tests can trust it."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest
from pysip2 import (
    LoginRequest,
    LoginResponse,
    PatronInformationRequest,
    PatronInformationResponse,
    PatronStatusRequest,
    PatronStatusResponse,
    RequestACSResend,
    SCStatusRequest,
    SIPMessage,
    decode_message,
    encode_message,
    verify_checksum,
)

from tests.ils_process import DEMO_PATRONS, RunningIls, make_tls_files, running_ils

ADULT = {"card": "21000000000001", "pin": "1234", "name": "Sam Rivera", "born": "19850315"}
NO_PASSWORD = {"card": "21000000000004", "pin": None, "name": "Pat Nopin", "born": None}
SILENT = {"card": "21000000000005", "pin": "1234", "name": "Cy Silent", "born": None}
ACCENTS = {"card": "21000000000003", "pin": "1234", "name": "Zoë Müller-Ñúñez", "born": None}
PATRONS = [
    {**ADULT, "valid": True},
    {**NO_PASSWORD, "valid": True},
    {**SILENT, "valid": True, "omit_cq": True},
    {**ACCENTS, "valid": True},
    {"card": "21000000000009", "pin": "1234", "name": "Ex Pired", "born": None, "valid": False},
]
WHEN = "20260102    101500"


class Line:
    """One SIP2 connection: a request in, the answer's raw frame (CR removed) out."""

    def __init__(self, sock: socket.socket, encoding: str = "cp850") -> None:
        self.sock, self.encoding, self.sequence = sock, encoding, 0

    def raw(self, message: SIPMessage) -> bytes:
        sequence = None if isinstance(message, RequestACSResend) else self.sequence
        self.sequence = (self.sequence + 1) % 10
        self.sock.sendall(
            encode_message(message, sequence_number=sequence, checksum=True, encoding=self.encoding)
        )
        frame = b""
        while not frame.endswith(b"\r"):
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("the stand-in closed the connection")
            frame += chunk
        return frame[:-1]

    def ask(self, message: SIPMessage) -> SIPMessage:
        return decode_message(self.raw(message) + b"\r", encoding=self.encoding).message


@pytest.fixture(scope="module")
def ils(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningIls]:
    with running_ils(tmp_path_factory.mktemp("ils"), PATRONS) as running:
        yield running


@pytest.fixture
def line(ils: RunningIls) -> Iterator[Line]:
    with socket.create_connection((ils.host, ils.port), timeout=5) as sock:
        yield Line(sock)


def information(card: str, pin: str | None) -> PatronInformationRequest:
    return PatronInformationRequest(
        language="000",
        transaction_date=WHEN,
        summary=" " * 10,
        institution_id="DEMO",
        patron_identifier=card,
        terminal_password="",
        patron_password=pin,
    )


def status(card: str, pin: str) -> PatronStatusRequest:
    return PatronStatusRequest(
        language="000",
        transaction_date=WHEN,
        institution_id="DEMO",
        patron_identifier=card,
        terminal_password="",
        patron_password=pin,
    )


def login(user: str, password: str) -> LoginRequest:
    return LoginRequest(
        uid_algorithm="0", pwd_algorithm="0", login_user_id=user, login_password=password
    )


def fields(frame: bytes, encoding: str = "cp850") -> dict[str, str]:
    """Every identified field of a 64 or 24 frame, vendor fields too (pysip2 drops those)."""
    fixed = {b"64": 2 + 59, b"24": 2 + 35}[frame[:2]]
    text = frame[fixed:].decode(encoding)
    return {part[:2]: part[2:] for part in text.split("|") if part}


def test_a_known_card_with_its_pin_is_a_valid_patron_with_a_valid_password(line: Line) -> None:
    answer = line.ask(information("21000000000001", "1234"))
    assert isinstance(answer, PatronInformationResponse)
    assert (answer.valid_patron, answer.valid_patron_password) == ("Y", "Y")
    assert answer.personal_name == "Sam Rivera"


def test_a_wrong_pin_is_a_valid_patron_with_an_invalid_password(line: Line) -> None:
    answer = line.ask(information("21000000000001", "4321"))
    assert isinstance(answer, PatronInformationResponse)
    assert (answer.valid_patron, answer.valid_patron_password) == ("Y", "N")


def test_an_unknown_card_is_not_a_valid_patron(line: Line) -> None:
    answer = line.ask(information("29999999999999", "1234"))
    assert isinstance(answer, PatronInformationResponse)
    assert (answer.valid_patron, answer.valid_patron_password) == ("N", "N")
    assert answer.personal_name == ""


def test_an_invalid_card_with_its_pin_is_not_a_valid_patron_but_its_password_is(
    line: Line,
) -> None:
    answer = line.ask(information("21000000000009", "1234"))
    assert isinstance(answer, PatronInformationResponse)
    assert (answer.valid_patron, answer.valid_patron_password) == ("N", "Y")


def test_a_card_marked_omit_cq_answers_without_a_password_field(line: Line) -> None:
    frame = line.raw(information("21000000000005", "1234"))
    assert fields(frame)["BL"] == "Y"
    assert "CQ" not in fields(frame)


def test_no_pin_sent_means_no_password_field(line: Line) -> None:
    frame = line.raw(information("21000000000001", None))
    assert fields(frame)["BL"] == "Y"
    assert "CQ" not in fields(frame)


def test_a_patron_without_a_password_passes_with_an_empty_pin_as_koha_answers(
    line: Line,
) -> None:
    empty = line.ask(information("21000000000004", ""))
    some = line.ask(information("21000000000004", "1234"))
    assert isinstance(empty, PatronInformationResponse)
    assert isinstance(some, PatronInformationResponse)
    assert (empty.valid_patron, empty.valid_patron_password) == ("Y", "Y")
    assert (some.valid_patron, some.valid_patron_password) == ("Y", "N")


def test_an_empty_pin_fails_for_a_patron_who_has_one(line: Line) -> None:
    answer = line.ask(information("21000000000001", ""))
    assert isinstance(answer, PatronInformationResponse)
    assert answer.valid_patron_password == "N"


def test_the_birth_date_is_in_pb_before_the_trailer_with_a_valid_checksum(line: Line) -> None:
    frame = line.raw(information("21000000000001", "1234"))
    assert fields(frame)["PB"] == "19850315"
    assert b"|PB19850315|AY" in frame
    assert verify_checksum(frame)
    assert "PB" not in fields(line.raw(information("21000000000004", "")))  # born: null


def test_patron_status_answers_with_the_birth_date_too(line: Line) -> None:
    frame = line.raw(status("21000000000001", "1234"))
    assert frame[:2] == b"24"
    assert (fields(frame)["BL"], fields(frame)["CQ"], fields(frame)["PB"]) == ("Y", "Y", "19850315")
    assert verify_checksum(frame)
    answer = decode_message(frame + b"\r").message
    assert isinstance(answer, PatronStatusResponse)


def test_a_resend_request_replays_the_answer_with_its_birth_date(line: Line) -> None:
    first = line.raw(information("21000000000001", "1234"))
    assert line.raw(RequestACSResend()) == first


def test_polaris_style_sends_the_birth_date_in_bc(tmp_path: Path) -> None:
    with (
        running_ils(tmp_path, PATRONS, birth_date_field="BC") as ils,
        socket.create_connection((ils.host, ils.port), timeout=5) as sock,
    ):
        frame = Line(sock).raw(information("21000000000001", "1234"))
    assert fields(frame)["BC"] == "19850315"
    assert "PB" not in fields(frame)
    assert verify_checksum(frame)


def test_a_name_with_accents_arrives_in_cp850(line: Line) -> None:
    frame = line.raw(information("21000000000003", "1234"))
    assert "AEZoë Müller-Ñúñez|".encode("cp850") in frame
    answer = decode_message(frame + b"\r", encoding="cp850").message
    assert isinstance(answer, PatronInformationResponse)
    assert answer.personal_name == "Zoë Müller-Ñúñez"


def test_a_name_with_accents_arrives_in_utf8_when_configured(tmp_path: Path) -> None:
    with (
        running_ils(tmp_path, PATRONS, encoding="utf-8") as ils,
        socket.create_connection((ils.host, ils.port), timeout=5) as sock,
    ):
        frame = Line(sock, "utf-8").raw(information("21000000000003", "1234"))
    assert "AEZoë Müller-Ñúñez|".encode() in frame


def test_login_is_required_and_only_the_right_account_is_let_in(tmp_path: Path) -> None:
    with running_ils(tmp_path, PATRONS, login_user="sip", login_password="s3cret") as ils:
        with socket.create_connection((ils.host, ils.port), timeout=5) as sock:
            good = Line(sock)
            assert good.ask(login("sip", "s3cret")) == LoginResponse(ok="1")
            answer = good.ask(information("21000000000001", "1234"))
            assert isinstance(answer, PatronInformationResponse)
            assert answer.valid_patron_password == "Y"
        with socket.create_connection((ils.host, ils.port), timeout=5) as sock:
            assert Line(sock).ask(login("sip", "wrong")) == LoginResponse(ok="0")
            assert sock.recv(1) == b""  # and the connection is closed
        with (
            socket.create_connection((ils.host, ils.port), timeout=5) as sock,
            pytest.raises(ConnectionError),
        ):
            Line(sock).raw(information("21000000000001", "1234"))


def test_a_refusing_ils_answers_940_even_to_the_right_account(tmp_path: Path) -> None:
    with (
        running_ils(
            tmp_path, PATRONS, login_user="sip", login_password="s3cret", refuse_login=True
        ) as ils,
        socket.create_connection((ils.host, ils.port), timeout=5) as sock,
    ):
        assert Line(sock).ask(login("sip", "s3cret")) == LoginResponse(ok="0")


def test_the_record_has_a_line_per_request_with_the_card_and_never_the_pin(
    tmp_path: Path,
) -> None:
    with running_ils(tmp_path, PATRONS) as ils:
        assert ils.requests() == []
        with socket.create_connection((ils.host, ils.port), timeout=5) as sock:
            asked = Line(sock)
            asked.ask(login("sip", "any"))
            asked.ask(
                SCStatusRequest(status_code="0", max_print_width="080", protocol_version="2.00")
            )
            asked.ask(information("21000000000001", "9876"))
            asked.ask(status("29999999999999", "9876"))
        assert ils.requests() == ["93", "99", "63 21000000000001", "23 29999999999999"]
        assert "9876" not in ils.record.read_text()


def test_tls_is_served_with_a_certificate_the_ca_file_verifies(tmp_path: Path) -> None:
    with running_ils(tmp_path, PATRONS, tls=True) as ils:
        assert ils.ca_file is not None
        trusting = ssl.create_default_context(cafile=ils.ca_file)
        with (
            socket.create_connection((ils.host, ils.port), timeout=5) as raw,
            trusting.wrap_socket(raw, server_hostname=ils.host) as sock,
        ):
            assert Line(sock).raw(information("21000000000001", "1234"))[:2] == b"64"
        other = ssl.create_default_context(cafile=make_tls_files(tmp_path, name="other").ca_file)
        with (
            socket.create_connection((ils.host, ils.port), timeout=5) as raw,
            pytest.raises(ssl.SSLCertVerificationError),
        ):
            other.wrap_socket(raw, server_hostname=ils.host)


def test_the_demo_child_turned_ten_today_and_every_demo_card_signs_in(tmp_path: Path) -> None:
    with (
        running_ils(tmp_path, DEMO_PATRONS) as ils,
        socket.create_connection((ils.host, ils.port), timeout=5) as sock,
    ):
        asked = Line(sock)
        answers = {
            patron["card"]: fields(asked.raw(information(str(patron["card"]), patron["pin"] or "")))
            for patron in DEMO_PATRONS
        }
    today = date.today()  # noqa: DTZ011 (the stand-in's own day)
    born = datetime.strptime(answers["21000000000002"]["PB"], "%Y%m%d").date()  # noqa: DTZ007
    assert today.year - born.year - ((today.month, today.day) < (born.month, born.day)) == 10
    assert {card: (got["BL"], got["CQ"]) for card, got in answers.items()} == {
        card: ("Y", "Y") for card in answers
    }
