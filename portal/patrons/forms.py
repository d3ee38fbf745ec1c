"""Parsing what patrons type. Errors are stable codes; views translate them."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import FormData

MAX_FIELD = 200


def field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip()[:MAX_FIELD] if isinstance(value, str) else ""


@dataclass(frozen=True)
class SignIn:
    card: str
    pin: str


@dataclass(frozen=True)
class PinSetup:
    card: str
    code: str
    pin: str


def parse_signin(form: FormData) -> SignIn | str:
    card, pin = field(form, "card"), field(form, "pin")
    if not card or not pin:
        return "signin_missing"
    return SignIn(card, pin)


def parse_pin_setup(form: FormData) -> PinSetup | str:
    card, code = field(form, "card"), field(form, "code")
    pin, again = field(form, "pin"), field(form, "pin_again")
    if not card or not code or not pin:
        return "setup_missing"
    if pin != again:
        return "pin_mismatch"
    return PinSetup(card, code, pin)
