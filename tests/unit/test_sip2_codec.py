"""SIP2 framing against published frames and against pysip2, an independent codec: the
checksum, fields that cannot be smuggled into another field, every field of an answer kept,
accented names in each encoding, and damaged frames refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pysip2.codec import calculate_checksum, decode_message, encode_message, verify_checksum
from pysip2.models import (
    ACSStatusResponse,
    LoginRequest,
    LoginResponse,
    PatronInformationRequest,
    PatronInformationResponse,
    PatronStatusRequest,
    PatronStatusResponse,
    SIPMessage,
    spec_for_type,
)

from portal.sip2 import codec
from portal.sip2.codec import ChecksumError, FrameError, UnsendableValue

NOW = datetime(2024, 3, 5, 14, 7, 9, tzinfo=UTC)
ENCODINGS = ("cp850", "utf-8", "latin-1")
FIXED_64 = "              000" + "20240305   Z140709" + "0000" * 6
NAME = "Zoë Ångström-Núñez"


def answer_64(*fields: tuple[str, str]) -> str:
    return "64" + FIXED_64 + "".join(codec.field(code, value) for code, value in fields)


# Published frames: the checkin example reproduced by several SIP2 client libraries, and the
# SC status example of the 3M SIP2 Developers Guide (page 26).
PUBLISHED = [
    (
        "09N19980821    085721                  APCertification Terminal Location|"
        "AOCertification Institute ID|ABCheckInBook|ACTPWord|BIN|AY2AZ",
        "D6A5",
    ),
    (
        "09N19980821    085721                  APCertification Terminal Location|"
        "AOCertification InstituteID|ABx12345|AC|BIN|AY2AZ",
        "DBAE",
    ),
    ("990 402.00AY1AZ", "FCB4"),
]


@pytest.mark.parametrize(("prefix", "expected"), PUBLISHED)
def test_the_checksum_of_published_frames(prefix: str, expected: str) -> None:
    assert codec.checksum(prefix.encode("ascii")) == expected


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_the_checksum_agrees_with_pysip2(prefix: bytes) -> None:
    assert codec.checksum(prefix) == calculate_checksum(prefix)


def test_encode_adds_the_sequence_the_checksum_and_the_cr() -> None:
    frame = codec.encode(
        codec.login("LoginUserID", "LoginPassword", "LocationCode"), sequence=5, encoding="cp850"
    )
    assert frame.startswith(b"9300CNLoginUserID|COLoginPassword|CPLocationCode|AY5AZ")
    assert frame.endswith(b"\r")
    assert verify_checksum(frame[:-1])


@pytest.mark.parametrize("message", ["97", "96"])
def test_resend_requests_carry_a_checksum_and_no_sequence(message: str) -> None:
    assert codec.encode(message, sequence=3, encoding="cp850") == b"%sAZ%s\r" % (
        message.encode(),
        codec.checksum(message.encode() + b"AZ").encode(),
    )


@pytest.mark.parametrize("pin", ["1234|AAother", "1234\rAAother", "1234\nAAother", "12\x0034"])
def test_a_pin_cannot_inject_a_field(pin: str) -> None:
    with pytest.raises(UnsendableValue) as refused:
        codec.patron_information("INST", "2100", "", pin, NOW)
    assert pin not in str(refused.value)


@pytest.mark.parametrize("value", ["a|b", "a\rb", "a\nb", "a\x00b"])
def test_no_field_holds_a_delimiter_a_line_break_or_nul(value: str) -> None:
    with pytest.raises(UnsendableValue):
        codec.field("AE", value)


@pytest.mark.parametrize(
    ("value", "encoding"),
    [("€", "cp850"), ("名前", "cp850"), ("名前", "latin-1"), ("€", "latin-1")],
)
def test_a_value_the_encoding_cannot_write_is_refused(value: str, encoding: str) -> None:
    message = codec.patron_information("INST", "2100", "", value, NOW)
    with pytest.raises(UnsendableValue):
        codec.encode(message, sequence=0, encoding=encoding)


def test_a_value_over_255_encoded_bytes_is_refused_however_few_its_characters() -> None:
    pin = "é" * 128  # 128 bytes in CP850, 256 in UTF-8
    message = codec.patron_information("INST", "2100", "", pin, NOW)
    assert codec.encode(message, sequence=0, encoding="cp850")
    with pytest.raises(UnsendableValue):
        codec.encode(message, sequence=0, encoding="utf-8")
    exactly = codec.patron_information("INST", "2100", "", "x" * 255, NOW)
    assert codec.encode(exactly, sequence=0, encoding="utf-8")


def test_an_empty_pin_is_never_sent() -> None:
    # Koha answers CQ=Y to an empty password for a patron who has none.
    with pytest.raises(UnsendableValue):
        codec.patron_information("INST", "2100", "", "", NOW)
    with pytest.raises(UnsendableValue):
        codec.patron_status("INST", "2100", "", "", NOW)


def test_without_a_pin_the_request_has_no_password_field() -> None:
    message = codec.patron_information("INST", "2100", "", None, NOW)
    frame = decode_message(codec.encode(message, sequence=1, encoding="cp850"))
    assert isinstance(frame.message, PatronInformationRequest)
    assert frame.message.patron_password is None
    assert "AD" not in message


def test_the_transaction_date_is_sent_in_utc() -> None:
    paris = NOW.astimezone(timezone(timedelta(hours=1)))
    message = codec.patron_information("INST", "2100", "", "1", paris)
    assert message[2:23] == "000" + "20240305   Z140709"


def test_extension_fields_are_kept() -> None:
    raw = answer_64(("AO", "INST"), ("AA", "2100"), ("AE", "A"), ("PB", "19800101"))
    raw += "BC19790202|ZZvendor|AFone|AFtwo|"
    frame = codec.decode(codec.encode(raw, sequence=4, encoding="cp850")[:-1], encoding="cp850")
    assert frame.first("PB") == "19800101"
    assert frame.first("BC") == "19790202"
    assert frame.first("ZZ") == "vendor"
    assert [value for code, value in frame.fields if code == "AF"] == ["one", "two"]
    assert frame.first("AF") == "one"
    assert frame.first("CQ") is None
    assert frame.sequence == 4
    assert frame.fixed == FIXED_64


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_accented_names_round_trip(encoding: str) -> None:
    raw = answer_64(("AO", "INST"), ("AA", "2100"), ("AE", NAME))
    wire = codec.encode(raw, sequence=0, encoding=encoding)
    assert codec.decode(wire[:-1], encoding=encoding).first("AE") == NAME
    decoded = decode_message(wire, encoding=encoding).message
    assert isinstance(decoded, PatronInformationResponse)
    assert decoded.personal_name == NAME


def test_a_frame_without_sequence_or_checksum_is_read() -> None:
    frame = codec.decode(b"941", encoding="cp850")
    assert (frame.command, frame.fixed, frame.fields, frame.sequence) == ("94", "1", (), None)


def test_an_acs_status_has_its_fixed_part() -> None:
    status = ACSStatusResponse(
        online_status="Y",
        checkin_ok="N",
        checkout_ok="N",
        acs_renewal_policy="N",
        status_update_ok="N",
        offline_ok="N",
        timeout_period="030",
        retries_allowed="003",
        date_time_sync="20240305   Z140709",
        protocol_version="2.00",
        institution_id="INST",
        supported_messages="Y" * 16,
    )
    wire = encode_message(status, sequence_number=2, checksum=True)
    frame = codec.decode(wire[:-1], encoding="cp850")
    assert frame.fixed.endswith("20240305   Z1407092.00")
    assert frame.fields == (("AO", "INST"), ("BX", "Y" * 16))


MALFORMED = {
    "empty": b"",
    "one character": b"6",
    "unknown command": b"12YNNY",
    "letters for a command": b"XX",
    "fixed part cut short": b"64     ",
    "last field without its delimiter": ("64" + FIXED_64 + "AOINST|AA2100").encode(),
    "field without its code": ("64" + FIXED_64 + "AOINST||").encode(),
    "non-ASCII field code": ("64" + FIXED_64).encode() + b"\xe9\xe9x|",
    "embedded CR": b"941\rAY1AZ0000",
    "NUL": b"94\x001",
    "a value that is not UTF-8": ("64" + FIXED_64 + "AE").encode() + b"\xff\xfe|",
}


@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_frames_are_refused(raw: bytes) -> None:
    with pytest.raises(FrameError) as refused:
        codec.decode(raw, encoding="utf-8")
    assert not isinstance(refused.value, ChecksumError)


def test_a_damaged_frame_fails_its_checksum() -> None:
    wire = codec.encode(
        answer_64(("AO", "INST"), ("AA", "2100"), ("BL", "N")), sequence=1, encoding="cp850"
    )
    damaged = wire[:-1].replace(b"BLN", b"BLY")
    with pytest.raises(ChecksumError):
        codec.decode(damaged, encoding="cp850")
    assert codec.decode(wire[:-1], encoding="cp850").first("BL") == "N"


# --- Both ways against pysip2 ---------------------------------------------------------------


def values(encoding: str, *, min_size: int = 0) -> st.SearchStrategy[str]:
    # 60 characters stay under 255 bytes even in UTF-8.
    alphabet = st.characters(codec=encoding, exclude_characters="|\r\n\x00")
    return st.text(alphabet, min_size=min_size, max_size=60)


@st.composite
def portal_requests(draw: st.DrawFn) -> tuple[str, str, SIPMessage]:
    encoding = draw(st.sampled_from(ENCODINGS))
    kind = draw(st.sampled_from(["63", "23", "93"]))
    if kind == "93":
        user, password, location = (draw(values(encoding)) for _ in range(3))
        expected: SIPMessage = LoginRequest(
            uid_algorithm="0",
            pwd_algorithm="0",
            login_user_id=user,
            login_password=password,
            location_code=location or None,
        )
        return codec.login(user, password, location), encoding, expected
    institution, terminal = draw(values(encoding)), draw(values(encoding))
    card = draw(values(encoding, min_size=1))
    now = draw(st.datetimes(timezones=st.just(UTC)))
    date = f"{now.year:04}{now:%m%d}   Z{now:%H%M%S}"
    if kind == "23":
        pin = draw(values(encoding, min_size=1))
        message = codec.patron_status(institution, card, terminal, pin, now)
        return (
            message,
            encoding,
            PatronStatusRequest(
                language="000",
                transaction_date=date,
                institution_id=institution,
                patron_identifier=card,
                terminal_password=terminal,
                patron_password=pin,
            ),
        )
    maybe_pin = draw(st.none() | values(encoding, min_size=1))
    message = codec.patron_information(institution, card, terminal, maybe_pin, now)
    return (
        message,
        encoding,
        PatronInformationRequest(
            language="000",
            transaction_date=date,
            summary=" " * 10,
            institution_id=institution,
            patron_identifier=card,
            terminal_password=terminal,
            patron_password=maybe_pin,
        ),
    )


@settings(max_examples=200, deadline=None)
@given(portal_requests(), st.integers(0, 9))
def test_what_the_portal_frames_pysip2_reads_as_the_same_values(
    request: tuple[str, str, SIPMessage], sequence: int
) -> None:
    message, encoding, expected = request
    decoded = decode_message(
        codec.encode(message, sequence=sequence, encoding=encoding), encoding=encoding
    )
    assert decoded.message == expected
    assert decoded.sequence_number == sequence


def matching(pattern: str) -> st.SearchStrategy[str]:
    return st.from_regex(pattern, fullmatch=True)


YN = st.sampled_from(["Y", "N"])
DATES = matching(r"[0-9]{8}[A-Z ]{4}[0-9]{6}")


@st.composite
def ils_answers(draw: st.DrawFn, encoding: str) -> SIPMessage:
    text = values(encoding)
    common = {
        "patron_status": draw(matching(r"[Y ]{14}")),
        "language": draw(matching(r"[0-9]{3}")),
        "transaction_date": draw(DATES),
        "institution_id": draw(text),
        "patron_identifier": draw(text),
        "personal_name": draw(text),
        "valid_patron": draw(st.none() | YN),
        "valid_patron_password": draw(st.none() | YN),
        "fee_amount": draw(st.none() | text),
        "screen_message": tuple(draw(st.lists(text, max_size=3))),
    }
    kind = draw(st.sampled_from(["64", "24", "94"]))
    if kind == "94":
        return LoginResponse(ok=draw(st.sampled_from(["0", "1"])))
    if kind == "24":
        return PatronStatusResponse(**common)
    count = matching(r"[0-9]{4}| {4}")
    return PatronInformationResponse(
        **common,
        hold_items_count=draw(count),
        overdue_items_count=draw(count),
        charged_items_count=draw(count),
        fine_items_count=draw(count),
        recall_items_count=draw(count),
        unavailable_holds_count=draw(count),
        charged_items_limit=draw(st.none() | matching(r"[0-9]{4}")),
        hold_items=tuple(draw(st.lists(text, max_size=3))),
        email_address=draw(st.none() | text),
    )


def wire_fields(message: SIPMessage) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The fixed part and the identified fields pysip2's layout says the frame carries."""
    fixed, fields = "", []
    for spec in spec_for_type(type(message)).fields:
        value = getattr(message, spec.name)
        if spec.field_id is None:
            fixed += value
        elif spec.repeatable:
            fields += [(spec.field_id, item) for item in value]
        elif value is not None:
            fields.append((spec.field_id, value))
    return fixed, tuple(fields)


@settings(max_examples=200, deadline=None)
@given(st.data(), st.sampled_from(["cp850", "utf-8"]), st.booleans(), st.integers(0, 9))
def test_what_pysip2_frames_the_portal_reads_as_the_same_values(
    data: st.DataObject, encoding: str, checksum: bool, sequence: int
) -> None:
    message = data.draw(ils_answers(encoding))
    wire = encode_message(message, sequence_number=sequence, checksum=checksum, encoding=encoding)
    frame = codec.decode(wire[:-1], encoding=encoding)
    assert frame.command == spec_for_type(type(message)).command_id
    assert (frame.fixed, frame.fields) == wire_fields(message)
    assert frame.sequence == (sequence if checksum else None)


def test_pysip2_accepts_the_transaction_date_format() -> None:
    wire = codec.encode(codec.patron_status("I", "C", "", "P", NOW), sequence=0, encoding="cp850")
    decoded = decode_message(wire).message
    assert isinstance(decoded, PatronStatusRequest)
    assert decoded.transaction_date == "20240305   Z140709"
