"""Age rules around every boundary: birthdays, 29 February, time zones, jurisdictions."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from portal.catalog.jurisdiction import (
    PRESETS,
    AgeBand,
    JurisdictionPolicy,
    age_on,
    band_of,
    born_on_or_before,
    is_offered,
)
from portal.clock import local_date
from portal.consent.policy import Party, refusal_reason
from portal.minors.policy import guardian_sees_choices

US = PRESETS["US"]
GERMANY = PRESETS["GDPR-DE"]


@pytest.mark.parametrize(
    ("born", "today", "age"),
    [
        (date(2013, 6, 15), date(2026, 6, 14), 12),
        (date(2013, 6, 15), date(2026, 6, 15), 13),
        (date(2008, 12, 31), date(2026, 12, 30), 17),
        (date(2008, 12, 31), date(2026, 12, 31), 18),
        (date(2008, 1, 1), date(2025, 12, 31), 17),
    ],
)
def test_age_changes_on_the_birthday_itself(born: date, today: date, age: int) -> None:
    assert age_on(born, today) == age


@pytest.mark.parametrize(
    ("today", "age"),
    [
        (date(2026, 2, 28), 17),  # common year: not yet
        (date(2026, 3, 1), 18),  # common year: from 1 March
        (date(2028, 2, 28), 19),
        (date(2028, 2, 29), 20),  # leap year: on the day
    ],
)
def test_29_february_birthdays(today: date, age: int) -> None:
    assert age_on(date(2008, 2, 29), today) == age


def test_birthday_follows_the_library_time_zone_not_utc() -> None:
    moment = datetime(2026, 3, 1, 3, 0, tzinfo=UTC)  # 28 February, 22:00 in New York
    born = date(2008, 3, 1)
    assert age_on(born, local_date(moment, "America/New_York")) == 17
    assert age_on(born, local_date(moment, "Europe/Berlin")) == 18


@pytest.mark.parametrize(
    ("policy", "age", "band"),
    [
        (US, 12, AgeBand.CHILD),
        (US, 13, AgeBand.TEEN),
        (US, 17, AgeBand.TEEN),
        (US, 18, AgeBand.ADULT),
        (GERMANY, 15, AgeBand.CHILD),
        (GERMANY, 16, AgeBand.TEEN),
        (PRESETS["GDPR-FR"], 14, AgeBand.CHILD),
        (PRESETS["GDPR-FR"], 15, AgeBand.TEEN),
        (PRESETS["GDPR-ES"], 13, AgeBand.CHILD),
        (PRESETS["GDPR-ES"], 14, AgeBand.TEEN),
    ],
)
def test_age_bands_by_jurisdiction(policy: JurisdictionPolicy, age: int, band: AgeBand) -> None:
    birthday = date(2026, 7, 1)  # turns `age` today
    assert band_of(date(2026 - age, 7, 1), birthday, policy) is band


@pytest.mark.parametrize("policy", [US, GERMANY], ids=["US", "DE"])
def test_bands_change_exactly_on_the_birthday(policy: JurisdictionPolicy) -> None:
    consent_age, majority = policy.guardian_consent_below, policy.age_of_majority
    born = date(2000, 5, 20)
    day_before = date(2000 + consent_age, 5, 19)
    assert band_of(born, day_before, policy) is AgeBand.CHILD
    assert band_of(born, date(2000 + consent_age, 5, 20), policy) is AgeBand.TEEN
    assert band_of(born, date(2000 + majority, 5, 19), policy) is AgeBand.TEEN
    assert band_of(born, date(2000 + majority, 5, 20), policy) is AgeBand.ADULT


def test_every_gdpr_preset_is_between_13_and_16() -> None:
    gdpr = [p for code, p in PRESETS.items() if code.startswith("GDPR-")]
    assert len(gdpr) >= 27
    assert {p.guardian_consent_below for p in gdpr} <= {13, 14, 15, 16}


def test_unknown_birth_date_decides_alone() -> None:
    assert band_of(None, date(2026, 1, 1), US) is AgeBand.ADULT


def test_inconsistent_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="guardian-consent age"):
        JurisdictionPolicy("XX", guardian_consent_below=19, age_of_majority=18)


@pytest.mark.parametrize(
    ("minimum", "born", "offered"),
    [
        (None, date(2020, 1, 1), True),
        (18, date(2009, 1, 1), False),  # 17: no fundraising mail
        (18, date(2008, 1, 1), True),
        (13, date(2013, 7, 2), False),  # 12 the day before the birthday
        (13, date(2013, 7, 1), True),
        (18, None, True),
    ],
)
def test_services_not_offered_below_an_age(minimum, born, offered) -> None:
    assert is_offered(minimum, born, date(2026, 7, 1)) is offered


@pytest.mark.parametrize(
    ("band", "party", "yes", "offered", "reason"),
    [
        (AgeBand.CHILD, Party.PATRON, True, True, "guardian_required"),
        (AgeBand.CHILD, Party.PATRON, False, True, None),  # a child can always say no
        (AgeBand.CHILD, Party.GUARDIAN, True, True, None),
        (AgeBand.CHILD, Party.GUARDIAN, False, True, None),  # either guardian can withdraw
        (AgeBand.CHILD, Party.GUARDIAN, True, False, "not_offered"),
        (AgeBand.TEEN, Party.PATRON, True, True, None),
        (AgeBand.TEEN, Party.GUARDIAN, True, True, "not_guardians_choice"),
        (AgeBand.TEEN, Party.GUARDIAN, False, True, "not_guardians_choice"),
        (AgeBand.TEEN, Party.PATRON, True, False, "not_offered"),
        (AgeBand.ADULT, Party.PATRON, True, True, None),
        (AgeBand.ADULT, Party.GUARDIAN, False, True, "not_guardians_choice"),
        (AgeBand.ADULT, Party.PATRON, False, False, None),
    ],
)
def test_who_may_decide(band, party, yes, offered, reason) -> None:
    assert refusal_reason(band=band, party=party, saying_yes=yes, offered=offered) == reason


@pytest.mark.parametrize(
    ("band", "shares", "sees"),
    [
        (AgeBand.CHILD, False, True),
        (AgeBand.TEEN, False, False),
        (AgeBand.TEEN, True, True),
        (AgeBand.ADULT, True, False),
    ],
)
def test_what_a_guardian_sees(band: AgeBand, shares: bool, sees: bool) -> None:
    assert guardian_sees_choices(band, shares) is sees


@pytest.mark.parametrize("years", [13, 15, 16, 18])
def test_counting_back_from_29_february_never_raises_and_agrees_with_age_on(years: int) -> None:
    today = date(2028, 2, 29)
    latest = born_on_or_before(today, years)
    assert age_on(latest, today) >= years
    day_after = date.fromordinal(latest.toordinal() + 1)
    assert age_on(day_after, today) < years
