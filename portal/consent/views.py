"""My privacy, the notice gate in front of every service, decisions and the patron's record."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal.catalog.services import forget_published_catalog, published_catalog
from portal.consent import services
from portal.consent.forms import parse_decision
from portal.consent.ledger import PATRON_ONLINE
from portal.consent.policy import Status
from portal.consent.suspension import CAME_OF_AGE
from portal.http import (
    is_htmx,
    redirect_to,
    require_patron,
    settings_of,
    signed_in_patron,
    utcnow,
    visitor_age,
)
from portal.i18n import current_locale
from portal.messages import message_for
from portal.minors import services as minors
from portal.minors.policy import AgeBand
from portal.patrons.services import SignedIn
from portal.templating import render

# Where a service that holds portal-native data is used, once it is on.
STORE_PAGES = {"reading_history": "erasure.history", "saved_lists": "erasure.lists"}


async def home(request: Request) -> Response:
    if signed_in_patron(request):
        return redirect_to(request, "consent.privacy")
    return redirect_to(request, "patrons.signin_form")


async def privacy(request: Request) -> Response:
    patron = require_patron(request)
    return render(request, "consent/privacy.html", await privacy_context(request, patron))


async def privacy_context(request: Request, patron: SignedIn) -> dict[str, object]:
    age = await visitor_age(request, patron)
    overview = await services.overview(
        patron.patron_id, current_locale(), age=age, states=patron.consent_states
    )
    minor = age.band is not AgeBand.ADULT
    return {
        "services": overview,
        "store_pages": STORE_PAGES,
        "flash": request.query_params.get("done"),
        "band": age.band.value,
        "guardians": await minors.guardian_count(patron.patron_id) if minor else 0,
        "shares": patron.shares_with_guardians,
        "now_in_charge": any(
            state.granted and state.suspension_reason == CAME_OF_AGE
            for state in patron.consent_states.values()
        ),
    }


async def gate(
    request: Request, key: str, *, error: str | None = None, status_code: int = 200
) -> Response:
    """The notice and two equal choices; shown before any service is used."""
    patron = require_patron(request)
    try:
        view = await services.service_view(
            patron.patron_id, key, current_locale(), age=await visitor_age(request, patron)
        )
    except services.ConsentError as failure:
        if failure.code == "notice_locale":
            # Never show a notice in a language the patron did not choose.
            return render(
                request,
                "errors/error.html",
                {"status": 503, "message": message_for(failure.code)},
                status_code=503,
            )
        raise HTTPException(status_code=404, detail=failure.code) from None
    return render(
        request,
        "consent/notice.html",
        {
            "view": view,
            "error": message_for(error) if error else None,
            "store_page": STORE_PAGES.get(view.service.store or ""),
            "Status": Status,
        },
        status_code=status_code,
    )


async def notice(request: Request) -> Response:
    return await gate(request, request.path_params["key"])


async def decide(request: Request) -> Response:
    patron = require_patron(request)
    key = request.path_params["key"]
    form = parse_decision(await request.form())
    if form is None:
        return await gate(request, key, error="notice_required", status_code=400)
    try:
        outcome = await services.decide(
            patron.patron_id,
            key,
            form.decision,
            notice_version_id=form.notice_version_id,
            expected_revision=form.expected_revision,
            now=utcnow(),
            timezone=settings_of(request).timezone,
        )
    except services.ConsentError as failure:
        if failure.code == "unknown_service":
            raise HTTPException(status_code=404, detail=failure.code) from None
        if failure.code == "stale_notice":
            forget_published_catalog()  # a publish happened: show the new notice everywhere
        refused = failure.code in ("guardian_required", "not_offered")
        return await gate(request, key, error=failure.code, status_code=403 if refused else 409)
    view = await services.service_view(
        patron.patron_id, key, current_locale(), age=await visitor_age(request, patron)
    )
    return render(
        request,
        "consent/_outcome.html" if is_htmx(request) else "consent/decided.html",
        {
            "view": view,
            "outcome": outcome,
            "store_page": STORE_PAGES.get(view.service.store or ""),
            "Status": Status,
        },
    )


async def everything_off(request: Request) -> Response:
    patron = require_patron(request)
    await services.turn_everything_off(patron.patron_id, now=utcnow(), party=PATRON_ONLINE)
    response = redirect_to(request, "consent.privacy")
    response.headers["location"] += "?done=all_off"
    return response


async def record(request: Request) -> Response:
    patron = require_patron(request)
    events = await services.ledger(patron.patron_id)
    catalog = await published_catalog()
    locale = current_locale()
    titles = {
        service.id: notice.texts["title"]
        for service in catalog.services
        if (notice := catalog.notice(service.id, locale))
    }
    return render(request, "consent/record.html", {"events": events, "titles": titles})


routes = [
    Route("/", home, methods=["GET"], name="consent.home"),
    Route("/privacy", privacy, methods=["GET"], name="consent.privacy"),
    Route("/privacy/everything-off", everything_off, methods=["POST"], name="consent.all_off"),
    Route("/privacy/record", record, methods=["GET"], name="consent.record"),
    Route("/services/{key:str}", notice, methods=["GET"], name="consent.notice"),
    Route("/services/{key:str}/decision", decide, methods=["POST"], name="consent.decide"),
]
