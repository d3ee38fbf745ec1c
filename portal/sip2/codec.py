"""SIP2 framing, no I/O: the checksum trailer, field validation, the requests the portal sends
and a decoder for the answers it reads (3M Standard Interchange Protocol 2.00). A value that
could break out of its field (`|`, CR, LF, NUL) is refused before anything is sent."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

MAX_VALUE_BYTES = 255

# Length of the fixed part after the two-digit command, for the answers the portal reads and
# the requests it sends (so `encode` can find, and measure, every field value).
FIXED_LENGTHS = {
    "94": 1,  # login response: ok
    "64": 59,  # patron status 14, language 3, date 18, six 4-digit counts
    "24": 35,  # patron status 14, language 3, date 18
    "98": 34,  # six Y/N flags, timeout 3, retries 3, date 18, protocol version 4
    "96": 0,
    "93": 2,  # UID and password algorithms
    "63": 31,  # language 3, date 18, summary 10
    "23": 21,  # language 3, date 18
    "99": 8,  # status 1, print width 3, protocol version 4
    "97": 0,
}
_NO_SEQUENCE = frozenset({"96", "97"})
_FIELD_CODE = re.compile(r"[A-Za-z0-9]{2}")
_FORBIDDEN = ("|", "\r", "\n", "\x00")


class FrameError(Exception):
    """A frame that is not SIP2 as we read it. Messages never quote the frame."""


class ChecksumError(FrameError):
    pass


class UnsendableValue(ValueError):
    """A value that cannot travel in a field; raised before anything is sent."""


def checksum(prefix_through_az: bytes) -> str:
    return f"{-sum(prefix_through_az) & 0xFFFF:04X}"


def field(code: str, value: str) -> str:
    if not _FIELD_CODE.fullmatch(code):
        raise UnsendableValue("a field code is two letters or digits")
    if any(character in value for character in _FORBIDDEN):
        raise UnsendableValue(f"field {code} holds a delimiter, line break or NUL")
    return f"{code}{value}|"


def encode(message: str, *, sequence: int | None, encoding: str) -> bytes:
    """The message with its `AY<seq>AZ<sum>` trailer and CR; 96 and 97 carry `AZ` only."""
    if any(character in message for character in ("\r", "\n", "\x00")):
        raise UnsendableValue("a message holds a line break or NUL")
    try:
        body = message.encode(encoding)
    except UnicodeEncodeError:
        raise UnsendableValue(f"a value cannot be written in {encoding}") from None
    command, _, fields = _split(body, encoding=encoding, error=UnsendableValue)
    for code, value in fields:
        if len(value.encode(encoding)) > MAX_VALUE_BYTES:
            raise UnsendableValue(f"field {code} is over {MAX_VALUE_BYTES} bytes")
    if command in _NO_SEQUENCE or sequence is None:
        prefix = body + b"AZ"
    elif 0 <= sequence <= 9:
        prefix = body + b"AY%dAZ" % sequence
    else:
        raise ValueError("a sequence number is one digit")
    return prefix + checksum(prefix).encode("ascii") + b"\r"


@dataclass(frozen=True)
class Frame:
    command: str
    fixed: str
    fields: tuple[tuple[str, str], ...]
    sequence: int | None

    def first(self, code: str) -> str | None:
        return next((value for found, value in self.fields if found == code), None)


def decode(raw: bytes, *, encoding: str) -> Frame:
    """One frame without its CR. Every identified field is kept, vendor extensions too."""
    if b"\r" in raw or b"\x00" in raw:
        raise FrameError("a line break or NUL inside a frame")
    sequence = None
    if len(raw) >= 6 and raw[-6:-4] == b"AZ" and re.fullmatch(rb"[0-9A-Fa-f]{4}", raw[-4:]):
        if (sum(raw[:-4]) + int(raw[-4:], 16)) & 0xFFFF:
            raise ChecksumError("the checksum does not match")
        raw = raw[:-6]
        if len(raw) >= 3 and raw[-3:-1] == b"AY" and raw[-1:].isdigit():
            sequence = raw[-1] - ord("0")
            raw = raw[:-3]
    command, fixed, fields = _split(raw, encoding=encoding, error=FrameError)
    return Frame(command=command, fixed=fixed, fields=fields, sequence=sequence)


def _split(
    body: bytes, *, encoding: str, error: type[Exception]
) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    command = body[:2].decode("ascii", errors="replace")
    if command not in FIXED_LENGTHS:
        raise error("an unknown command")
    end_of_fixed = 2 + FIXED_LENGTHS[command]
    if len(body) < end_of_fixed:
        raise error("the fixed part is cut short")
    try:
        fixed = body[2:end_of_fixed].decode(encoding)
        pieces = body[end_of_fixed:].split(b"|")
        if pieces.pop() != b"":
            raise error("the last field has no delimiter")
        fields = []
        for piece in pieces:
            code = piece[:2].decode("ascii")
            if not _FIELD_CODE.fullmatch(code):
                raise error("a field without a field code")
            fields.append((code, piece[2:].decode(encoding)))
    except UnicodeDecodeError:
        raise error(f"a value is not {encoding}") from None
    return command, fixed, tuple(fields)


def _when(now: datetime) -> str:
    """SIP2's 18-character date: YYYYMMDD, a zone (`   Z` for UTC), HHMMSS."""
    if now.tzinfo is None:
        raise ValueError("a transaction date needs its time zone")
    at = now.astimezone(UTC)  # strftime would not pad a year before 1000
    return f"{at.year:04}{at.month:02}{at.day:02}   Z{at.hour:02}{at.minute:02}{at.second:02}"


def login(user: str, password: str, location: str) -> str:
    # Algorithms "00": user and password in clear, inside the TLS tunnel.
    place = field("CP", location) if location else ""
    return f"9300{field('CN', user)}{field('CO', password)}{place}"


def _patron_request(
    command: str,
    fixed: str,
    *,
    institution: str,
    card: str,
    terminal_password: str,
    pin: str | None,
) -> str:
    if not card:
        raise UnsendableValue("an empty card number")
    # An empty AD is a valid password for a patron who has none (Koha answers CQ=Y).
    if pin == "":
        raise UnsendableValue("an empty PIN")
    password = "" if pin is None else field("AD", pin)
    return (
        f"{command}{fixed}{field('AO', institution)}{field('AA', card)}"
        f"{field('AC', terminal_password)}{password}"
    )


def patron_information(
    institution: str, card: str, terminal_password: str, pin: str | None, now: datetime
) -> str:
    fixed = f"000{_when(now)}{' ' * 10}"
    return _patron_request(
        "63",
        fixed,
        institution=institution,
        card=card,
        terminal_password=terminal_password,
        pin=pin,
    )


def patron_status(
    institution: str, card: str, terminal_password: str, pin: str | None, now: datetime
) -> str:
    return _patron_request(
        "23",
        f"000{_when(now)}",
        institution=institution,
        card=card,
        terminal_password=terminal_password,
        pin=pin,
    )


def sc_status() -> str:
    return "99" + "0" + "080" + "2.00"  # status ok, print width 80, protocol 2.00


def request_resend() -> str:
    return "97"
