"""The privacy officer's rules: the consent report's counts released with differential privacy
(the discrete Laplace mechanism, exactly sampled as in Canonne, Kamath and Steinke 2020), small
counts suppressed in the other aggregates (docs/PROMISES.md promise 8), when a scheduled job
needs attention, and the vocabulary of the register of outside requests, with what in its free
text could be a card number. Pure: no database, no web."""

from __future__ import annotations

import math
import random
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from fractions import Fraction

from portal.patrons.policy import CARD_MAX, CARD_MIN

# Any count below this is shown as "fewer than 10" (a common threshold in library and
# public-sector statistics: small cells can point at a person).
SMALL_CELL = 10
# A scheduled job that has not finished successfully for this long is a warning.
STALE_AFTER = timedelta(days=2)
# A run still open after this long is not running any more: it stopped without finishing.
UNFINISHED_AFTER = timedelta(hours=6)


@dataclass(frozen=True)
class Cell:
    """One count in a report: its value, or None when it is suppressed."""

    value: int | None

    @property
    def suppressed(self) -> bool:
        return self.value is None


def suppress_row(counts: Sequence[int]) -> tuple[Cell, ...]:
    """A row of counts that add up to a known total (every patron is in exactly one column).
    Cells under SMALL_CELL are suppressed; when that hides exactly one non-zero cell, the
    next smallest is hidden too, so that nobody subtracts the others from the total to get
    the hidden one back (complementary suppression). Zero is never hidden by itself (it
    reveals nobody); the complement is the smallest non-zero cell, a zero only when there is
    no other."""
    hidden = {index for index, count in enumerate(counts) if 0 < count < SMALL_CELL}
    if len(hidden) == 1:
        others = sorted(
            (count == 0, count, index) for index, count in enumerate(counts) if index not in hidden
        )
        if others:
            hidden.add(others[0][2])
    return tuple(Cell(None if index in hidden else count) for index, count in enumerate(counts))


def suppress_total(total: int) -> Cell:
    return Cell(None if 0 < total < SMALL_CELL else total)


# --- the consent report: differential privacy ----------------------------------------------

# The privacy budget of the consent report, per calendar month: everything the report shows in
# a month about any one patron, all their choices together, is REPORT_EPSILON-differentially
# private (a year: 12 times this). The month's figures are drawn once and kept: asking again
# that month shows them again and releases nothing new (the arithmetic: SECURITY.md).
REPORT_EPSILON = Fraction(1)
# The range shown beside each count: the true count is inside it this often (the report page
# says "19 times out of 20").
CONFIDENCE = 0.95


def report_period(day: date) -> str:
    """The month whose figures a report on `day` (the library's calendar) shows."""
    return f"{day.year:04d}-{day.month:02d}"


def report_sensitivity(services: int) -> int:
    """How far one patron can move the whole report (L1 distance): in every service they
    leave one column and join another (a change of choices), or join or leave one column (a
    patron added or erased, half of that)."""
    return 2 * services


@dataclass(frozen=True)
class Noise:
    """The discrete Laplace mechanism calibrated to `sensitivity` and `epsilon`: a count c is
    released as c + Y, P(Y = k) proportional to exp(-epsilon |k| / sensitivity)."""

    epsilon: Fraction
    sensitivity: int

    @property
    def scale(self) -> Fraction:
        return Fraction(self.sensitivity) / self.epsilon

    def draw(self, rng: random.Random) -> int:
        return discrete_laplace(self.scale, rng)

    def probability(self, k: int) -> float:
        """P(Y = k), exactly as the mechanism draws it (for its test and the margin)."""
        q = math.exp(-1 / self.scale)
        return (1 - q) / (1 + q) * q ** abs(k)

    def margin(self, confidence: float = CONFIDENCE) -> int:
        """The smallest m with P(|Y| <= m) >= confidence: P(|Y| > m) = 2 q^(m+1) / (1 + q)."""
        q = math.exp(-1 / self.scale)
        return max(0, math.ceil(math.log((1 - confidence) * (1 + q) / 2) / math.log(q)) - 1)


def _bernoulli(p: Fraction, rng: random.Random) -> bool:
    return rng.randrange(p.denominator) < p.numerator


def _bernoulli_exp(gamma: Fraction, rng: random.Random) -> bool:
    """True with probability exp(-gamma), gamma >= 0, in exact rational arithmetic."""
    while gamma > 1:
        if not _bernoulli_exp(Fraction(1), rng):
            return False
        gamma -= 1
    k = 1
    while _bernoulli(gamma / k, rng):
        k += 1
    return k % 2 == 1


def discrete_laplace(scale: Fraction, rng: random.Random) -> int:
    """One draw of Y with P(Y = k) proportional to exp(-|k| / scale), with no floating point
    (so no rounding leaks: Mironov 2012). Algorithm 2 of Canonne, Kamath and Steinke, "The
    Discrete Gaussian for Differential Privacy" (2020), for scale = t / s."""
    t, s = scale.numerator, scale.denominator
    while True:
        u = rng.randrange(t)
        if not _bernoulli_exp(Fraction(u, t), rng):
            continue
        v = 0
        while _bernoulli_exp(Fraction(1), rng):
            v += 1
        y = (u + t * v) // s
        negative = rng.randrange(2) == 1
        if negative and y == 0:
            continue
        return -y if negative else y


@dataclass(frozen=True)
class Estimate:
    """A released count: the true count plus noise. Shown as at least 0 (a true count never
    is below it), which changes nothing of the guarantee (it is worked out from the release
    alone)."""

    value: int

    @property
    def shown(self) -> int:
        return max(self.value, 0)


class JobName(StrEnum):
    """The scheduled jobs, as the `portal` verbs that run them."""

    EXPIRE_CONSENTS = "expire-consents"
    APPLY_RETENTION = "apply-retention"
    COMPACT_ERASED = "compact-erased"
    PURGE_SESSIONS = "purge-sessions"
    COMING_OF_AGE = "coming-of-age"
    DELIVER = "deliver"
    CHECKPOINT = "checkpoint"


class RunOutcome(StrEnum):
    RUNNING = "running"  # written first, in its own transaction: a crash leaves it so
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class RunState(StrEnum):
    """How a run is shown: a run that started and never finished is never a success."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    UNFINISHED = "unfinished"


def run_state(
    outcome: RunOutcome, started_at: datetime, alive_at: datetime | None, now: datetime
) -> RunState:
    """`alive_at`: the last sign of life of a long-running job (the delivery worker)."""
    if outcome is RunOutcome.SUCCEEDED:
        return RunState.SUCCEEDED
    if outcome is RunOutcome.FAILED:
        return RunState.FAILED
    if now - max(started_at, alive_at or started_at) > UNFINISHED_AFTER:
        return RunState.UNFINISHED
    return RunState.RUNNING


@dataclass(frozen=True)
class RunProgress:
    """A running job's progress as the privacy officer sees it: rows (or patrons) done, the
    rate since it started, and the time left when the total is known (None: unknown)."""

    done: int
    total: int | None
    per_second: float | None
    left: timedelta | None


def job_progress(
    *, done: int, total: int | None, started_at: datetime, progress_at: datetime | None
) -> RunProgress:
    """From what the run record holds after each batch. The rate is over the whole run so
    far (the first batch's cost of counting included): a steady figure, not the latest
    batch's jitter."""
    elapsed = (progress_at - started_at).total_seconds() if progress_at else 0.0
    per_second = done / elapsed if done and elapsed > 0 else None
    left = None
    if total is not None and per_second:
        left = timedelta(seconds=round(max(total - done, 0) / per_second))
    return RunProgress(done, total, per_second, left)


class JobHealth(StrEnum):
    OK = "ok"
    STALE = "stale"  # no successful run for STALE_AFTER (or ever)
    FAILING = "failing"  # the latest run failed or never finished


def job_health(
    last_success: datetime | None, latest_state: RunState | None, now: datetime
) -> JobHealth:
    """`last_success`: when the latest successful run ended (or a running worker was last
    alive)."""
    if latest_state in (RunState.FAILED, RunState.UNFINISHED):
        return JobHealth.FAILING
    if last_success is None or now - last_success > STALE_AFTER:
        return JobHealth.STALE
    return JobHealth.OK


# --- the register of outside requests ------------------------------------------------------


class RequestingBody(StrEnum):
    LAW_ENFORCEMENT = "law_enforcement"
    COURT = "court"
    GOVERNMENT_AGENCY = "government_agency"
    OTHER = "other"


class Instrument(StrEnum):
    SUBPOENA = "subpoena"
    COURT_ORDER = "court_order"
    SEARCH_WARRANT = "search_warrant"
    NATIONAL_SECURITY_LETTER = "national_security_letter"
    INFORMAL_REQUEST = "informal_request"
    OTHER = "other"


class RequestDecision(StrEnum):
    REFUSED = "refused"
    DISCLOSED_IN_PART = "disclosed_in_part"
    DISCLOSED = "disclosed"
    NO_RECORDS = "no_records"
    PENDING = "pending"
    WITHDRAWN = "withdrawn"


# The summary's columns, in this order.
SUMMARY_DECISIONS = tuple(RequestDecision)


def transparency_rows(
    counts: dict[tuple[str, str], int],
) -> list[tuple[str, tuple[Cell, ...], Cell]]:
    """Per requesting body: its count per decision, and its total, suppressed as a row
    (the total is suppressed too when it is small, and never lets a hidden cell back)."""
    rows = []
    for body in RequestingBody:
        values = [counts.get((body.value, decision.value), 0) for decision in SUMMARY_DECISIONS]
        cells = suppress_row(values)
        rows.append((body.value, cells, suppress_total(sum(values))))
    return rows


# What may stand between the groups of a card number as people print and type it: any space
# (a non-breaking or thin one too, and a line break), a dash or connector of any kind (the
# underscore, the minus sign), a dot or middle dot, a slash, a comma or an apostrophe
# (thousands separators). Invisible format characters (zero-width space, soft hyphen, joiners,
# direction marks) are dropped first: a page shows the number around them intact.
_SEPARATOR_CATEGORIES = frozenset({"Zs", "Zl", "Zp", "Pd", "Pc"})
_SEPARATORS = frozenset(".,/'\u2019\u2212\u2043\u00b7\u2027\u30fb\u2219\u22c5\u2022")
_GROUP_SEPARATOR = re.compile(r" +")
_GROUP = re.compile(r"[0-9A-Z]+")


def _folded(text: str) -> str:
    """The text as a card number would be read from it: compatibility forms folded (NFKC:
    fullwidth letters and digits, the small hyphen-minus), format characters dropped, digits
    of any script as ASCII digits, every separator as one space, in capitals."""
    folded = []
    for char in unicodedata.normalize("NFKC", text):
        category = unicodedata.category(char)
        if category == "Cf":
            continue
        if char.isdecimal():
            folded.append(str(unicodedata.digit(char)))
        elif char.isspace() or category in _SEPARATOR_CATEGORIES or char in _SEPARATORS:
            folded.append(" ")
        else:
            folded.append(char)
    return "".join(folded).upper()


def card_candidates(text: str) -> Iterator[str]:
    """Every run of neighbouring groups of letters and digits, joined as normalise_card would
    join them, that has a card number's length and holds a digit. A group with letters before
    its digits ("ID21234000012345") is also read from its first digit, and digits of any
    script count as the digits they are."""
    folded = _folded(text)
    groups = list(_GROUP.finditer(folded))
    for first, group in enumerate(groups):
        digit = next((i for i, char in enumerate(group.group()) if char.isdigit()), None)
        starts = [group.group()]
        if digit:
            starts.append(group.group()[digit:])
        for start in starts:
            yield from _joined_from(start, folded, groups[first:])


def _joined_from(start: str, text: str, groups: list[re.Match[str]]) -> Iterator[str]:
    joined = start
    for previous, group in zip(groups, [*groups[1:], None], strict=True):
        if CARD_MIN <= len(joined) <= CARD_MAX and any(char.isdigit() for char in joined):
            yield joined
        if group is None or len(joined) >= CARD_MAX:
            return
        if not _GROUP_SEPARATOR.fullmatch(text[previous.end() : group.start()]):
            return  # something other than a separator between them: not one number
        joined += group.group()
