"""The screen handed over to the patron at the desk: in the patron's language, with the
language switcher; the patron sets their own PIN (twice, never shown again), then meets each
notice in turn with Yes and No side by side, or decides later (everything stays off). For a
child below the guardian-consent age, the guardian who is present decides. Nothing of the
desk is reachable from here; the screen clears itself when idle and when handed back."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal.clock import utcnow
from portal.consent.policy import ConsentError
from portal.consent.reads import service_view
from portal.decisions.forms import left_as, parse_decision, parse_messages
from portal.desk import handovers
from portal.errors import DomainError, PatronCode
from portal.i18n import current_locale
from portal.staff.access import HANDOVER_COOKIE, cookie_name, end_patron_session
from portal.web.rendering import render
from portal.web.requests import field, redirect_to, settings_of
from portal.web.visit import language_cookie


async def _current(request: Request) -> handovers.HandoverView | None:
    """Where the screen stands: a read, for every method."""
    settings = settings_of(request)
    token = request.cookies.get(cookie_name(settings, HANDOVER_COOKIE))
    if not token:
        return None
    return await handovers.current_handover(
        settings.secret_key,
        token,
        now=utcnow(),
        idle_minutes=settings.handover_idle_minutes,
        locale=current_locale(),
    )


async def _acted_on(request: Request) -> handovers.HandoverView | None:
    """The screen, for a form sent from it (a POST): the patron is there, so its idle
    deadline starts again."""
    view = await _current(request)
    if view is not None:
        await handovers.keep_open(view, now=utcnow())
    return view


def _cleared(request: Request) -> Response:
    response = render(request, "desk/handover_cleared.html", status_code=410)
    settings = settings_of(request)
    response.delete_cookie(language_cookie(settings), path="/", secure=settings.https)
    return response


async def screen(
    request: Request,
    *,
    error: DomainError | None = None,
    ticked: set[str] | None = None,
    entered: dict[str, str] | None = None,
) -> Response:
    """`ticked`, `entered`: a refused grid comes back as the patron left it."""
    view = await _current(request)
    if view is None:
        return _cleared(request)
    context: dict[str, object] = {
        "view": view,
        "notice": view.notice,
        "grid": view.grid,
        "ticked": ticked,
        "entered": entered or {},
        "contacts": {},
    }
    if view.service is not None and view.notice is not None:
        state = await service_view(view.patron_id, view.service.key, current_locale())
        context["revision"] = state.revision
    return render(
        request, "desk/handover_screen.html", context, error=error.code if error else None
    )


async def choose_pin(request: Request) -> Response:
    view = await _acted_on(request)
    if view is None:
        return _cleared(request)
    form = await request.form()
    pin, again = field(form, "pin"), field(form, "pin_again")
    try:
        if not pin:
            raise DomainError(PatronCode.SETUP_MISSING)
        if pin != again:
            raise DomainError(PatronCode.PIN_MISMATCH)
        await handovers.choose_pin(view, pin, now=utcnow())
    except DomainError as failure:
        return await screen(request, error=failure)
    return redirect_to(request, "handover.screen")


async def decide(request: Request) -> Response:
    view = await _acted_on(request)
    if view is None:
        return _cleared(request)
    try:
        posted = await request.form()
        form = parse_decision(posted)
        await handovers.decide_at_desk(
            view,
            field(posted, "service"),
            form.decision,
            notice_version_id=form.notice_version_id,
            expected_revision=form.expected_revision,
            locale=current_locale(),
            now=utcnow(),
            timezone=settings_of(request).timezone,
        )
    except (ConsentError, DomainError) as failure:
        return await screen(request, error=failure)
    return redirect_to(request, "handover.screen")


async def messages(request: Request) -> Response:
    view = await _acted_on(request)
    if view is None:
        return _cleared(request)
    settings = settings_of(request)
    posted = await request.form()
    try:
        form = parse_messages(posted)
        await handovers.choose_messages_at_desk(
            view,
            field(posted, "group"),
            form.cells,
            form.contacts,
            locale=current_locale(),
            now=utcnow(),
            timezone=settings.timezone,
            phone_region=settings.phone_region,
        )
    except DomainError as failure:
        return await screen(
            request,
            error=failure,
            **left_as(posted),
        )
    return redirect_to(request, "handover.screen")


async def later(request: Request) -> Response:
    view = await _acted_on(request)
    if view is None:
        return _cleared(request)
    await handovers.decide_later(view)
    return redirect_to(request, "handover.screen")


async def more_time(request: Request) -> Response:
    """ "I need more time" (the idle warning's button): the full idle time again."""
    if await _acted_on(request) is None:
        return _cleared(request)
    return redirect_to(request, "handover.screen")


async def hand_back(request: Request) -> Response:
    """Back to staff, who sign in again to see that the card is ready."""
    settings = settings_of(request)
    token = request.cookies.get(cookie_name(settings, HANDOVER_COOKIE))
    if token:
        await handovers.hand_back(settings.secret_key, token, now=utcnow())
    response = redirect_to(request, "staff.signin_form")
    await end_patron_session(request, response)
    # The next person at this screen starts in their own language.
    response.delete_cookie(language_cookie(settings), path="/", secure=settings.https)
    return response


async def cleared(request: Request) -> Response:
    return _cleared(request)


routes = [
    Route("/handover", screen, methods=["GET"], name="handover.screen"),
    Route("/handover/pin", choose_pin, methods=["POST"], name="handover.pin"),
    Route("/handover/decision", decide, methods=["POST"], name="handover.decide"),
    Route("/handover/messages", messages, methods=["POST"], name="handover.messages"),
    Route("/handover/later", later, methods=["POST"], name="handover.later"),
    Route("/handover/more-time", more_time, methods=["POST"], name="handover.more_time"),
    Route("/handover/back", hand_back, methods=["POST"], name="handover.back"),
    Route("/handover/cleared", cleared, methods=["GET"], name="handover.cleared"),
]
