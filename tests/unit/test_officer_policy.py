"""The privacy officer's pure rules: the consent report's noise drawn from exactly the
distribution its guarantee is worked out for, small cells suppressed (and not recoverable by
subtraction from a row's total), when a scheduled job needs attention."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from random import Random

from portal.officer.policy import (
    SMALL_CELL,
    STALE_AFTER,
    UNFINISHED_AFTER,
    JobHealth,
    Noise,
    RequestDecision,
    RequestingBody,
    RunOutcome,
    RunState,
    card_candidates,
    job_health,
    job_progress,
    report_period,
    report_sensitivity,
    run_state,
    suppress_row,
    suppress_total,
    transparency_rows,
)

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


# The 99.9th percentile of the chi-square distribution with 26 degrees of freedom (27 bins).
CHI_SQUARE_26_999 = 54.052
BINS = 12  # one bin for each of -12 … 12, and one for each tail beyond


def _chi_square(draws: list[int], noise: Noise) -> float:
    """Pearson's statistic of the draws against the mechanism's exact distribution."""
    observed = [0] * (2 * BINS + 3)
    for draw in draws:
        observed[max(-BINS - 1, min(BINS + 1, draw)) + BINS + 1] += 1
    inner = [noise.probability(k) for k in range(-BINS, BINS + 1)]
    tail = (1 - sum(inner)) / 2
    expected = [tail, *inner, tail]
    n = len(draws)
    return sum((o - n * e) ** 2 / (n * e) for o, e in zip(observed, expected, strict=True))


def test_the_noise_follows_the_discrete_laplace_distribution() -> None:
    # Seeded: the same draws every run, so the test cannot flake. A scale that is not a
    # whole number (5/2) as well, as a month's budget split over services gives.
    for noise in (Noise(Fraction(1), 2), Noise(Fraction(4, 5), 2)):
        rng = Random(f"noise-{noise.scale}")  # noqa: S311 - seeded: the same draws every run
        draws = [noise.draw(rng) for _ in range(20_000)]
        assert _chi_square(draws, noise) < CHI_SQUARE_26_999, noise
        # The same test tells a scale a fifth off apart: it would catch a wrong mechanism.
        wrong = Noise(noise.epsilon * Fraction(5, 4), noise.sensitivity)
        assert _chi_square(draws, wrong) > CHI_SQUARE_26_999, noise
        assert abs(sum(draws) / len(draws)) < 0.1  # centred: no count is pushed one way


def test_the_margin_holds_the_true_count_19_times_out_of_20() -> None:
    for noise in (Noise(Fraction(1), 2), Noise(Fraction(1), 18), Noise(Fraction(1, 2), 6)):
        margin = noise.margin()
        inside = sum(noise.probability(k) for k in range(-margin, margin + 1))
        narrower = inside - 2 * noise.probability(margin)
        assert narrower < 0.95 <= inside, noise
    assert Noise(Fraction(1), 18).margin() == 54  # the demo catalog's nine services


def test_one_patron_moves_the_report_by_two_per_service() -> None:
    # Out of one column, into another, in every row.
    assert report_sensitivity(9) == 18


def test_the_figures_are_drawn_once_per_month_of_the_librarys_calendar() -> None:
    assert report_period(date(2026, 11, 30)) == report_period(date(2026, 11, 1)) == "2026-11"
    assert report_period(date(2026, 12, 1)) == "2026-12"


def values(counts: list[int]) -> list[int | None]:
    return [cell.value for cell in suppress_row(counts)]


def test_counts_of_ten_and_more_are_shown_as_they_are() -> None:
    assert values([10, 250, 40, 12]) == [10, 250, 40, 12]


def test_a_count_below_ten_is_suppressed() -> None:
    assert SMALL_CELL == 10
    assert values([3, 250, 4, 12]) == [None, 250, None, 12]


def test_zero_is_not_suppressed_when_nothing_else_is() -> None:
    assert values([0, 250, 40, 12]) == [0, 250, 40, 12]


def test_a_lone_suppressed_cell_takes_the_next_smallest_with_it() -> None:
    # Otherwise 500 - 250 - 40 - 12 gives the hidden 3 back.
    assert values([3, 250, 40, 12]) == [None, 250, 40, None]


def test_the_complement_is_a_non_zero_cell_when_there_is_one() -> None:
    assert values([3, 0, 40, 12]) == [None, 0, 40, None]


def test_the_complement_is_a_zero_when_nothing_else_is_left() -> None:
    assert values([1, 0, 0, 0]) == [None, None, 0, 0]


def test_no_row_lets_a_suppressed_cell_be_subtracted_back() -> None:
    for counts in ([1, 2, 3, 4], [9, 10, 11, 500], [5, 0, 0, 100], [0, 0, 7, 0], [10, 9, 10, 10]):
        hidden = [cell.value is None for cell in suppress_row(counts)]
        assert hidden.count(True) != 1, counts


def test_a_small_total_is_suppressed_and_zero_is_not() -> None:
    assert suppress_total(4).suppressed
    assert suppress_total(0).value == 0
    assert suppress_total(10).value == 10


def test_a_run_that_never_finished_is_never_a_success() -> None:
    started = NOW - UNFINISHED_AFTER - timedelta(minutes=1)
    assert run_state(RunOutcome.RUNNING, started, None, NOW) is RunState.UNFINISHED
    assert run_state(RunOutcome.RUNNING, NOW - timedelta(minutes=5), None, NOW) is RunState.RUNNING


def test_a_worker_alive_recently_is_running() -> None:
    started = NOW - timedelta(days=5)
    alive = NOW - timedelta(minutes=4)
    assert run_state(RunOutcome.RUNNING, started, alive, NOW) is RunState.RUNNING


def test_a_job_without_a_success_for_two_days_is_a_warning() -> None:
    assert timedelta(days=2) == STALE_AFTER
    late = NOW - STALE_AFTER - timedelta(minutes=1)
    assert job_health(late, RunState.SUCCEEDED, NOW) is JobHealth.STALE
    assert job_health(None, None, NOW) is JobHealth.STALE
    assert job_health(NOW - timedelta(hours=20), RunState.SUCCEEDED, NOW) is JobHealth.OK


def test_a_failed_or_unfinished_latest_run_is_a_warning_however_recent() -> None:
    recent = NOW - timedelta(hours=1)
    assert job_health(recent, RunState.FAILED, NOW) is JobHealth.FAILING
    assert job_health(recent, RunState.UNFINISHED, NOW) is JobHealth.FAILING


def test_the_transparency_summary_suppresses_each_row() -> None:
    counts = {
        (RequestingBody.COURT.value, RequestDecision.REFUSED.value): 12,
        (RequestingBody.COURT.value, RequestDecision.DISCLOSED.value): 2,
    }
    rows = {body: (cells, total) for body, cells, total in transparency_rows(counts)}
    cells, total = rows[RequestingBody.COURT.value]
    assert [cell.value for cell in cells].count(None) >= 2
    assert total.value == 14
    assert rows[RequestingBody.OTHER.value][1].value == 0


def test_a_card_number_is_found_in_free_text_however_it_is_printed() -> None:
    card = "LIB21234000012345"
    for text in (
        f"Loans of card {card} from March",
        "Loans of card lib 2123 4000 0123 45.",
        "card LIB\u00a02123\u202f4000\u20090123\u200945",  # no-break, narrow and thin spaces
        "card lib-2123\u20134000\u20110123\u221245",  # en dash, no-break hyphen, minus
        "lib.2123.4000.0123.45 and lib/2123/4000/0123/45",
        "lib\n2123\n4000\n0123\n45",
        "l i b 2 1 2 3 4 0 0 0 0 1 2 3 4 5",
        "card LIB" + "".join(chr(0x0660 + int(digit)) for digit in "21234000012345"),  # Arabic
    ):
        assert card in set(card_candidates(text)), text
    assert "21234000012345" in set(card_candidates("ID21234000012345"))  # a prefix glued on


def test_a_card_split_by_invisible_or_unusual_characters_is_still_found() -> None:
    card = "LIB21234000012345"
    for between in (
        "\u200b",  # zero-width space
        "\u00ad",  # soft hyphen
        "\u200c\u200d\u2060\ufeff",  # zero-width non-joiner and joiner, word joiner, BOM
        "\u200e\u202e\u2066",  # direction marks and overrides
        "_",
        "\u203f",  # undertie: another connector, like the underscore
        ",",
        "\u00b7",  # middle dot
        "\u2027\u30fb\u2219\u22c5",  # hyphenation point, katakana middle dot, operators
        "\u3000",  # ideographic space
        "\u2e3a\ufe63\uff0d",  # two-em dash, small and fullwidth hyphen-minus
        "'\u2019",  # apostrophes, as thousands are grouped in Switzerland
        " \u00ad-\u200b ",  # several at once
    ):
        text = f"Loans of card LIB{between}2123{between}4000{between}0123{between}45 in March"
        assert card in set(card_candidates(text)), repr(between)
    fullwidth = "card \uff2c\uff29\uff22\uff12\uff11234000012345"
    assert card in set(card_candidates(fullwidth))


def test_groups_apart_or_without_a_digit_are_not_read_as_one_card() -> None:
    candidates = set(card_candidates("County sheriff, 2123400 (see 21234; 00001) 12 x 34"))
    assert "COUNTYSHERIFF" not in candidates  # no digit: a name, not a card
    assert "2123400SEE21234" not in candidates  # a parenthesis between them
    assert "2123400001" not in candidates  # a semicolon between them
    assert "1234" not in candidates  # shorter than any card
    assert {"2123400", "21234", "SEE21234", "00001"} <= candidates


def test_a_running_jobs_rate_and_time_left_come_from_its_progress() -> None:
    progress = job_progress(
        done=3000, total=12_000, started_at=NOW, progress_at=NOW + timedelta(seconds=60)
    )
    assert progress.per_second == 50
    assert progress.left == timedelta(minutes=3)


def test_without_a_total_the_time_left_is_unknown() -> None:
    progress = job_progress(
        done=3000, total=None, started_at=NOW, progress_at=NOW + timedelta(seconds=60)
    )
    assert progress.per_second == 50
    assert progress.left is None


def test_before_its_first_batch_a_job_has_no_rate() -> None:
    progress = job_progress(done=0, total=12_000, started_at=NOW, progress_at=None)
    assert progress.per_second is None
    assert progress.left is None


def test_a_count_that_was_passed_leaves_no_time_rather_than_less_than_none() -> None:
    # Rows added after the count: done overtakes the total, the page never says "-1 minute".
    progress = job_progress(
        done=1200, total=1000, started_at=NOW, progress_at=NOW + timedelta(seconds=12)
    )
    assert progress.left == timedelta(0)
