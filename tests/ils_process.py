"""The library system stand-in (tests/ils/server.py) as a process of its own on loopback, for
the SIP2 tests: start it with a list of patrons, read back what it was asked, stop it. Plain
functions; the fixtures live with their tests."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import trustme

from tests.ils import DEMO_PATRONS
from tests.support import free_port, ready_line, stop_process

__all__ = ["DEMO_PATRONS", "RunningIls", "TlsFiles", "make_tls_files", "running_ils"]

HOST = "127.0.0.1"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0


@dataclass(frozen=True)
class TlsFiles:
    ca_file: str
    cert_file: str
    key_file: str


def make_tls_files(directory: Path, *identities: str, name: str = "ils") -> TlsFiles:
    """A fresh certificate authority (its PEM in ca_file) and a server certificate it signed
    for `identities` (by default 127.0.0.1 and localhost)."""
    ca = trustme.CA()
    cert = ca.issue_cert(*(identities or (HOST, "localhost")))
    files = TlsFiles(
        ca_file=str(directory / f"{name}-ca.pem"),
        cert_file=str(directory / f"{name}-cert.pem"),
        key_file=str(directory / f"{name}-key.pem"),
    )
    ca.cert_pem.write_to_path(files.ca_file)
    cert.cert_chain_pems[0].write_to_path(files.cert_file)
    for more in cert.cert_chain_pems[1:]:
        more.write_to_path(files.cert_file, append=True)
    cert.private_key_pem.write_to_path(files.key_file)
    return files


@dataclass
class RunningIls:
    host: str
    port: int
    ca_file: str | None
    record: Path
    _process: subprocess.Popen[bytes] = field(repr=False)

    def requests(self) -> list[str]:
        """One line per request the stand-in received, in order: "93", "99", or "63 <card>"
        and "23 <card>" (never a PIN)."""
        if not self.record.exists():
            return []
        return self.record.read_text(encoding="utf-8").splitlines()

    def stop(self) -> None:
        """The library system goes away (also done when the context exits)."""
        stop_process(self._process, STOP_TIMEOUT)


@contextlib.contextmanager
def running_ils(
    tmp_path: Path,
    patrons: list[dict[str, object]],
    *,
    encoding: str = "cp850",
    login_user: str = "",
    login_password: str = "",
    refuse_login: bool = False,
    tls: bool | TlsFiles = False,
    birth_date_field: str = "PB",
    idle_timeout: float | None = None,
) -> Iterator[RunningIls]:
    """A fresh stand-in process serving `patrons` (see tests/ils/server.py for their keys).
    With login_user, every connection must log in with it first; refuse_login answers 940 to
    every login. tls=True serves TLS with a new CA (RunningIls.ca_file); a TlsFiles serves
    those files. idle_timeout closes a connection quiet for that many seconds."""
    port = free_port()
    files = make_tls_files(tmp_path, name=f"ils-{port}") if tls is True else tls or None
    patrons_file = tmp_path / f"ils-{port}-patrons.json"
    patrons_file.write_text(json.dumps(patrons, ensure_ascii=False), encoding="utf-8")
    record = tmp_path / f"ils-{port}-requests.txt"
    stderr_file = tmp_path / f"ils-{port}-stderr.txt"
    command = [
        sys.executable, "-m", "tests.ils.server",
        "--port", str(port),
        "--patrons", str(patrons_file),
        "--encoding", encoding,
        "--record", str(record),
        "--birth-date-field", birth_date_field,
    ]  # fmt: skip
    if login_user:
        command += ["--login-user", login_user, "--login-password", login_password]
    if refuse_login:
        command.append("--refuse-login")
    if files is not None:
        command += ["--tls-cert", files.cert_file, "--tls-key", files.key_file]
    if idle_timeout is not None:
        command += ["--idle-timeout", str(idle_timeout)]
    root = Path(__file__).resolve().parents[1]
    with stderr_file.open("wb") as stderr:
        process = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, stderr=stderr)
    try:
        ready_line(process, "the ILS stand-in", stderr_file.read_text, seconds=START_TIMEOUT)
        yield RunningIls(
            host=HOST,
            port=port,
            ca_file=files.ca_file if files is not None else None,
            record=record,
            _process=process,
        )
    finally:
        stop_process(process, STOP_TIMEOUT)
