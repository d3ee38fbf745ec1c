"""Staff pages: sign-in and sign-out, through the library's identity provider when one is
configured, otherwise with a local account whose holder chose their own password (guesses
count under the same throttle as patrons', per account and per client network); and the
audit trail of staff actions, for the privacy officer."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal.clock import utcnow
from portal.credentials import throttle
from portal.credentials.throttle import Guessing
from portal.errors import DomainError, StaffCode
from portal.patrons.access import count_guess
from portal.patrons.policy import guess_subject
from portal.staff import audit, oidc
from portal.staff import services as staff_services
from portal.staff.access import (
    HANDOVER_COOKIE,
    SIGNIN_STATE_COOKIE,
    STAFF_COOKIE,
    cookie_name,
    delete_desk_cookie,
    end_patron_session,
    require_staff,
    set_desk_cookie,
    signed_in_staff,
)
from portal.staff.policy import AuditAction, Role, StaffError
from portal.web.rendering import render
from portal.web.requests import MAX_ID, field, number_text, redirect_to, settings_of


def _provider(request: Request) -> object:
    return request.app.state.oidc_client


async def signin_form(request: Request) -> Response:
    if await signed_in_staff(request):
        return redirect_to(request, "desk.home")
    return _signin_page(request)


def _signin_page(request: Request, error: StaffCode | None = None) -> Response:
    handed = bool(request.cookies.get(cookie_name(settings_of(request), HANDOVER_COOKIE)))
    return render(
        request,
        "staff/signin.html",
        {"provider": _provider(request) is not None, "after_handover": handed},
        error=error,
    )


async def _signed_in(request: Request, staff_id: int, roles: frozenset[Role]) -> Response:
    settings = settings_of(request)
    now = utcnow()
    token = await staff_services.start_session(
        settings.secret_key,
        staff_id,
        roles,
        now=now,
        minutes=settings.staff_session_minutes,
        hours=settings.staff_session_hours,
    )
    staff = await staff_services.identity_of(staff_id)
    await audit.append(staff, AuditAction.SIGNED_IN, now=now)
    screen = request.cookies.get(cookie_name(settings, HANDOVER_COOKIE))
    if screen:
        # Staff took back a screen that was handed over: the hand-over ends now (audited),
        # handed back or not. The desk owns hand-overs; the app hands its step in.
        await request.app.state.screen_returned(settings.secret_key, screen, now=now)
    target = "desk.home" if Role.DESK in roles else "staff.trail"
    response = redirect_to(request, target)
    await end_patron_session(request, response)
    set_desk_cookie(request, response, STAFF_COOKIE, token)
    return response


async def signin(request: Request) -> Response:
    """A local account's username and password."""
    if _provider(request) is not None:
        return _signin_page(request, StaffCode.SIGNIN_FAILED)  # the provider signs staff in
    form = await request.form()
    username, password = field(form, "username"), field(form, "password")
    if not username or not password:
        return _signin_page(request, StaffCode.SIGNIN_MISSING)
    reservation = await count_guess(request, Guessing.STAFF, guess_subject(username.lower()))
    if reservation is None:
        return _signin_page(request, StaffCode.SIGNIN_THROTTLED)
    try:
        staff_id, roles = await staff_services.authenticate_local(username, password)
    except StaffError as failure:
        return _signin_page(request, failure.code)  # type: ignore[arg-type]
    await throttle.refund(reservation)
    if not roles:
        return _signin_page(request, StaffCode.NOT_STAFF)
    return await _signed_in(request, staff_id, roles)


async def provider_start(request: Request) -> Response:
    client = _provider(request)
    if client is None:
        return redirect_to(request, "staff.signin_form")
    settings = settings_of(request)
    redirect_uri = str(request.url_for("staff.provider_callback"))
    try:
        response, state = await oidc.start(client, request, redirect_uri)
    except oidc.ProviderSignInFailed:
        return _signin_page(request, StaffCode.PROVIDER_FAILED)
    token = await staff_services.save_signin_state(settings.secret_key, state, now=utcnow())
    set_desk_cookie(request, response, SIGNIN_STATE_COOKIE, token)
    return response


async def provider_callback(request: Request) -> Response:
    client = _provider(request)
    settings = settings_of(request)
    token = request.cookies.get(cookie_name(settings, SIGNIN_STATE_COOKIE))
    state = (
        await staff_services.take_signin_state(settings.secret_key, token, now=utcnow())
        if token and client is not None
        else None
    )
    if state is None:  # replayed, expired, or never started here
        response = _signin_page(request, StaffCode.PROVIDER_FAILED)
    else:
        try:
            identity = await oidc.finish(client, request, state, settings)
        except oidc.ProviderSignInFailed:
            response = _signin_page(request, StaffCode.PROVIDER_FAILED)
        else:
            if not identity.roles:
                response = _signin_page(request, StaffCode.NOT_STAFF)
                response.status_code = 403
            else:
                staff_id = await staff_services.staff_from_provider(
                    settings.secret_key,
                    identity.issuer,
                    identity.subject,
                    identity.display_name,
                    now=utcnow(),
                )
                response = await _signed_in(request, staff_id, identity.roles)
    delete_desk_cookie(request, response, SIGNIN_STATE_COOKIE)
    return response


async def signout(request: Request) -> Response:
    settings = settings_of(request)
    token = request.cookies.get(cookie_name(settings, STAFF_COOKIE))
    if token:
        staff_id = await staff_services.end_session(settings.secret_key, token)
        if staff_id is not None:
            staff = await staff_services.identity_of(staff_id)
            await audit.append(staff, AuditAction.SIGNED_OUT, now=utcnow())
    response = redirect_to(request, "staff.signin_form")
    await end_patron_session(request, response)
    delete_desk_cookie(request, response, STAFF_COOKIE)
    return response


async def setup_form(request: Request) -> Response:
    return render(request, "staff/setup.html")


async def setup(request: Request) -> Response:
    """A local staff member chooses their own password with the one-time code."""
    form = await request.form()
    username, code = field(form, "username"), field(form, "code")
    password, again = field(form, "password"), field(form, "password_again")
    if not username or not code or not password:
        return render(request, "staff/setup.html", error=StaffCode.SIGNIN_MISSING)
    if password != again:
        return render(request, "staff/setup.html", error=StaffCode.PASSWORD_MISMATCH)
    reservation = await count_guess(request, Guessing.STAFF, guess_subject(username.lower()))
    if reservation is None:
        return render(request, "staff/setup.html", error=StaffCode.SIGNIN_THROTTLED)
    try:
        await staff_services.set_password_with_code(
            settings_of(request).secret_key, username, code, password, now=utcnow()
        )
    except DomainError as failure:
        if failure.code is not StaffCode.SETUP_CODE_INVALID:
            await throttle.refund(reservation)  # the password itself: nothing was guessed
        return render(request, "staff/setup.html", error=failure.code)
    await throttle.refund(reservation)
    return render(request, "staff/setup_done.html")


def _day(value: str) -> datetime | None:
    """A day from the filter form, as the start of that day in UTC; nonsense reads as none."""
    try:
        day = date.fromisoformat(value) if value else None
    except ValueError:
        return None
    if day is None or not date(1900, 1, 1) <= day <= date(9000, 1, 1):
        return None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


async def trail(request: Request) -> Response:
    """The staff audit trail, for the privacy officer: newest first, filtered."""
    staff = await require_staff(request, Role.PRIVACY_OFFICER)
    params = request.query_params
    action = params.get("action") or None
    known_actions = [item.value for item in AuditAction]
    since, until = _day(params.get("since", "")), _day(params.get("until", ""))
    filters = audit.TrailFilter(
        action=action if action in known_actions else None,
        since=since,
        until=until + timedelta(days=1) if until else None,
    )
    # An entry id; anything else (30 digits, "²") is a link nobody made: said plainly.
    before = number_text(params.get("before", ""), MAX_ID)
    if before is None and params.get("before"):
        raise DomainError(StaffCode.TRAIL_PAGE_INVALID)
    entries = await audit.trail(filters, before_id=before)
    await audit.append(staff, AuditAction.TRAIL_READ, now=utcnow())
    return render(
        request,
        "staff/trail.html",
        {
            "staff": staff,
            "entries": entries,
            "actions": known_actions,
            "filters": filters,
            "older": entries[-1].id if len(entries) == audit.TRAIL_PAGE else None,
            "query": {key: value for key, value in params.items() if key != "before"},
        },
    )


routes = [
    Route("/staff/signin", signin_form, methods=["GET"], name="staff.signin_form"),
    Route("/staff/signin", signin, methods=["POST"], name="staff.signin"),
    Route("/staff/provider", provider_start, methods=["GET"], name="staff.provider_start"),
    Route(
        "/staff/provider/callback",
        provider_callback,
        methods=["GET"],
        name="staff.provider_callback",
    ),
    Route("/staff/signout", signout, methods=["POST"], name="staff.signout"),
    Route("/staff/setup", setup_form, methods=["GET"], name="staff.setup_form"),
    Route("/staff/setup", setup, methods=["POST"], name="staff.setup"),
    Route("/staff/trail", trail, methods=["GET"], name="staff.trail"),
]
