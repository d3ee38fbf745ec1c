"""The desk's screens for staff: a new card, handing the screen over, setup slips, looking
up a card (whether it exists, has a PIN, how many guardians, whether sign-in is locked or on
hold; never a choice or a record) and whether the desk's own network is held, PIN resets,
guardian links. Card numbers arrive only in form bodies, never in URLs."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal import i18n
from portal.clock import local_date, utcnow
from portal.desk import handovers, services
from portal.desk.forms import checked, parse_new_card
from portal.desk.policy import CardRef, Purpose, make_ref, read_ref
from portal.errors import DeskCode, DomainError
from portal.patrons.access import library_system
from portal.staff.access import (
    HANDOVER_COOKIE,
    STAFF_COOKIE,
    cookie_name,
    delete_desk_cookie,
    end_patron_session,
    require_staff,
    set_desk_cookie,
)
from portal.staff.services import StaffIdentity
from portal.web.paths import LOCALE
from portal.web.rendering import render
from portal.web.requests import field, redirect_to, set_cookie, settings_of
from portal.web.visit import language_cookie


def _ref(request: Request, staff: StaffIdentity, card: CardRef) -> str:
    return make_ref(settings_of(request).secret_key, staff.staff_id, card, now=utcnow())


async def _card_from_form(request: Request, staff: StaffIdentity) -> CardRef:
    form = await request.form()
    card = read_ref(
        settings_of(request).secret_key, staff.staff_id, field(form, "ref"), now=utcnow()
    )
    if card is None:
        raise DomainError(DeskCode.HANDOVER_ENDED)  # stale or someone else's page
    return card


def _refused(request: Request, staff: StaffIdentity, failure: DomainError) -> Response:
    """Back on the desk's home page, saying why the action was refused."""
    return render(request, "desk/home.html", {"staff": staff, "result": None}, error=failure.code)


def _links_page(
    request: Request, staff: StaffIdentity, done: str | None, failure: DomainError | None = None
) -> Response:
    error = failure.code if failure else None
    return render(request, "desk/links.html", {"staff": staff, "done": done}, error=error)


async def home(request: Request) -> Response:
    staff = await require_staff(request)
    settings = settings_of(request)
    result = None
    handover_token = request.cookies.get(cookie_name(settings, HANDOVER_COOKIE))
    if handover_token:  # the screen came back: its outcome, shown once (the cookie goes)
        result = await handovers.handover_result(settings.secret_key, handover_token)
    context = {
        "staff": staff,
        "result": result,
        "result_ref": _ref(request, staff, CardRef(result.patron_id)) if result else None,
    }
    response = render(request, "desk/home.html", context)
    if handover_token:
        delete_desk_cookie(request, response, HANDOVER_COOKIE)
    return response


async def new_card(request: Request) -> Response:
    staff = await require_staff(request)
    settings = settings_of(request)
    now = utcnow()
    try:
        parsed = parse_new_card(
            await request.form(), locales=settings.locales, today=local_date(now, settings.timezone)
        )
        made = await services.onboard(
            settings.secret_key,
            staff,
            parsed.card,
            born_on=parsed.born_on,
            locale=parsed.locale,
            guardian=parsed.guardian,
            now=now,
            timezone=settings.timezone,
            ils=library_system(request),
        )
    except DomainError as failure:
        return _refused(request, staff, failure)
    card = CardRef(made.patron_id, made.guardian_id, made.guardian_is_new, Purpose.NEW_CARD)
    return render(
        request,
        "desk/card_created.html",
        {"staff": staff, "ref": _ref(request, staff, card), "made": made},
    )


async def handover(request: Request) -> Response:
    """The screen goes to the patron: the staff session ends here, and the desk is reachable
    again only by signing in again."""
    staff = await require_staff(request)
    card = await _card_from_form(request, staff)
    settings = settings_of(request)
    try:
        handed = await handovers.begin_handover(
            settings.secret_key,
            staff,
            card.patron_id,
            guardian_id=card.guardian_id,
            guardian_is_new=card.guardian_is_new,
            purpose=card.purpose,
            now=utcnow(),
            pin_chosen_here=library_system(request) is None,
            idle_minutes=settings.handover_idle_minutes,
            timezone=settings.timezone,
            staff_token=request.cookies.get(cookie_name(settings, STAFF_COOKIE)),
        )
    except DomainError as failure:
        return _refused(request, staff, failure)
    response = redirect_to(request, "handover.screen")
    await end_patron_session(request, response)
    delete_desk_cookie(request, response, STAFF_COOKIE)
    set_desk_cookie(request, response, HANDOVER_COOKIE, handed.token)
    locale = handed.locale
    if locale in settings.locales:
        # The handed-over screen opens in the patron's language (the switcher stays).
        set_cookie(request, response, language_cookie(settings), locale, max_age=None)
    return response


async def setup_slip(request: Request) -> Response:
    staff = await require_staff(request)
    if library_system(request) is not None:
        return _refused(request, staff, DomainError(DeskCode.PIN_AT_LIBRARY_SYSTEM))
    card = await _card_from_form(request, staff)
    settings = settings_of(request)
    form = await request.form()
    # The guardian's slip only for a guardian card made in this visit.
    for_guardian = field(form, "for") == "guardian" and card.guardian_is_new
    patron_id = card.guardian_id if for_guardian and card.guardian_id else card.patron_id
    try:
        new = await services.setup_slip(
            settings.secret_key,
            staff,
            patron_id,
            now=utcnow(),
            setup_code_hours=settings.setup_code_hours,
        )
    except DomainError as failure:
        return _refused(request, staff, failure)
    locale = await services.patron_locale(patron_id)
    with i18n.use_locale(locale if locale in settings.locales else i18n.current_locale()):
        return render(request, "desk/setup_slip.html", {"new": new})


def _client_host(request: Request) -> str | None:
    return request.client.host if request.client else None


async def _lookup_context(request: Request, staff: StaffIdentity) -> dict[str, object]:
    """What every look-up page shows besides the card: whether sign-in from the desk's own
    network is held (a library's public network is usually the desk's too)."""
    settings = settings_of(request)
    held = await services.network_held(
        settings.secret_key,
        _client_host(request),
        attempts=settings.signin_attempts,
        window_seconds=settings.signin_window_seconds,
        now=utcnow(),
    )
    return {"staff": staff, "found": None, "network_held": held}


async def lookup_form(request: Request) -> Response:
    staff = await require_staff(request)
    return render(request, "desk/lookup.html", await _lookup_context(request, staff))


async def lookup(request: Request) -> Response:
    staff = await require_staff(request)
    settings = settings_of(request)
    card = field(await request.form(), "card")
    context = await _lookup_context(request, staff)
    try:
        found = await services.look_up(
            settings.secret_key,
            staff,
            card,
            limits=services.PinLimits(
                settings.signin_attempts,
                settings.signin_window_seconds,
                settings.pin_guesses_per_day,
                settings.pin_guesses_before_hold,
            ),
            now=utcnow(),
            timezone=settings.timezone,
        )
    except DomainError as failure:
        return render(request, "desk/lookup.html", context, error=failure.code)
    ref = _ref(request, staff, CardRef(found.patron_id, throttle_key=found.throttle_key))
    return render(request, "desk/lookup.html", {**context, "found": found, "ref": ref})


async def unlock(request: Request) -> Response:
    staff = await require_staff(request)
    card = await _card_from_form(request, staff)
    await services.unlock(
        settings_of(request).secret_key, staff, card.patron_id, card.throttle_key, now=utcnow()
    )
    return render(request, "desk/done.html", {"staff": staff, "done": "unlocked"})


async def unlock_network(request: Request) -> Response:
    """Staff lift the hold on sign-ins from the desk's own network (after a spray of wrong
    cards from it); audited. Only their own network: the one the request comes from."""
    staff = await require_staff(request)
    await services.unlock_network(
        settings_of(request).secret_key, staff, _client_host(request), now=utcnow()
    )
    return render(request, "desk/done.html", {"staff": staff, "done": "network_unlocked"})


async def reset_pin(request: Request) -> Response:
    staff = await require_staff(request)
    if library_system(request) is not None:  # the PIN is the library system's to reset
        return _refused(request, staff, DomainError(DeskCode.PIN_AT_LIBRARY_SYSTEM))
    card = await _card_from_form(request, staff)
    await services.reset_pin(
        settings_of(request).secret_key, staff, card.patron_id, card.throttle_key, now=utcnow()
    )
    return render(
        request,
        "desk/pin_reset.html",
        {
            "staff": staff,
            "ref": _ref(request, staff, CardRef(card.patron_id, purpose=Purpose.PIN_RESET)),
        },
    )


async def links_form(request: Request) -> Response:
    staff = await require_staff(request)
    return _links_page(request, staff, None)


async def link(request: Request) -> Response:
    staff = await require_staff(request)
    settings = settings_of(request)
    form = await request.form()
    try:
        await services.link_guardian(
            settings.secret_key,
            staff,
            field(form, "guardian_card"),
            field(form, "child_card"),
            field(form, "label"),
            identity_checked=checked(form, "identity_checked"),
            now=utcnow(),
            timezone=settings.timezone,
        )
    except DomainError as failure:
        return _links_page(request, staff, None, failure)
    return _links_page(request, staff, "linked")


async def unlink(request: Request) -> Response:
    staff = await require_staff(request)
    settings = settings_of(request)
    form = await request.form()
    try:
        await services.unlink_guardian(
            settings.secret_key,
            staff,
            field(form, "guardian_card"),
            field(form, "child_card"),
            field(form, "reason"),
            identity_checked=checked(form, "identity_checked"),
            now=utcnow(),
        )
    except DomainError as failure:
        return _links_page(request, staff, None, failure)
    return _links_page(request, staff, "unlinked")


async def welcome_sheet(request: Request) -> Response:
    """How to sign in online and where to change choices, in the patron's language. Holds
    nothing about the patron: no card, no PIN, no choice."""
    await require_staff(request)
    locale = request.path_params["locale"]
    if locale not in settings_of(request).locales:
        raise HTTPException(status_code=404)
    with i18n.use_locale(locale):
        return render(request, "desk/welcome_sheet.html")


routes = [
    Route("/desk", home, methods=["GET"], name="desk.home"),
    Route("/desk/cards", new_card, methods=["POST"], name="desk.new_card"),
    Route("/desk/handover", handover, methods=["POST"], name="desk.handover"),
    Route("/desk/setup-slip", setup_slip, methods=["POST"], name="desk.setup_slip"),
    Route("/desk/lookup", lookup_form, methods=["GET"], name="desk.lookup_form"),
    Route("/desk/lookup", lookup, methods=["POST"], name="desk.lookup"),
    Route("/desk/unlock", unlock, methods=["POST"], name="desk.unlock"),
    Route("/desk/unlock-network", unlock_network, methods=["POST"], name="desk.unlock_network"),
    Route("/desk/reset-pin", reset_pin, methods=["POST"], name="desk.reset_pin"),
    Route("/desk/links", links_form, methods=["GET"], name="desk.links_form"),
    Route("/desk/links", link, methods=["POST"], name="desk.link"),
    Route("/desk/links/end", unlink, methods=["POST"], name="desk.unlink"),
    Route(f"/desk/welcome/{LOCALE}", welcome_sheet, methods=["GET"], name="desk.welcome"),
]
