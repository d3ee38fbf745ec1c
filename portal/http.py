"""What every view needs from HTTP: the signed-in patron, cookies set one safe way,
redirects by route name, and the clock (one place, so tests and jobs agree on UTC)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from portal.catalog.services import published_catalog
from portal.minors.policy import AgeContext, age_context, local_date
from portal.patrons.services import SignedIn
from portal.settings import Settings


def utcnow() -> datetime:
    return datetime.now(UTC)


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def signed_in_patron(request: Request) -> SignedIn | None:
    patron: SignedIn | None = request.state.patron
    return patron


def require_patron(request: Request) -> SignedIn:
    patron = signed_in_patron(request)
    if patron is None:
        raise HTTPException(status_code=401)
    return patron


async def visitor_age(request: Request, patron: SignedIn) -> AgeContext:
    """Where the signed-in patron stands in the age rules today, in the library's time zone."""
    library = (await published_catalog()).jurisdiction
    today = local_date(utcnow(), settings_of(request).timezone)
    return age_context(patron.born_on, patron.jurisdiction, library, today)


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
