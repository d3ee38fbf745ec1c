"""`portal import-patrons` on a generated file of a million cards, run as the operator runs
it (a `portal.cli` process), timed, with the process's own peak memory from wait4(2)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.factories import SECRET
from tests.support import LOOPBACK_URL

ROWS = int(os.environ.get("BENCH_IMPORT_ROWS", "1000000"))
TARGET_SECONDS = 600
TARGET_MB = 200
LANGUAGES = ("", "en", "es", "fr", "vi")


def write_cards(path: Path, rows: int) -> None:
    """A line at a time: the file is never held in memory, here or in the import."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("card number,date of birth,language\n")
        for n in range(rows):
            born = f"{1930 + n % 90}-{1 + n % 12:02d}-{1 + n % 28:02d}" if n % 3 else ""
            out.write(f"2{n:07d} {n % 9973:04d},{born},{LANGUAGES[n % len(LANGUAGES)]}\n")


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_mb: float
    output: str


def run_import(database_url: str, cards: Path, *options: str) -> Run:
    env = {
        **os.environ,
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_SECRET_KEY": SECRET,
        "PORTAL_PUBLIC_URL": LOOPBACK_URL,
        "PORTAL_DEV_MODE": "false",
        "PORTAL_DATA_DIR": str(cards.parent),
    }
    log = cards.parent / "import.log"
    with log.open("w", encoding="utf-8") as output:
        started = time.perf_counter()
        process = subprocess.Popen(
            [sys.executable, "-m", "portal.cli", "import-patrons", str(cards), *options],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        # wait4 reports this child's own peak, not the largest of every child so far.
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    text = log.read_text(encoding="utf-8")
    if process.returncode != 0:
        raise RuntimeError(f"import-patrons exited {process.returncode}:\n{text}")
    return Run(seconds, usage.ru_maxrss / 1024, " / ".join(text.split("\n")).strip(" /"))


def report(label: str, what: str, run: Run, rows: int) -> None:
    verdict = "ok" if run.seconds < TARGET_SECONDS and run.peak_mb < TARGET_MB else "MISSED"
    print(
        f"[{label}] import-patrons, {rows:,} rows, {what}: {run.seconds:,.1f} s, "
        f"{rows / run.seconds:,.0f} rows/s, peak {run.peak_mb:,.0f} MB "
        f"(targets < {TARGET_SECONDS} s, < {TARGET_MB} MB: {verdict}) | {run.output}"
    )


def bench_import(fresh_database: list[str], label: str, folder: Path, rows: int = ROWS) -> None:
    """`fresh_database`: two empty, migrated databases (one per run that creates patrons)."""
    cards = folder / "cards.csv"
    write_cards(cards, rows)
    plain, with_codes = fresh_database
    report(label, "no codes", run_import(plain, cards), rows)
    report(label, "all already known", run_import(plain, cards), rows)
    codes = folder / "codes.csv"
    report(
        label, "with --codes-file", run_import(with_codes, cards, "--codes-file", str(codes)), rows
    )
    issued = sum(1 for _ in codes.open(encoding="utf-8")) - 1
    if issued != rows:
        raise RuntimeError(f"{issued:,} setup codes written for {rows:,} new patrons")
    codes.unlink()
