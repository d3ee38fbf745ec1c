"""My privacy, the notice gate in front of every service, and the patron's consent record.
The decisions themselves are portal.decisions'."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal.catalog.policy import choice_title
from portal.catalog.services import last_titles, published_catalog
from portal.clock import utcnow
from portal.consent import reads
from portal.consent.policy import ConsentError, Status
from portal.errors import ConsentCode, ErrorCode
from portal.i18n import current_locale
from portal.ledger.services import entries
from portal.patrons.access import require_patron, signed_in_patron, visitor_age
from portal.patrons.services import Identity, pin_reset_notice, signin_held_at
from portal.staff.audit import actions_on
from portal.web.paths import KEY
from portal.web.problems import http_status
from portal.web.rendering import error_message, render
from portal.web.requests import redirect_to, settings_of


async def home(request: Request) -> Response:
    if signed_in_patron(request):
        return redirect_to(request, "consent.privacy")
    return redirect_to(request, "patrons.signin_form")


async def privacy(request: Request) -> Response:
    patron = require_patron(request)
    return render(request, "consent/privacy.html", await privacy_context(request, patron))


async def privacy_context(request: Request, patron: Identity) -> dict[str, object]:
    age = await visitor_age(request, patron)
    overview = await reads.privacy_overview(
        patron.patron_id,
        current_locale(),
        age,
        now=utcnow(),
        version=patron.consent_version,
    )
    return {
        "services": overview.listed,
        "flash": request.query_params.get("done"),
        "band": age.band.value,
        "guardians": overview.guardians,
        "guardian_links": overview.guardian_links,
        "shares": patron.shares_with_guardians,
        "now_in_charge": overview.now_in_charge,
        "carried_over": overview.carried_over,
        "pin_reset_at": await pin_reset_notice(patron.patron_id),
    }


async def gate(
    request: Request, key: str, *, error: ErrorCode | None = None, onward: str | None = None
) -> Response:
    """The notice and two equal choices; shown before any service is used, and again with
    the reason when a decision or a use of the service was refused. `onward`: the route name
    of the service page the notice stands in front of, where a yes leads on to."""
    patron = require_patron(request)
    try:
        view = await reads.service_view(
            patron.patron_id, key, current_locale(), await visitor_age(request, patron)
        )
    except ConsentError as failure:
        if failure.code is ConsentCode.NOTICE_LOCALE:
            # Never show a notice in a language the patron did not choose.
            status = http_status(failure.code)
            message = error_message(request, failure.code)
            return render(
                request,
                "errors/error.html",
                {"status": status, "message": message},
                status_code=status,
            )
        raise HTTPException(status_code=404, detail=failure.code) from None
    if view.service.choice is not None:
        # One choice of a messaging service is chosen on its service's grid, with the
        # number or address its channel needs.
        return redirect_to(request, "decisions.messages", group=view.service.choice.group)
    # Turned off: where the deletion stands here and in each connected system.
    deletions = (
        await reads.deletions_of(patron.patron_id, view.service.id)
        if view.status is Status.WITHDRAWN
        else []
    )
    return render(
        request,
        "consent/notice.html",
        {
            "view": view,
            "Status": Status,
            "deletions": deletions,
            "onward": onward,
        },
        error=error,
    )


async def notice(request: Request) -> Response:
    return await gate(request, request.path_params["key"])


async def record(request: Request) -> Response:
    patron = require_patron(request)
    catalog = await published_catalog()
    locale = current_locale()
    titles = {
        service.id: choice_title(notice.texts)
        for service in catalog.services
        if (notice := catalog.notice(service.id, locale))
    }
    events = await entries(patron.patron_id)
    missing = {event.service_id for event in events if event.service_id} - set(titles)
    if missing:
        titles |= await last_titles(sorted(missing), locale)
    channels = {
        service.id: service.choice.channel
        for service in catalog.services
        if service.choice and service.choice.channel
    }
    return render(
        request,
        "consent/record.html",
        {
            "events": events,
            "titles": titles,
            "channels": channels,
            "staff_actions": await actions_on(settings_of(request).secret_key, patron.patron_id),
            "signin_held_at": await signin_held_at(patron.patron_id),
        },
    )


routes = [
    Route("/", home, methods=["GET"], name="consent.home"),
    Route("/privacy", privacy, methods=["GET"], name="consent.privacy"),
    Route("/privacy/record", record, methods=["GET"], name="consent.record"),
    Route(f"/services/{KEY}", notice, methods=["GET"], name="consent.notice"),
]
