"""Importing a library's existing cardholders from CSV (card number; optional birth date and
language). Streamed in batches, one transaction each, so memory stays flat and a re-run skips
what an earlier run committed. As with create_patron, the card is kept only as a keyed hash,
and every optional service is off: no consent row at all (docs/PROMISES.md promise 1)."""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import StrEnum

from tortoise.connection import connections
from tortoise.transactions import in_transaction

from portal.credentials.policy import KeyPurpose, keyed_hash
from portal.db import fetch_rows
from portal.locale_codes import RENAMED
from portal.patrons.policy import new_setup_code, normalise_card

# Rows per transaction: big enough that a round trip per batch costs little, small enough
# that SQLite's 32,766 bound parameters are never reached (5 per row).
BATCH_SIZE = 2_000
MAX_BATCH_SIZE = 6_000
# The summary keeps the first bad rows; the caller hears of every one as it is read.
KEPT_BAD_ROWS = 1_000
EARLIEST_BIRTH = date(1900, 1, 1)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# A header row names its first column, e.g. "card number" or "barcode".
_HEADER = re.compile(r"card|barcode", re.IGNORECASE)
# Undecodable bytes arrive as lone surrogates when the file is read with surrogateescape.
_NOT_UTF8 = re.compile("[\udc80-\udcff]")
# A fresh code for a code that another patron already holds: a handful of draws at most.
_CODE_DRAWS = 10


class RowProblem(StrEnum):
    """Why a row was skipped: stable codes, never the row's content."""

    CARD_FORMAT = "card_format"  # missing, or not 5 to 20 letters and digits
    BORN_ON_FORMAT = "born_on_format"  # not a real YYYY-MM-DD date
    BORN_ON_FUTURE = "born_on_future"
    BORN_ON_TOO_EARLY = "born_on_too_early"  # before EARLIEST_BIRTH
    LOCALE_UNKNOWN = "locale_unknown"  # not one of the enabled locales
    TOO_MANY_COLUMNS = "too_many_columns"  # a value past the third column
    NOT_UTF8 = "not_utf8"
    CSV_FORMAT = "csv_format"  # e.g. an unterminated quote, a field past csv's size limit


@dataclass(frozen=True)
class BadRow:
    line: int
    problem: RowProblem


@dataclass(frozen=True)
class CardRow:
    card: str  # normalised
    born_on: date | None
    locale: str | None


@dataclass(frozen=True)
class IssuedCode:
    """A new patron's one-time PIN setup code, for the library's own mailing. The card
    number is the file's (normalised): the portal keeps none."""

    card_number: str
    setup_code: str
    expires_at: datetime


@dataclass
class ImportSummary:
    created: int = 0
    # Already a patron before this row: imported earlier, created at the desk, or a
    # duplicate of an earlier row of the same file (the first row wins).
    skipped_existing: int = 0
    bad_rows: int = 0
    first_bad_rows: list[BadRow] = field(default_factory=list)


def locale_names(enabled: Iterable[str]) -> dict[str, str]:
    """How a language may be written in the file ("zh-hans", "zh_Hans") -> the locale code."""
    names = {_locale_key(code): code for code in enabled}
    for old, new in RENAMED.items():  # a file may still say "tl" for Filipino
        if new in names:
            names.setdefault(_locale_key(old), new)
    return names


def _locale_key(text: str) -> str:
    return text.strip().lower().replace("-", "_")


def read_row(cells: list[str], *, today: date, locales: Mapping[str, str]) -> CardRow | RowProblem:
    """One CSV row: card number, then optionally birth date (YYYY-MM-DD) and language."""
    # Spreadsheets pad rows with empty cells; a fourth value is a file of another shape.
    if any(cell.strip() for cell in cells[3:]):
        return RowProblem.TOO_MANY_COLUMNS
    if any(_NOT_UTF8.search(cell) for cell in cells):
        return RowProblem.NOT_UTF8
    card_cell, born_cell, locale_cell = (*cells, "", "")[:3]
    card = normalise_card(card_cell)
    if card is None:
        return RowProblem.CARD_FORMAT
    born_on = _read_born_on(born_cell.strip(), today) if born_cell.strip() else None
    if isinstance(born_on, RowProblem):
        return born_on
    locale = None
    if locale_cell.strip():
        locale = locales.get(_locale_key(locale_cell))
        if locale is None:
            return RowProblem.LOCALE_UNKNOWN
    return CardRow(card, born_on, locale)


def _read_born_on(text: str, today: date) -> date | RowProblem:
    try:
        born_on = date.fromisoformat(text) if _DATE.match(text) else None
    except ValueError:
        born_on = None
    if born_on is None:
        return RowProblem.BORN_ON_FORMAT
    if born_on > today:
        return RowProblem.BORN_ON_FUTURE
    if born_on < EARLIEST_BIRTH:
        return RowProblem.BORN_ON_TOO_EARLY
    return born_on


def read_rows(
    lines: Iterable[str], *, today: date, locales: Mapping[str, str]
) -> Iterator[tuple[int, CardRow | RowProblem]]:
    """Each row with its line number. Blank lines and a header row are passed over. Every
    line is a row of its own: a stray quote spoils that row, never the lines after it."""
    first = True
    for number, line in enumerate(lines, start=1):
        # A byte-order mark, when whoever opened the file left it in.
        text = line.removeprefix("\ufeff") if first else line
        if not text.strip():
            continue
        try:
            cells = next(csv.reader((text,), strict=True))
        except csv.Error:
            cells = None
        if first:
            first = False
            if cells and _HEADER.search(cells[0]):
                continue
        yield (
            number,
            RowProblem.CSV_FORMAT
            if cells is None
            else read_row(cells, today=today, locales=locales),
        )


async def import_patrons(
    lines: Iterable[str],
    secret: str,
    *,
    now: datetime,
    today: date,
    locales: Iterable[str],
    setup_code_hours: int,
    on_bad_row: Callable[[BadRow], None] | None = None,
    on_codes: Callable[[list[IssuedCode]], None] | None = None,
    batch_size: int = BATCH_SIZE,
) -> ImportSummary:
    """Create a patron, every service off, for each new card in `lines` (CSV text, header
    optional). Cards already known are skipped; bad rows are skipped whole and reported to
    `on_bad_row` as they are read. With `on_codes`, each new patron gets a one-time PIN setup
    code, handed over once its batch has committed. An exception stops the import after the
    last committed batch: running it again completes the rest."""
    if not 0 < batch_size <= MAX_BATCH_SIZE:
        raise ValueError(f"batch_size must be between 1 and {MAX_BATCH_SIZE}")
    summary = ImportSummary()
    names = locale_names(locales)
    expires_at = now + timedelta(hours=setup_code_hours)
    batch: dict[str, CardRow] = {}
    for line, row in read_rows(lines, today=today, locales=names):
        if isinstance(row, RowProblem):
            bad = BadRow(line, row)
            summary.bad_rows += 1
            if len(summary.first_bad_rows) < KEPT_BAD_ROWS:
                summary.first_bad_rows.append(bad)
            if on_bad_row is not None:
                on_bad_row(bad)
            continue
        lookup = keyed_hash(secret, KeyPurpose.CARD, row.card)
        if lookup in batch:
            summary.skipped_existing += 1
            continue
        batch[lookup] = row
        if len(batch) >= batch_size:
            await _commit(
                batch, summary, secret=secret, now=now, expires_at=expires_at, on_codes=on_codes
            )
            batch = {}
    if batch:
        await _commit(
            batch, summary, secret=secret, now=now, expires_at=expires_at, on_codes=on_codes
        )
    return summary


async def _commit(
    batch: dict[str, CardRow],
    summary: ImportSummary,
    *,
    secret: str,
    now: datetime,
    expires_at: datetime,
    on_codes: Callable[[list[IssuedCode]], None] | None,
) -> None:
    postgres = _is_postgres()
    async with in_transaction():
        created = await _insert_patrons(secret, batch, now, postgres=postgres)
        codes = []
        if on_codes is not None:
            codes = await _issue_codes(secret, created, batch, expires_at, postgres=postgres)
    summary.created += len(created)
    summary.skipped_existing += len(batch) - len(created)
    if on_codes is not None:
        on_codes(codes)


def _is_postgres() -> bool:
    return bool(connections.get("default").capabilities.dialect == "postgres")


# Known cards are left as they are (ON CONFLICT DO NOTHING): RETURNING names only the new.
_INSERT_PATRONS_PG = (
    "INSERT INTO patron (card_lookup, reference, born_on, locale, created_at) "
    "SELECT lookup, reference, born_on, locale, ?::timestamptz "
    "FROM unnest(?::varchar[], ?::varchar[], ?::date[], ?::varchar[]) "
    "AS imported(lookup, reference, born_on, locale) "
    "ON CONFLICT (card_lookup) DO NOTHING RETURNING id, card_lookup"
)
_INSERT_CODES_PG = (
    "INSERT INTO pin_setup_code (patron_id, code_lookup, expires_at) "
    "SELECT patron_id, code_lookup, ?::timestamptz "
    "FROM unnest(?::int[], ?::varchar[]) AS imported(patron_id, code_lookup) "
    "ON CONFLICT (code_lookup) DO NOTHING RETURNING patron_id"
)


_INSERT_PATRONS_SQLITE = (
    "INSERT INTO patron (card_lookup, reference, born_on, locale, created_at) VALUES {rows} "
    "ON CONFLICT (card_lookup) DO NOTHING RETURNING id, card_lookup"
)
_INSERT_CODES_SQLITE = (
    "INSERT INTO pin_setup_code (patron_id, code_lookup, expires_at) VALUES {rows} "
    "ON CONFLICT (code_lookup) DO NOTHING RETURNING patron_id"
)


@functools.lru_cache(maxsize=8)
def _sqlite_rows(sql: str, rows: int, columns: int) -> str:
    """SQLite takes no arrays: one VALUES tuple of placeholders per row."""
    row = "(" + ", ".join(["?"] * columns) + ")"
    return sql.format(rows=", ".join([row] * rows))


async def _insert_patrons(
    secret: str, batch: dict[str, CardRow], now: datetime, *, postgres: bool
) -> list[tuple[int, str]]:
    """One statement for the batch; the (id, card lookup) of each patron it created. Each
    with their reference for connected systems, as patrons.services makes it."""
    references = [
        keyed_hash(secret, KeyPurpose.PATRON_REFERENCE, row.card) for row in batch.values()
    ]
    if postgres:
        rows = await fetch_rows(
            _INSERT_PATRONS_PG,
            now,
            list(batch),
            references,
            [row.born_on for row in batch.values()],
            [row.locale for row in batch.values()],
        )
    else:
        values = [
            value
            for (lookup, row), reference in zip(batch.items(), references, strict=True)
            for value in (lookup, reference, row.born_on, row.locale, now)
        ]
        rows = await fetch_rows(_sqlite_rows(_INSERT_PATRONS_SQLITE, len(batch), 5), *values)
    return [(row["id"], row["card_lookup"]) for row in rows]


async def _issue_codes(
    secret: str,
    created: list[tuple[int, str]],
    batch: dict[str, CardRow],
    expires_at: datetime,
    *,
    postgres: bool,
) -> list[IssuedCode]:
    """A code for each new patron, as patrons.services issues one: stored only as a keyed
    hash. Codes are unique across all patrons; one drawn twice is drawn again."""
    waiting = {patron_id: batch[lookup].card for patron_id, lookup in created}
    issued: list[IssuedCode] = []
    for _ in range(_CODE_DRAWS):
        if not waiting:
            return issued
        codes = {patron_id: new_setup_code() for patron_id in waiting}
        lookups = [keyed_hash(secret, KeyPurpose.PIN_SETUP, code) for code in codes.values()]
        if postgres:
            rows = await fetch_rows(_INSERT_CODES_PG, expires_at, list(codes), lookups)
        else:
            values = [
                value
                for patron_id, lookup in zip(codes, lookups, strict=True)
                for value in (patron_id, lookup, expires_at)
            ]
            rows = await fetch_rows(_sqlite_rows(_INSERT_CODES_SQLITE, len(codes), 3), *values)
        for row in rows:
            patron_id = row["patron_id"]
            issued.append(IssuedCode(waiting.pop(patron_id), codes[patron_id], expires_at))
    if waiting:
        raise RuntimeError("could not draw unique setup codes")
    return issued
