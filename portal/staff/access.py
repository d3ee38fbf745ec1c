"""Who is at the desk: the staff session (its own cookie, never the patron's) and the
hand-over cookie of a screen handed to a patron. A staff session grants nothing on patron
routes, which never read this cookie; a patron session grants nothing here."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from portal.clock import utcnow
from portal.errors import DomainError, StaffCode
from portal.patrons.services import end_session
from portal.settings import Settings
from portal.staff.policy import Role
from portal.staff.services import StaffIdentity, session_staff
from portal.web.requests import settings_of
from portal.web.visit import HANDOVER_COOKIE, STAFF_COOKIE, host_cookie, session_cookie

__all__ = ["HANDOVER_COOKIE", "SIGNIN_STATE_COOKIE", "STAFF_COOKIE"]

SIGNIN_STATE_COOKIE = "portal_staff_signin"


def cookie_name(settings: Settings, base: str) -> str:
    # As the patron's session cookie (portal.web.visit): host-only under HTTPS.
    return host_cookie(settings, base)


async def signed_in_staff(request: Request) -> StaffIdentity | None:
    if "staff" not in request.state._state:
        settings = settings_of(request)
        token = request.cookies.get(cookie_name(settings, STAFF_COOKIE))
        request.state.staff = (
            await session_staff(
                settings.secret_key, token, now=utcnow(), minutes=settings.staff_session_minutes
            )
            if token
            else None
        )
    staff: StaffIdentity | None = request.state.staff
    return staff


async def require_staff(request: Request, role: Role = Role.DESK) -> StaffIdentity:
    """The staff member, holding `role`; otherwise to the staff sign-in (401) or refused
    with a clear page (403)."""
    staff = await signed_in_staff(request)
    if staff is None:
        raise HTTPException(status_code=401)
    if not staff.has(role):
        raise DomainError(StaffCode.ROLE_REQUIRED)
    return staff


def set_desk_cookie(
    request: Request, response: Response, base: str, value: str, *, path: str = "/"
) -> None:
    settings = settings_of(request)
    response.set_cookie(
        cookie_name(settings, base),
        value,
        max_age=None,
        httponly=True,
        samesite="lax",
        secure=settings.https,
        path=path,
    )


def delete_desk_cookie(request: Request, response: Response, base: str, *, path: str = "/") -> None:
    settings = settings_of(request)
    response.delete_cookie(cookie_name(settings, base), path=path, secure=settings.https)


async def end_patron_session(request: Request, response: Response) -> None:
    """The library's screen forgets any patron signed in on it: server-side and cookie."""
    settings = settings_of(request)
    token = request.cookies.get(session_cookie(settings))
    if token:
        await end_session(settings.secret_key, token)
    response.delete_cookie(session_cookie(settings), path="/", secure=settings.https)
