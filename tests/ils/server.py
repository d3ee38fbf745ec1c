"""The library system's SIP2 service, as Koha, Evergreen and Polaris answer it, served by
pysip2 (an independent implementation of SIP2 2.00) on one port, in plain text or TLS:
login (93/94), patron information (63/64), patron status (23/24) and status (99/98).

    python -m tests.ils.server --port N (--patrons FILE | --demo) [--encoding cp850]
        [--login-user U --login-password P] [--refuse-login] [--tls-cert F --tls-key F]
        [--record FILE] [--birth-date-field PB|BC] [--idle-timeout SECONDS]

Prints `ready <port>` once it listens; stops on SIGTERM. The patrons file is a JSON list of
{"card", "pin" (null: no password), "name", "born" ("YYYYMMDD" or null), "valid",
"omit_cq" (optional: answer without CQ at all)}."""

from __future__ import annotations

import argparse
import contextlib
import json
import ssl
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import anyio
from anyio.abc import SocketAttribute
from anyio.streams.tls import TLSListener
from pysip2 import (
    LOGIN,
    PATRON_INFORMATION,
    PATRON_STATUS,
    SC_STATUS,
    ACSStatusResponse,
    LoginRequest,
    LoginResponse,
    PatronInformationRequest,
    PatronInformationResponse,
    PatronStatusRequest,
    PatronStatusResponse,
    RequestContext,
    SCStatusRequest,
    SIP2Server,
    calculate_checksum,
)

from tests.ils import DEMO_PATRONS

VALID_STATUS = " " * 14
BLOCKED_STATUS = "YYYY" + " " * 10  # charge, renewal, recall and hold privileges denied
BIRTH_DATE = "ils.birth_date"  # the connection-state key a handler leaves for _send


@dataclass(frozen=True)
class Patron:
    card: str
    pin: str | None
    name: str
    born: str | None
    valid: bool
    omit_cq: bool


@dataclass(frozen=True)
class Answer:
    status: str
    name: str
    valid_patron: str
    valid_password: str | None
    born: str | None


def load_patrons(entries: list[dict[str, Any]]) -> dict[str, Patron]:
    return {
        entry["card"]: Patron(
            card=entry["card"],
            pin=entry.get("pin"),
            name=entry.get("name", ""),
            born=entry.get("born"),
            valid=entry.get("valid", True),
            omit_cq=entry.get("omit_cq", False),
        )
        for entry in entries
    }


def answer(patrons: dict[str, Patron], card: str, pin: str | None) -> Answer:
    """BL=Y for a known, valid card. CQ compares the PIN, with Koha's rule that a patron
    without a password matches an EMPTY PIN; no AD sent means no CQ (Koha adds CQ only when a
    password came). A known but invalid card still gets its CQ, so a client that reads CQ
    alone is caught."""
    patron = patrons.get(card)
    if patron is None:
        return Answer(VALID_STATUS, "", "N", None if pin is None else "N", None)
    if pin is None or patron.omit_cq:
        valid_password = None
    elif patron.pin is None:
        valid_password = "Y" if pin == "" else "N"
    else:
        valid_password = "Y" if pin == patron.pin else "N"
    return Answer(
        status=VALID_STATUS if patron.valid else BLOCKED_STATUS,
        name=patron.name,
        valid_patron="Y" if patron.valid else "N",
        valid_password=valid_password,
        born=patron.born,
    )


def with_field(frame: bytes, code: str, value: str, encoding: str) -> bytes:
    """`frame` (a whole encoded response, CR included) with one more field: pysip2's models
    know no vendor fields such as the birth date, so it goes in after encoding, before the
    AY/AZ trailer, and the checksum is computed again over the new bytes."""
    body = frame.removesuffix(b"\r")
    extra = f"{code}{value}|".encode(encoding)
    has_checksum = len(body) >= 6 and body[-6:-4] == b"AZ"
    if not has_checksum:
        return body + extra + b"\r"
    payload = body[:-6]
    trailer = b""
    if payload[-3:-1] == b"AY":
        payload, trailer = payload[:-3], payload[-3:]
    prefix = payload + extra + trailer + b"AZ"
    return prefix + calculate_checksum(prefix).encode("ascii") + b"\r"


class IlsServer(SIP2Server):
    """pysip2's server, plus the birth date a handler left in the connection's state."""

    def __init__(self, *, birth_date_field: str, **options: Any) -> None:
        super().__init__(**options)
        self.birth_date_field = birth_date_field

    async def _send(self, stream: Any, state: Any, frame: bytes) -> None:
        # pysip2 encodes and sends the handler's model here; its last_response (replayed on a
        # 97) is set by the parent, so it is the frame with the field.
        born = state.app_state.pop(BIRTH_DATE, None)
        if born and frame[:2] in (b"64", b"24"):
            frame = with_field(frame, self.birth_date_field, born, self.encoding)
        await super()._send(stream, state, frame)


def build_server(options: argparse.Namespace, patrons: dict[str, Patron]) -> IlsServer:
    refuse = options.refuse_login
    server = IlsServer(
        birth_date_field=options.birth_date_field,
        encoding=options.encoding,
        login_required=bool(options.login_user) or refuse,
        idle_timeout=options.idle_timeout,
        institution_id="DEMO",
        library_name="Demo Library",
    )
    record: TextIO | None = (
        open(options.record, "a", encoding="utf-8") if options.record else None  # noqa: SIM115
    )

    def note(line: str) -> None:
        if record is not None:
            record.write(line + "\n")
            record.flush()

    @server.route(LOGIN)
    async def login(req: LoginRequest, ctx: RequestContext[Any, Any]) -> LoginResponse:
        note("93")
        if refuse:
            return LoginResponse(ok="0")
        if options.login_user:
            right = (req.login_user_id, req.login_password) == (
                options.login_user,
                options.login_password,
            )
            return LoginResponse(ok="1" if right else "0")
        return LoginResponse(ok="1")

    @server.route(SC_STATUS)
    async def status(req: SCStatusRequest, ctx: RequestContext[Any, Any]) -> ACSStatusResponse:
        note("99")
        return ctx.server.build_acs_status(req)

    @server.route(PATRON_INFORMATION)
    async def information(
        req: PatronInformationRequest, ctx: RequestContext[Any, Any]
    ) -> PatronInformationResponse:
        note(f"63 {req.patron_identifier}")
        found = answer(patrons, req.patron_identifier, req.patron_password)
        ctx.connection.state[BIRTH_DATE] = found.born
        count = "0000"
        return PatronInformationResponse(
            patron_status=found.status,
            language=req.language,
            transaction_date=ctx.now_18(),
            hold_items_count=count,
            overdue_items_count=count,
            charged_items_count=count,
            fine_items_count=count,
            recall_items_count=count,
            unavailable_holds_count=count,
            institution_id=req.institution_id,
            patron_identifier=req.patron_identifier,
            personal_name=found.name,
            valid_patron=found.valid_patron,
            valid_patron_password=found.valid_password,
        )

    @server.route(PATRON_STATUS)
    async def patron_status(
        req: PatronStatusRequest, ctx: RequestContext[Any, Any]
    ) -> PatronStatusResponse:
        note(f"23 {req.patron_identifier}")
        found = answer(patrons, req.patron_identifier, req.patron_password)
        ctx.connection.state[BIRTH_DATE] = found.born
        return PatronStatusResponse(
            patron_status=found.status,
            language=req.language,
            transaction_date=ctx.now_18(),
            institution_id=req.institution_id,
            patron_identifier=req.patron_identifier,
            personal_name=found.name,
            valid_patron=found.valid_patron,
            valid_patron_password=found.valid_password,
        )

    return server


async def serve(options: argparse.Namespace, server: IlsServer) -> None:
    listener: Any = await server.listen("127.0.0.1", options.port)
    port = listener.extra(SocketAttribute.local_port)  # noqa: S610 (anyio, not Django)
    if options.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(options.tls_cert, options.tls_key)
        # As stunnel in front of an ILS: a client may close without a TLS close_notify.
        listener = TLSListener(listener, context, standard_compatible=False)
    print(f"ready {port}", flush=True)
    # pysip2's serve() builds its own plain listener; with our own (TLS) listener its
    # per-connection loop is the entry point.
    await listener.serve(server._handle_connection)


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.ils.server")
    parser.add_argument("--port", type=int, required=True)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--patrons", type=Path)
    source.add_argument("--demo", action="store_true", help="serve tests.ils.DEMO_PATRONS")
    parser.add_argument("--encoding", choices=["cp850", "utf-8", "latin-1"], default="cp850")
    parser.add_argument("--login-user", default="")
    parser.add_argument("--login-password", default="")
    parser.add_argument("--refuse-login", action="store_true")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--record", type=Path)
    parser.add_argument("--birth-date-field", choices=["PB", "BC"], default="PB")
    parser.add_argument("--idle-timeout", type=float, default=None)
    options = parser.parse_args(argv)
    if bool(options.tls_cert) != bool(options.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    return options


def main(argv: list[str]) -> None:
    options = parse(argv)
    if options.demo:
        entries = DEMO_PATRONS
    else:
        entries = json.loads(options.patrons.read_text(encoding="utf-8"))
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C on `make run-sip2`
        anyio.run(serve, options, build_server(options, load_patrons(entries)))


if __name__ == "__main__":
    main(sys.argv[1:])
