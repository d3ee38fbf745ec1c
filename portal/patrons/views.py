"""Sign-in, sign-out, PIN setup with a one-time code, and the language switcher."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from portal.http import (
    redirect_to,
    safe_next,
    set_cookie,
    settings_of,
    signed_in_patron,
    utcnow,
)
from portal.messages import message_for
from portal.patrons import services
from portal.patrons.forms import PinSetup, SignIn, field, parse_pin_setup, parse_signin
from portal.patrons.policy import PinRejected, keyed_hash, normalise_card
from portal.templating import render
from portal.visit import LANGUAGE_COOKIE, SESSION_COOKIE


def _throttle_keys(request: Request, card: str) -> tuple[str, str]:
    secret = settings_of(request).secret_key
    client = request.client.host if request.client else "unknown"
    # Hashed, held in memory only: neither the card nor the address is ever stored.
    return (
        keyed_hash(secret, "throttle-card", normalise_card(card) or card),
        keyed_hash(secret, "throttle-client", client),
    )


def _form_error(request: Request, template: str, code: str, status_code: int) -> Response:
    return render(request, template, {"error": message_for(code)}, status_code=status_code)


async def signin_form(request: Request) -> Response:
    if signed_in_patron(request):
        return redirect_to(request, "consent.privacy")
    return render(request, "patrons/signin.html", {"error": None})


async def signin(request: Request) -> Response:
    parsed = parse_signin(await request.form())
    if not isinstance(parsed, SignIn):
        return _form_error(request, "patrons/signin.html", parsed, 400)
    settings = settings_of(request)
    throttle = request.app.state.signin_throttle
    keys = _throttle_keys(request, parsed.card)
    if throttle.blocked(*keys):
        return _form_error(request, "patrons/signin.html", "signin_throttled", 429)
    try:
        patron_id = await services.authenticate(settings.secret_key, parsed.card, parsed.pin)
    except services.PatronError:
        throttle.record_failure(*keys)
        return _form_error(request, "patrons/signin.html", "signin_failed", 400)
    token = await services.start_session(
        settings.secret_key, patron_id, now=utcnow(), minutes=settings.session_minutes
    )
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in settings.locales:
        await services.set_locale(patron_id, chosen)  # the latest explicit choice wins
    response = redirect_to(request, "consent.privacy")
    set_cookie(request, response, SESSION_COOKIE, token, max_age=None)
    return response


async def signout(request: Request) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await services.end_session(settings_of(request).secret_key, token)
    response = redirect_to(request, "patrons.signin_form")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


async def setup_form(request: Request) -> Response:
    return render(request, "patrons/setup.html", {"error": None})


async def setup(request: Request) -> Response:
    parsed = parse_pin_setup(await request.form())
    if not isinstance(parsed, PinSetup):
        return _form_error(request, "patrons/setup.html", parsed, 400)
    settings = settings_of(request)
    throttle = request.app.state.signin_throttle
    keys = _throttle_keys(request, parsed.card)
    if throttle.blocked(*keys):
        return _form_error(request, "patrons/setup.html", "signin_throttled", 429)
    try:
        await services.set_pin_with_code(
            settings.secret_key, parsed.card, parsed.code, parsed.pin, now=utcnow()
        )
    except PinRejected as rejected:
        return _form_error(request, "patrons/setup.html", rejected.code, 400)
    except services.PatronError as failure:
        throttle.record_failure(*keys)
        return _form_error(request, "patrons/setup.html", failure.code, 400)
    return render(request, "patrons/setup_done.html")


async def choose_language(request: Request) -> Response:
    form = await request.form()
    settings = settings_of(request)
    chosen = field(form, "locale")
    target = safe_next(field(form, "next"), request.url_for("consent.home").path)
    response = RedirectResponse(target, status_code=303)
    if chosen in settings.locales:
        # Purpose: show the portal in the chosen language; kept for one year at most.
        set_cookie(request, response, LANGUAGE_COOKIE, chosen, max_age=365 * 86_400)
        patron = signed_in_patron(request)
        if patron is not None:
            await services.set_locale(patron.patron_id, chosen)
    return response


routes = [
    Route("/signin", signin_form, methods=["GET"], name="patrons.signin_form"),
    Route("/signin", signin, methods=["POST"], name="patrons.signin"),
    Route("/signout", signout, methods=["POST"], name="patrons.signout"),
    Route("/setup-pin", setup_form, methods=["GET"], name="patrons.setup_form"),
    Route("/setup-pin", setup, methods=["POST"], name="patrons.setup"),
    Route("/language", choose_language, methods=["POST"], name="patrons.language"),
]
