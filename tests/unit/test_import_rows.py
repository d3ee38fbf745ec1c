"""How an import file's rows are read, pure: which rows are cards, which are skipped and why."""

from __future__ import annotations

from datetime import date

import pytest

from portal.patrons.importing import CardRow, RowProblem, locale_names, read_row, read_rows

TODAY = date(2026, 3, 1)
LOCALES = locale_names(("en", "es", "zh_Hans"))


def rows(text: str) -> list[tuple[int, CardRow | RowProblem]]:
    return list(read_rows(text.splitlines(keepends=True), today=TODAY, locales=LOCALES))


def test_a_card_alone_is_a_row() -> None:
    assert rows("2000 1000-2000\n") == [(1, CardRow("200010002000", None, None))]


@pytest.mark.parametrize(
    "header", ["card,born,language", "Card number", "\ufeffcard", "barcode;dob", '"CARD"']
)
def test_a_header_row_is_passed_over(header: str) -> None:
    assert rows(f"{header}\n20001\n") == [(2, CardRow("20001", None, None))]


def test_only_the_first_row_may_be_a_header() -> None:
    assert rows("20001\ncard\n") == [
        (1, CardRow("20001", None, None)),
        (2, RowProblem.CARD_FORMAT),
    ]


def test_blank_lines_are_passed_over_and_line_numbers_stay_the_files() -> None:
    assert rows("\n20001\r\n  \n20002\n") == [
        (2, CardRow("20001", None, None)),
        (4, CardRow("20002", None, None)),
    ]


def test_a_stray_quote_spoils_only_its_own_line() -> None:
    assert rows('20001\n"20002\n20003\n') == [
        (1, CardRow("20001", None, None)),
        (2, RowProblem.CSV_FORMAT),
        (3, CardRow("20003", None, None)),
    ]


def test_empty_cells_a_spreadsheet_pads_with_are_ignored() -> None:
    assert rows("20001,,es,,\n") == [(1, CardRow("20001", None, "es"))]


@pytest.mark.parametrize(
    ("language", "locale"), [("es", "es"), ("ES", "es"), ("zh-hans", "zh_Hans"), (" en ", "en")]
)
def test_languages_are_read_as_the_enabled_locale(language: str, locale: str) -> None:
    assert read_row(["20001", "", language], today=TODAY, locales=LOCALES) == CardRow(
        "20001", None, locale
    )


@pytest.mark.parametrize("born", ["2026-03-01", "1900-01-01", " 2000-02-29 "])
def test_birth_dates_from_1900_to_today_are_taken(born: str) -> None:
    row = read_row(["20001", born], today=TODAY, locales=LOCALES)
    assert isinstance(row, CardRow)
    assert row.born_on == date.fromisoformat(born.strip())


@pytest.mark.parametrize(
    ("cells", "problem"),
    [
        ([""], RowProblem.CARD_FORMAT),
        (["1234"], RowProblem.CARD_FORMAT),
        (["2000 1000 2000 3000 4000 5"], RowProblem.CARD_FORMAT),
        (["20001", "2026-03-02"], RowProblem.BORN_ON_FUTURE),
        (["20001", "1899-12-31"], RowProblem.BORN_ON_TOO_EARLY),
        (["20001", "2001-02-29"], RowProblem.BORN_ON_FORMAT),
        (["20001", "20010101"], RowProblem.BORN_ON_FORMAT),
        (["20001", "2001-1-1"], RowProblem.BORN_ON_FORMAT),
        (["20001", "", "fr"], RowProblem.LOCALE_UNKNOWN),
        (["20001", "", "", "x"], RowProblem.TOO_MANY_COLUMNS),
        (["20001", "", "\udce9s"], RowProblem.NOT_UTF8),
    ],
)
def test_bad_rows_are_named_by_a_stable_reason(cells: list[str], problem: RowProblem) -> None:
    assert read_row(cells, today=TODAY, locales=LOCALES) == problem
