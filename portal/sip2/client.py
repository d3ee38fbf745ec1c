"""Asks the library system (ILS) over SIP2 whether a card and PIN are good: a few pooled,
logged-in connections over TLS. Nothing logged or raised here may hold a frame, a card, a PIN
or a name; the operator sees a short reason and the host."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TypeVar

from portal.sip2 import codec
from portal.sip2.codec import ChecksumError, Frame, FrameError

T = TypeVar("T")

logger = logging.getLogger("portal.sip2")

REASONS = frozenset(
    {
        "connect",  # nothing listening, or the network refused
        "timeout",  # no connection or no answer in time
        "tls",  # the handshake failed: never retried in plain text
        "closed",  # the ILS closed the connection, or closed it mid-answer
        "garbage",  # not the answer asked for
        "checksum",  # answers kept arriving damaged
        "resend",  # the ILS kept asking for the request again
        "login-refused",  # the ILS refused the portal's SIP2 account
        "frame-too-long",  # more than max_frame_bytes without a CR
        "busy",  # every pooled connection stayed in use
    }
)
RETRIES = 2  # 97s sent, or resends on 96, per request
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


class IlsUnavailable(Exception):
    """`request_sent`: whether the request (a PIN with it) may have reached the ILS before
    the failure; a sign-in counts it as a guess then."""

    def __init__(self, reason: str, *, request_sent: bool = False) -> None:
        if reason not in REASONS:
            raise ValueError("an unknown reason")
        super().__init__(reason)
        self.reason = reason
        self.request_sent = request_sent


@dataclass(frozen=True)
class Sip2Config:
    host: str
    port: int
    tls: bool = True
    ca_file: str | None = None
    login_user: str = ""
    login_password: str = field(default="", repr=False)
    location: str = ""
    institution: str = ""
    terminal_password: str = field(default="", repr=False)
    use_patron_status: bool = False
    encoding: str = "cp850"
    birth_date_field: str = "PB"
    pool_size: int = 4
    connect_timeout: float = 3.0
    read_timeout: float = 5.0
    max_frame_bytes: int = 65536

    def __post_init__(self) -> None:
        # The PIN travels in the clear inside SIP2: only the machine itself may skip TLS.
        if not self.tls and self.host not in LOOPBACK:
            raise ValueError("SIP2 without TLS is allowed only to a loopback address")
        codecs.lookup(self.encoding)  # LookupError, a ValueError, for an unknown encoding
        if self.birth_date_field and len(self.birth_date_field) != 2:
            raise ValueError("the birth date field is a two-character field code, or empty")
        if self.pool_size < 1:
            raise ValueError("the pool holds at least one connection")
        # The portal's own values are checked once here (UnsendableValue), not at each login.
        login = codec.login(self.login_user, self.login_password, self.location)
        codec.encode(login, sequence=0, encoding=self.encoding)
        codec.encode(
            codec.patron_status(self.institution, "card", self.terminal_password, None, _EPOCH),
            sequence=0,
            encoding=self.encoding,
        )


@dataclass(frozen=True)
class PatronAnswer:
    valid_patron: bool
    valid_password: bool
    born_on: date | None
    personal_name: str | None = None
    card: str | None = None  # AA as the ILS answered: the caller checks it is the one asked

    @property
    def authenticated(self) -> bool:
        return self.valid_patron and self.valid_password


class Connection:
    """One connection to the ILS: frames out with a cycling sequence number, answers in."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, config: Sip2Config
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._config = config
        self._sequence = -1

    @classmethod
    async def open(cls, config: Sip2Config) -> Connection:
        try:
            async with asyncio.timeout(config.connect_timeout):
                reader, writer = await asyncio.open_connection(
                    config.host, config.port, limit=config.max_frame_bytes
                )
        except TimeoutError:
            raise IlsUnavailable("timeout") from None
        except OSError:
            raise IlsUnavailable("connect") from None
        if config.tls:
            context = ssl.create_default_context(cafile=config.ca_file)
            try:
                async with asyncio.timeout(config.connect_timeout):
                    await writer.start_tls(context, server_hostname=config.host)
            except (OSError, TimeoutError):
                writer.transport.abort()
                raise IlsUnavailable("tls") from None
        return cls(reader, writer, config)

    async def send(self, message: str) -> bytes:
        """Sends the message under the next sequence number; returns the frame, for a resend."""
        self._sequence = (self._sequence + 1) % 10
        frame = codec.encode(message, sequence=self._sequence, encoding=self._config.encoding)
        await self.write(frame)
        return frame

    async def write(self, frame: bytes) -> None:
        try:
            self._writer.write(frame)
            await self._writer.drain()
        except OSError:
            raise IlsUnavailable("closed") from None

    @property
    def reusable(self) -> bool:
        """Nothing unread, not closed by the ILS: safe for the next request. Bytes the ILS
        sent beyond its answer could otherwise be read as the answer to someone else's
        sign-in (a CR smuggled through a field the ILS echoes)."""
        # asyncio.StreamReader has no public way to ask what it holds unread; its `_buffer`
        # has been that bytearray since Python 3.4 (unknown: treated as unread).
        unread = getattr(self._reader, "_buffer", b"?")
        return not unread and not self._reader.at_eof() and not self._writer.is_closing()

    async def receive(self) -> Frame:
        """The next answer; raises ChecksumError for a damaged one, which may be asked again."""
        try:
            async with asyncio.timeout(self._config.read_timeout):
                raw = await self._reader.readuntil(b"\r")
        except TimeoutError:
            raise IlsUnavailable("timeout") from None
        except asyncio.LimitOverrunError:
            raise IlsUnavailable("frame-too-long") from None
        except (asyncio.IncompleteReadError, OSError):
            raise IlsUnavailable("closed") from None
        # A LF after the CR (some ILSes send CRLF) shows up at the start of the next frame.
        raw = raw.lstrip(b"\n")[:-1]
        try:
            return codec.decode(raw, encoding=self._config.encoding)
        except ChecksumError:
            raise
        except FrameError:
            raise IlsUnavailable("garbage") from None

    async def exchange(self, message: str, answer: str) -> Frame:
        """One request and its answer: asks again (97) for a damaged answer, resends on 96
        (the ILS saw a damaged request: it did not act on it). A failure once the request is
        on its way says so (`request_sent`); nothing is ever sent twice otherwise."""
        try:
            return await self._exchange(message, answer)
        except IlsUnavailable as failure:
            failure.request_sent = True
            raise

    async def _exchange(self, message: str, answer: str) -> Frame:
        sent = await self.send(message)
        damaged = resent = 0
        while True:
            try:
                frame = await self.receive()
            except ChecksumError:
                damaged += 1
                if damaged > RETRIES:
                    raise IlsUnavailable("checksum") from None
                await self.write(
                    codec.encode(codec.request_resend(), sequence=None, encoding="ascii")
                )
                continue
            if frame.command == "96":
                resent += 1
                if resent > RETRIES:
                    raise IlsUnavailable("resend")
                await self.write(sent)
                continue
            if frame.command != answer or frame.sequence not in (None, self._sequence):
                raise IlsUnavailable("garbage")
            return frame

    def close(self) -> None:
        self._writer.transport.abort()


class Pool:
    """Up to pool_size logged-in connections, bound to the event loop that first used it."""

    def __init__(self, config: Sip2Config) -> None:
        self._config = config
        self._loop: asyncio.AbstractEventLoop | None = None
        self._slots = asyncio.Semaphore(config.pool_size)
        self._idle: list[Connection] = []

    def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # Connections of another (maybe closed) loop cannot be used, nor cleanly closed.
            for connection in self._idle:
                with contextlib.suppress(RuntimeError):
                    connection.close()
            self._loop = loop
            self._slots = asyncio.Semaphore(self._config.pool_size)
            self._idle = []

    async def run(self, operation: Callable[[Connection], Awaitable[T]]) -> T:
        self._bind()
        slots = self._slots
        try:
            async with asyncio.timeout(self._config.connect_timeout):
                await slots.acquire()
        except TimeoutError:
            raise IlsUnavailable("busy") from None
        try:
            while self._idle:
                connection = self._idle.pop()
                if connection.reusable:
                    return await self._use(connection, operation)
                # Closed by the ILS while idle (or holding stray bytes): found before
                # anything is sent on it, so nothing is ever sent twice.
                connection.close()
            return await self._use(await self._open(), operation)
        finally:
            slots.release()

    async def _use(
        self, connection: Connection, operation: Callable[[Connection], Awaitable[T]]
    ) -> T:
        try:
            result = await operation(connection)
        except BaseException:
            connection.close()
            raise
        if connection.reusable:
            self._idle.append(connection)
        else:
            connection.close()
        return result

    async def _open(self) -> Connection:
        connection = await Connection.open(self._config)
        config = self._config
        if not config.login_user:
            return connection
        try:
            login = codec.login(config.login_user, config.login_password, config.location)
            answer = await connection.exchange(login, "94")
            if answer.fixed != "1":
                raise IlsUnavailable("login-refused")
        except BaseException:
            connection.close()
            raise
        return connection

    async def close(self) -> None:
        self._bind()
        while self._idle:
            self._idle.pop().close()


class Sip2Client:
    def __init__(self, config: Sip2Config) -> None:
        self._config = config
        self._pool = Pool(config)

    async def patron(self, card: str, pin: str | None) -> PatronAnswer:
        """Whether the ILS knows the card and, unless pin is None (a card check at the desk),
        accepts the PIN. A value that cannot be sent raises UnsendableValue before connecting."""
        config = self._config
        # A card check (no PIN) always asks with 63, where AD is optional: 23 requires AD,
        # and an empty one is never sent.
        use_status = config.use_patron_status and pin is not None
        build = codec.patron_status if use_status else codec.patron_information
        request = build(config.institution, card, config.terminal_password, pin, datetime.now(UTC))
        codec.encode(request, sequence=0, encoding=config.encoding)  # refuses it before any I/O
        answer = "24" if use_status else "64"
        frame = await self._run(lambda connection: connection.exchange(request, answer))
        if any(sum(code == key for code, _ in frame.fields) > 1 for key in ("AA", "BL", "CQ")):
            raise IlsUnavailable("garbage", request_sent=True)  # which one would be meant?
        birth = frame.first(config.birth_date_field) if config.birth_date_field else None
        return PatronAnswer(
            valid_patron=frame.first("BL") == "Y",
            valid_password=frame.first("CQ") == "Y",
            born_on=_birth_date(birth),
            personal_name=frame.first("AE"),
            card=frame.first("AA"),
        )

    async def probe(self) -> None:
        await self._run(lambda connection: connection.exchange(codec.sc_status(), "98"))

    async def close(self) -> None:
        await self._pool.close()

    async def _run(self, operation: Callable[[Connection], Awaitable[Frame]]) -> Frame:
        try:
            return await self._pool.run(operation)
        except IlsUnavailable as unavailable:
            logger.warning(
                "sip2 %s:%d unavailable: %s",
                self._config.host,
                self._config.port,
                unavailable.reason,
            )
            raise


def _birth_date(value: str | None) -> date | None:
    text = (value or "")[:8]
    if len(text) != 8 or not (text.isascii() and text.isdigit()):
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None
