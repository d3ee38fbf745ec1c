"""Importing a library's cardholders from CSV, on the real engines: new patrons with every
service off, known cards skipped, bad rows skipped whole, and setup codes that work."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date, timedelta

import pytest

from portal.consent.models import ConsentState
from portal.ledger.models import ConsentEvent
from portal.patrons import importing, services
from portal.patrons.importing import BadRow, ImportSummary, IssuedCode, RowProblem
from portal.patrons.models import Patron, PinSetupCode
from tests.factories import SECRET, now

pytestmark = pytest.mark.usefixtures("db")
TODAY = date(2026, 3, 1)


async def run_import(
    lines: Iterable[str], *, batch_size: int = importing.BATCH_SIZE, codes: bool = False
) -> tuple[ImportSummary, list[BadRow], list[IssuedCode]]:
    bad: list[BadRow] = []
    issued: list[IssuedCode] = []
    summary = await importing.import_patrons(
        lines,
        SECRET,
        now=now(),
        today=TODAY,
        locales=("en", "es"),
        setup_code_hours=72,
        on_bad_row=bad.append,
        on_codes=issued.extend if codes else None,
        batch_size=batch_size,
    )
    return summary, bad, issued


def cards(count: int, start: int = 0) -> list[str]:
    return [f"2000 1000 {n:04d}\n" for n in range(start, start + count)]


async def test_imported_patrons_have_every_service_off_and_their_details() -> None:
    summary, bad, _ = await run_import(
        ["card number,born,language\n", "2000 1000 0001,2014-06-01,es\n", "2000-1000-0002\n"]
    )
    assert (summary.created, summary.skipped_existing, bad) == (2, 0, [])
    child = await Patron.get(id=await services.patron_for_card(SECRET, "200010000001"))
    assert (child.born_on, child.locale, child.pin_hash) == (date(2014, 6, 1), "es", None)
    adult = await Patron.get(id=await services.patron_for_card(SECRET, "2000 1000 0002"))
    assert (adult.born_on, adult.locale) == (None, None)
    assert not adult.shares_with_guardians
    assert await ConsentState.all().count() == 0  # absent = never asked = off
    assert await ConsentEvent.all().count() == 0


async def test_card_numbers_are_stored_only_as_keyed_hashes() -> None:
    await run_import(["2000 1000 0001\n"])
    patron = await Patron.get()
    assert patron.card_lookup == services.card_lookup(SECRET, "200010000001")
    assert "200010000001" not in patron.card_lookup


async def test_imported_patrons_have_their_reference_for_connected_systems() -> None:
    await run_import(cards(3), batch_size=2)
    for patron in await Patron.all():
        [line] = [
            line for line in cards(3) if services.card_lookup(SECRET, line) == patron.card_lookup
        ]
        assert patron.reference == services.patron_reference(SECRET, line.replace(" ", "").strip())


async def test_each_new_patron_sets_their_own_pin_with_their_code() -> None:
    summary, _, issued = await run_import(cards(5), batch_size=2, codes=True)
    assert summary.created == 5
    assert sorted(code.card_number for code in issued) == [
        line.replace(" ", "").strip() for line in cards(5)
    ]
    assert len({code.setup_code for code in issued}) == 5
    assert await PinSetupCode.all().count() == 5
    for code in issued:
        assert code.expires_at - now() > timedelta(hours=71)
        patron_id = await services.set_pin_with_code(
            SECRET, code.card_number, code.setup_code, "2580", now=now()
        )
        assert await services.authenticate(SECRET, code.card_number, "2580") == patron_id


async def test_without_codes_no_code_is_issued() -> None:
    await run_import(cards(3))
    assert await PinSetupCode.all().count() == 0


async def test_running_again_skips_every_known_card_and_issues_no_new_code() -> None:
    await run_import(cards(7), batch_size=3, codes=True)
    summary, bad, issued = await run_import(cards(7), batch_size=3, codes=True)
    assert (summary.created, summary.skipped_existing, bad, issued) == (0, 7, [], [])
    assert await Patron.all().count() == 7
    assert await PinSetupCode.all().count() == 7


async def test_a_card_created_at_the_desk_is_left_as_it_is() -> None:
    desk = await services.create_patron(
        SECRET, "2000 1000 0001", now=now(), setup_code_hours=1, born_on=date(1990, 1, 1)
    )
    summary, _, issued = await run_import(["2000 1000 0001,2010-01-01,es\n"], codes=True)
    assert (summary.created, summary.skipped_existing, issued) == (0, 1, [])
    patron = await Patron.get(id=desk.patron_id)
    assert (patron.born_on, patron.locale) == (date(1990, 1, 1), None)
    await services.set_pin_with_code(SECRET, "2000 1000 0001", desk.setup_code, "2580", now=now())


@pytest.mark.parametrize("batch_size", [1, 2, 100])
async def test_a_card_twice_in_the_file_is_created_once_from_its_first_row(
    batch_size: int,
) -> None:
    lines = ["2000 1000 0001,,es\n", "2000 1000 0002\n", "2000-1000-0001,,en\n"]
    summary, _, issued = await run_import(lines, batch_size=batch_size, codes=True)
    assert (summary.created, summary.skipped_existing, len(issued)) == (2, 1, 2)
    patron = await Patron.get(id=await services.patron_for_card(SECRET, "200010000001"))
    assert patron.locale == "es"


async def test_bad_rows_are_reported_by_line_and_skipped_whole() -> None:
    lines = [
        "card,born,language\n",  # 1
        "2000 1000 0001,2010-01-01,es\n",  # 2
        "20\n",  # 3
        "2000 1000 0003,2010-02-30\n",  # 4
        "2000 1000 0004,2027-01-01\n",  # 5
        "2000 1000 0005,1899-12-31\n",  # 6
        "2000 1000 0006,,klingon\n",  # 7
        "2000 1000 0007,2010-01-01,en,Ada Lovelace\n",  # 8
        "\n",  # 9
        '"2000 1000 0008\n',  # 10
        "2000 1000 \udcff009\n",  # 11: what an undecodable byte becomes
        "2000 1000 0010,01/02/2010\n",  # 12
        "2000 1000 0011,,EN\n",  # 13
    ]
    summary, bad, _ = await run_import(lines, batch_size=2)
    assert bad == [
        BadRow(3, RowProblem.CARD_FORMAT),
        BadRow(4, RowProblem.BORN_ON_FORMAT),
        BadRow(5, RowProblem.BORN_ON_FUTURE),
        BadRow(6, RowProblem.BORN_ON_TOO_EARLY),
        BadRow(7, RowProblem.LOCALE_UNKNOWN),
        BadRow(8, RowProblem.TOO_MANY_COLUMNS),
        BadRow(10, RowProblem.CSV_FORMAT),
        BadRow(11, RowProblem.NOT_UTF8),
        BadRow(12, RowProblem.BORN_ON_FORMAT),
    ]
    assert (summary.created, summary.bad_rows, summary.first_bad_rows) == (2, 9, bad)
    assert await Patron.all().count() == 2
    for card in ("2000 1000 0003", "2000 1000 0004", "2000 1000 0007", "2000 1000 0008"):
        assert await services.has_pin(SECRET, card) is None, "a bad row creates nothing"
    late = await Patron.get(id=await services.patron_for_card(SECRET, "2000 1000 0011"))
    assert late.locale == "en"


async def test_the_summary_keeps_only_the_first_bad_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(importing, "KEPT_BAD_ROWS", 2)
    summary, bad, _ = await run_import(["x\n"] * 5 + ["2000 1000 0001\n"])
    assert (summary.bad_rows, len(summary.first_bad_rows), len(bad)) == (5, 2, 5)
    assert summary.created == 1


async def test_a_run_that_fails_midway_keeps_its_batches_and_a_rerun_completes() -> None:
    def failing_after(lines: list[str], count: int) -> Iterator[str]:
        yield from lines[:count]
        raise OSError("the disk went away")

    committed: list[IssuedCode] = []
    with pytest.raises(OSError, match="went away"):
        await importing.import_patrons(
            failing_after(cards(10), 7),
            SECRET,
            now=now(),
            today=TODAY,
            locales=("en",),
            setup_code_hours=72,
            on_codes=committed.extend,
            batch_size=3,
        )
    assert await Patron.all().count() == 6  # two whole batches; the seventh row's is undone
    assert len(committed) == 6
    summary, _, issued = await run_import(cards(10), batch_size=3, codes=True)
    assert (summary.created, summary.skipped_existing, len(issued)) == (4, 6, 4)
    assert await Patron.all().count() == 10
    assert await PinSetupCode.all().count() == 10


async def test_a_setup_code_drawn_twice_is_drawn_again(monkeypatch: pytest.MonkeyPatch) -> None:
    existing = await services.create_patron(SECRET, "2000 9999 0001", now=now(), setup_code_hours=1)
    draws = iter([existing.setup_code, "1111-1111-1111", "1111-1111-1111", "2222-2222-2222"])
    monkeypatch.setattr(importing, "new_setup_code", lambda: next(draws))
    summary, _, issued = await run_import(cards(2), codes=True)
    assert summary.created == 2
    assert sorted(code.setup_code for code in issued) == ["1111-1111-1111", "2222-2222-2222"]
    for code in issued:
        await services.set_pin_with_code(
            SECRET, code.card_number, code.setup_code, "2580", now=now()
        )
    await services.set_pin_with_code(
        SECRET, "2000 9999 0001", existing.setup_code, "2580", now=now()
    )
