"""What every endpoint needs from a request: the settings, cookies set one safe way,
redirects by route name, form fields read one way, and guesses counted before they are
checked. No database access here: endpoints reach data only through the domains' use cases
(who is signed in: portal.patrons.access and portal.staff.access; guesses:
portal.credentials.throttle)."""

from __future__ import annotations

import unicodedata
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from portal.settings import Settings

MAX_FIELD = 200
MAX_ID = 2**31 - 1  # the id columns are 32-bit integers


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def redirect_to(request: Request, name: str, **path_params: Any) -> RedirectResponse:
    return RedirectResponse(request.url_for(name, **path_params).path, status_code=303)


def set_cookie(
    request: Request, response: Response, name: str, value: str, *, max_age: int | None
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=settings_of(request).https,
        path="/",
    )


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def safe_next(value: str | None, default: str) -> str:
    """Only a path on this site: never an open redirect."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


def field(form: FormData, name: str) -> str:
    """A text field, trimmed and bounded, without control characters (a NUL or a lone
    surrogate is never stored); absent or a file upload reads as empty."""
    value = form.get(name)
    if not isinstance(value, str):
        return ""
    return plain_text(value)[:MAX_FIELD]


def plain_text(value: str) -> str:
    """Without control characters and lone surrogates (which cannot be stored or encoded);
    format characters such as the zero-width joiners some scripts need are kept."""
    return "".join(char for char in value if unicodedata.category(char) not in ("Cc", "Cs")).strip()


def number_field(form: FormData, name: str) -> int | None:
    """A database id: digits only, within the range of the id columns."""
    return number_text(field(form, name), MAX_ID)


def number_text(value: str, high: int) -> int | None:
    """A whole number from 0 to `high` written in ASCII digits, or None. Not str.isdigit
    alone ("²" and "٣" are digits to it and not to int), and no int() of thousands of
    digits (Python refuses past 4,300)."""
    if not (value.isascii() and value.isdigit()) or len(value.lstrip("0")) > len(str(high)):
        return None
    number = int(value)
    return number if number <= high else None
