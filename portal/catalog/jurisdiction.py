"""The library's jurisdiction, as the catalog publishes it: the age thresholds for minors,
and where a patron stands in them on a given day. Pure rules, no I/O.

Children have the same right to confidentiality of what they read as adults (ALA, Privacy
Q&A, section IV). Below the guardian-consent age (COPPA: 13; GDPR Article 8: 13 to 16 by
country) a service can only be turned on with a guardian's consent; from that age until
majority the minor decides alone.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date
from enum import StrEnum


@dataclass(frozen=True)
class JurisdictionPolicy:
    code: str
    guardian_consent_below: int
    age_of_majority: int

    def __post_init__(self) -> None:
        if not 0 < self.guardian_consent_below <= self.age_of_majority:
            raise ValueError("the guardian-consent age must be above 0 and at most majority")


# GDPR Article 8 ages as set by each country's law; the age of majority is 18 in each.
_GDPR_ARTICLE_8 = {
    "AT": 14, "BE": 13, "BG": 14, "HR": 16, "CY": 14, "CZ": 15, "DK": 13, "EE": 13,
    "FI": 13, "FR": 15, "DE": 16, "GR": 15, "HU": 16, "IE": 16, "IT": 14, "LV": 13,
    "LT": 14, "LU": 16, "MT": 13, "NL": 16, "PL": 16, "PT": 13, "RO": 16, "SK": 16,
    "SI": 15, "ES": 14, "SE": 13, "IS": 13, "LI": 16, "NO": 13, "GB": 13,
}  # fmt: skip

PRESETS: dict[str, JurisdictionPolicy] = {
    "US": JurisdictionPolicy("US", guardian_consent_below=13, age_of_majority=18),
    **{
        f"GDPR-{country}": JurisdictionPolicy(f"GDPR-{country}", age, 18)
        for country, age in _GDPR_ARTICLE_8.items()
    },
}
DEFAULT_PRESET = "US"
# A patron may carry any preset: the highest guardian-consent age one of them can have.
HIGHEST_GUARDIAN_CONSENT_AGE = max(policy.guardian_consent_below for policy in PRESETS.values())


def resolve_jurisdiction(code: str | None, library: JurisdictionPolicy) -> JurisdictionPolicy:
    """A patron's own jurisdiction preset when the library recorded one, else the library's."""
    return PRESETS.get(code, library) if code else library


class AgeBand(StrEnum):
    CHILD = "child"  # below the guardian-consent age: a guardian consents
    TEEN = "teen"  # from that age until majority: decides alone
    ADULT = "adult"


def age_on(born_on: date, today: date) -> int:
    # Tuple comparison makes a 29 February birthday count from 1 March in common years:
    # the later date, so protections never end a day early.
    return today.year - born_on.year - ((today.month, today.day) < (born_on.month, born_on.day))


def born_on_or_before(today: date, years: int) -> date:
    """The latest birth date of someone who is at least `years` old today. On 29 February,
    counted back to a common year, that is 28 February (age_on agrees)."""
    year = today.year - years
    if today.month == 2 and today.day == 29 and not calendar.isleap(year):
        return date(year, 2, 28)
    return today.replace(year=year)


def band_of(born_on: date | None, today: date, policy: JurisdictionPolicy) -> AgeBand:
    """A patron whose birth date the library does not hold decides for themselves."""
    if born_on is None:
        return AgeBand.ADULT
    age = age_on(born_on, today)
    if age < policy.guardian_consent_below:
        return AgeBand.CHILD
    if age < policy.age_of_majority:
        return AgeBand.TEEN
    return AgeBand.ADULT


def is_offered(minimum_age: int | None, born_on: date | None, today: date) -> bool:
    """Services the library does not offer below an age (e.g. fundraising mail to minors)."""
    if minimum_age is None or born_on is None:
        return True
    return age_on(born_on, today) >= minimum_age


@dataclass(frozen=True)
class AgeContext:
    """A patron's place in the age rules today."""

    born_on: date | None
    today: date
    band: AgeBand

    def offers(self, minimum_age: int | None) -> bool:
        return is_offered(minimum_age, self.born_on, self.today)


def age_context(
    born_on: date | None, jurisdiction: str | None, library: JurisdictionPolicy, today: date
) -> AgeContext:
    policy = resolve_jurisdiction(jurisdiction, library)
    return AgeContext(born_on=born_on, today=today, band=band_of(born_on, today, policy))
