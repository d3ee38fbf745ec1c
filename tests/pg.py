"""A throwaway PostgreSQL cluster for the test run: initdb + pg_ctl on 127.0.0.1, a spare
port, fsync off. Started once per run, stopped at the end."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from tests.support import free_port


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    on_path = shutil.which(name)
    if on_path is None:
        raise RuntimeError(
            f"PostgreSQL's {name} was not found: install the postgresql package "
            "(make system-packages)"
        )
    return on_path


def _as_cluster_owner(command: list[str]) -> list[str]:
    # initdb refuses to run as root; CI machines run as root, developers usually do not.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return command


@contextlib.contextmanager
def throwaway_cluster(
    parent: Path | None = None, settings: Mapping[str, str] | None = None
) -> Iterator[str]:
    """Yields a server URL without a database name: postgres://postgres@127.0.0.1:PORT.
    `parent`: the folder its files go in (the temporary folder by default); `settings`: more
    server settings (a benchmark's memory, say)."""
    root = Path(tempfile.mkdtemp(prefix="portal-pg-", dir=parent))
    data = root / "data"
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(root, owner.pw_uid, owner.pw_gid)
    port = free_port()
    subprocess.run(
        _as_cluster_owner(
            [_bin("initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8"]
        ),
        check=True,
        capture_output=True,
    )
    options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c fsync=off "
        f"-c synchronous_commit=off -c full_page_writes=off -k {root} -c max_connections=200"
    ) + "".join(f" -c {name}={value}" for name, value in (settings or {}).items())
    subprocess.run(
        _as_cluster_owner(
            [_bin("pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgres://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run(
            _as_cluster_owner([_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(root, ignore_errors=True)
