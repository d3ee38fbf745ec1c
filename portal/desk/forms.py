"""Parsing the desk's forms. Card numbers are checked by the patrons domain; here only the
shape of what staff typed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from starlette.datastructures import FormData

from portal.desk.services import DeskError, GuardianAtDesk
from portal.errors import DeskCode, DomainError, PatronCode
from portal.web.requests import field

OLDEST_BIRTH_YEAR = 1900


@dataclass(frozen=True)
class NewCardForm:
    card: str
    born_on: date | None
    locale: str | None
    guardian: GuardianAtDesk | None


def parse_birth_date(value: str, today: date) -> date | None:
    if not value:
        return None
    try:
        born_on = date.fromisoformat(value)
    except ValueError:
        raise DeskError(DeskCode.BIRTH_DATE_INVALID) from None
    if born_on > today or born_on.year < OLDEST_BIRTH_YEAR:
        raise DeskError(DeskCode.BIRTH_DATE_INVALID)
    return born_on


def checked(form: FormData, name: str) -> bool:
    return field(form, name) == "yes"


def parse_new_card(form: FormData, *, locales: tuple[str, ...], today: date) -> NewCardForm:
    card = field(form, "card")
    if not card:
        raise DomainError(PatronCode.CARD_FORMAT)
    locale = field(form, "locale")
    guardian_card = field(form, "guardian_card")
    guardian = None
    if guardian_card:
        if guardian_card.replace(" ", "") == card.replace(" ", ""):
            raise DeskError(DeskCode.SAME_CARD)
        guardian = GuardianAtDesk(
            card=guardian_card,
            new_card=checked(form, "guardian_new"),
            label=field(form, "guardian_label")[:60],
            identity_checked=checked(form, "identity_checked"),
            locale=locale if locale in locales else None,
        )
    return NewCardForm(
        card=card,
        born_on=parse_birth_date(field(form, "born_on"), today),
        locale=locale if locale in locales else None,
        guardian=guardian,
    )
