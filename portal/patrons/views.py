"""Who is signed in: sign-in, sign-out, the patron setting their own PIN with a one-time
code, and the language switcher. Guesses are counted per card (a window, a day, a budget
before a hold) and per client network before they are checked (portal.credentials.throttle)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal.clock import utcnow
from portal.credentials import throttle
from portal.errors import DomainError, PatronCode
from portal.locale_codes import canonical
from portal.patrons import services
from portal.patrons.access import (
    count_pin_guess,
    library_system,
    pin_guess_failed,
    refusal,
    require_patron,
    signed_in_patron,
)
from portal.patrons.ils import IlsUnreachable, authenticate_with_ils
from portal.web.rendering import render
from portal.web.requests import field, redirect_to, safe_next, set_cookie, settings_of
from portal.web.visit import (
    HANDOVER_COOKIE,
    STAFF_COOKIE,
    host_cookie,
    language_cookie,
    session_cookie,
)


@dataclass(frozen=True)
class SignIn:
    card: str
    pin: str


@dataclass(frozen=True)
class PinSetup:
    card: str
    code: str
    pin: str


def parse_signin(form: FormData) -> SignIn:
    card, pin = field(form, "card"), field(form, "pin")
    if not card or not pin:
        raise DomainError(PatronCode.SIGNIN_MISSING)
    return SignIn(card, pin)


def parse_pin_setup(form: FormData) -> PinSetup:
    card, code = field(form, "card"), field(form, "code")
    pin, again = field(form, "pin"), field(form, "pin_again")
    if not card or not code or not pin:
        raise DomainError(PatronCode.SETUP_MISSING)
    if pin != again:
        raise DomainError(PatronCode.PIN_MISMATCH)
    return PinSetup(card, code, pin)


async def signin_form(request: Request) -> Response:
    if signed_in_patron(request):
        return redirect_to(request, "consent.privacy")
    return render(request, "patrons/signin.html")


async def signin(request: Request) -> Response:
    try:
        parsed = parse_signin(await request.form())
    except DomainError as failure:
        return render(request, "patrons/signin.html", error=failure.code)
    settings = settings_of(request)
    # Counted before the PIN is checked, by the portal or by the library system alike.
    reservation = await count_pin_guess(request, parsed.card)
    if reservation is None:
        return render(request, "patrons/signin.html", error=await refusal(request, parsed.card))
    try:
        patron_id = await _authenticate(request, parsed)
    except services.PatronError as failure:
        return render(
            request,
            "patrons/signin.html",
            error=await _failed(request, parsed, reservation, failure),
        )
    await throttle.refund(reservation)
    at_the_desk = _desk_screen(request)
    if at_the_desk is not None:
        # The desk's screen ignores patron sessions (portal.web.visit): a session started
        # here would only send the patron back to this form, with nothing said.
        back = {"back_to_handover": at_the_desk is PatronCode.SIGNIN_DURING_HANDOVER}
        return render(request, "patrons/signin.html", back, error=at_the_desk)
    token = await services.start_session(
        settings.secret_key,
        patron_id,
        now=utcnow(),
        minutes=settings.session_minutes,
        hours=settings.session_hours,
    )
    chosen = request.cookies.get(language_cookie(settings))
    if chosen in settings.locales:
        await services.set_locale(patron_id, chosen)  # the latest explicit choice wins
    response = redirect_to(request, "consent.privacy")
    set_cookie(request, response, session_cookie(settings), token, max_age=None)
    return response


async def _failed(
    request: Request, parsed: SignIn, reservation: throttle.Reservation, failure: DomainError
) -> PatronCode:
    """What a sign-in that did not succeed says, once its guess is settled."""
    if isinstance(failure, IlsUnreachable):
        if not failure.asked:
            await throttle.refund(reservation)  # the PIN never left: not a guess
        return PatronCode.ILS_UNAVAILABLE
    await pin_guess_failed(request, parsed.card, reservation)
    if reservation.past_held_network:  # answered as the hold is (throttle.reserve)
        return PatronCode.SIGNIN_THROTTLED
    return PatronCode.SIGNIN_FAILED


def _desk_screen(request: Request) -> PatronCode | None:
    """Why a patron cannot sign in on this screen: handed over at the desk, or a staff
    member's (the desk's cookies, as portal.web.visit reads them)."""
    settings = settings_of(request)
    if host_cookie(settings, HANDOVER_COOKIE) in request.cookies:
        return PatronCode.SIGNIN_DURING_HANDOVER
    if host_cookie(settings, STAFF_COOKIE) in request.cookies:
        return PatronCode.SIGNIN_AT_STAFF_SCREEN
    return None


async def _authenticate(request: Request, parsed: SignIn) -> int:
    """By the PIN the patron set in the portal, or by the library system's (over SIP2)."""
    settings = settings_of(request)
    ils = library_system(request)
    if ils is None:
        return await services.authenticate(settings.secret_key, parsed.card, parsed.pin)
    return await authenticate_with_ils(
        ils, settings.secret_key, parsed.card, parsed.pin, now=utcnow()
    )


async def signout(request: Request) -> Response:
    settings = settings_of(request)
    token = request.cookies.get(session_cookie(settings))
    if token:
        await services.end_session(settings.secret_key, token)
    response = redirect_to(request, "patrons.signin_form")
    response.delete_cookie(session_cookie(settings), path="/", secure=settings.https)
    # A shared terminal forgets the language too: the next patron's choice is their own.
    response.delete_cookie(language_cookie(settings), path="/", secure=settings.https)
    return response


async def setup_form(request: Request) -> Response:
    if library_system(request) is not None:
        return render(request, "patrons/pin_at_library.html")
    return render(request, "patrons/setup.html")


async def setup(request: Request) -> Response:
    if library_system(request) is not None:  # no portal PINs: nothing to set up here
        return render(
            request, "patrons/pin_at_library.html", error=PatronCode.PIN_AT_LIBRARY_SYSTEM
        )
    try:
        parsed = parse_pin_setup(await request.form())
    except DomainError as failure:
        return render(request, "patrons/setup.html", error=failure.code)
    settings = settings_of(request)
    reservation = await count_pin_guess(request, parsed.card, setup_code=True)
    if reservation is None:
        return render(request, "patrons/setup.html", error=PatronCode.SIGNIN_THROTTLED)
    try:
        await services.set_pin_with_code(
            settings.secret_key, parsed.card, parsed.code, parsed.pin, now=utcnow()
        )
    except services.PatronError as failure:
        # Past a held network, a failure is answered as the hold is (throttle.reserve).
        held = reservation.past_held_network
        return render(
            request,
            "patrons/setup.html",
            error=PatronCode.SIGNIN_THROTTLED if held else failure.code,
        )
    except DomainError as rejected:  # the new PIN itself: nothing was guessed
        await throttle.refund(reservation)
        return render(request, "patrons/setup.html", error=rejected.code)
    await throttle.refund(reservation)
    return render(request, "patrons/setup_done.html")


async def choose_language(request: Request) -> Response:
    form = await request.form()
    settings = settings_of(request)
    chosen = canonical(field(form, "locale"))  # a page or bookmark from before may say "tl"
    target = safe_next(field(form, "next"), request.url_for("consent.home").path)
    response = RedirectResponse(target, status_code=303)
    if chosen in settings.locales:
        # Purpose: show the portal in the chosen language; kept for one year at most.
        set_cookie(request, response, language_cookie(settings), chosen, max_age=365 * 86_400)
        patron = signed_in_patron(request)
        if patron is not None:
            await services.set_locale(patron.patron_id, chosen)
    return response


async def dismiss_pin_reset(request: Request) -> Response:
    """The patron has read that staff reset their PIN: the notice goes."""
    patron = require_patron(request)
    await services.dismiss_pin_reset_notice(patron.patron_id)
    return redirect_to(request, "consent.privacy")


routes = [
    Route("/signin", signin_form, methods=["GET"], name="patrons.signin_form"),
    Route("/signin", signin, methods=["POST"], name="patrons.signin"),
    Route("/signout", signout, methods=["POST"], name="patrons.signout"),
    Route("/setup-pin", setup_form, methods=["GET"], name="patrons.setup_form"),
    Route("/setup-pin", setup, methods=["POST"], name="patrons.setup"),
    Route("/language", choose_language, methods=["POST"], name="patrons.language"),
    Route(
        "/privacy/pin-reset-notice",
        dismiss_pin_reset,
        methods=["POST"],
        name="patrons.dismiss_pin_reset",
    ),
]
