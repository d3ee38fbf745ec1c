"""Saying yes or no to a notice, and turning everything off."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal.catalog.services import forget_published_catalog, published_catalog
from portal.clock import utcnow
from portal.consent import reads
from portal.consent.policy import ConsentError, Status
from portal.consent.reads import deletions_of
from portal.consent.views import gate
from portal.contacts.policy import ContactError, shown
from portal.contacts.services import contacts_of
from portal.decisions import services
from portal.decisions.forms import left_as, parse_decision, parse_messages, parse_onward
from portal.errors import ConsentCode, DomainError, ErrorCode
from portal.i18n import current_locale
from portal.ledger.services import PATRON_ONLINE
from portal.patrons.access import require_patron, visitor_age
from portal.patrons.services import Identity
from portal.stores.registry import PAGES as SERVICE_PAGES
from portal.web.paths import GROUP, KEY
from portal.web.rendering import render
from portal.web.requests import is_htmx, redirect_to, settings_of


async def decide(request: Request) -> Response:
    patron = require_patron(request)
    key = request.path_params["key"]
    try:
        raw = await request.form()
        form = parse_decision(raw)
        outcome = await services.decide(
            patron.patron_id,
            key,
            form.decision,
            notice_version_id=form.notice_version_id,
            expected_revision=form.expected_revision,
            locale=current_locale(),
            now=utcnow(),
            timezone=settings_of(request).timezone,
        )
    except (ConsentError, ContactError) as failure:
        return await _refused(request, patron, key, failure.code)
    if outcome.view is None:
        return redirect_to(request, "consent.privacy")
    if outcome.view.service.choice is not None:
        response = redirect_to(request, "decisions.messages", group=outcome.view.service.group)
        response.headers["location"] += f"?saved={int(outcome.changed)}"
        return response
    # The notice stood in front of a service page: after a yes, on to it. Only a known
    # service page's route name is accepted, never a URL (no open redirect).
    onward = parse_onward(raw, tuple(SERVICE_PAGES.values()))
    if onward is not None and outcome.status is Status.ON:
        response = redirect_to(request, onward)
        if is_htmx(request):
            # htmx loads the page itself on HX-Redirect (no script of ours, under the CSP).
            return Response(headers={"HX-Redirect": response.headers["location"]})
        return response
    deletions = outcome.deletions
    if deletions is None:
        deletions = (
            await deletions_of(patron.patron_id, outcome.view.service.id)
            if outcome.status is Status.WITHDRAWN
            else []
        )
    return render(
        request,
        "consent/_outcome.html" if is_htmx(request) else "consent/decided.html",
        {
            "view": outcome.view,
            "outcome": outcome,
            "Status": Status,
            "deletions": deletions,
            "oob": is_htmx(request),
        },
    )


def settle_refusal(code: ErrorCode) -> None:
    """Before a refused decision's page comes back: a service that does not exist is not
    found; a stale notice means a publication came, so every page shows the new one."""
    if code is ConsentCode.UNKNOWN_SERVICE:
        raise HTTPException(status_code=404, detail=code)
    if code is ConsentCode.STALE_NOTICE:
        forget_published_catalog()


async def _refused(request: Request, patron: Identity, key: str, code: ErrorCode) -> Response:
    """The page again, with why nothing was decided: the notice, or for one choice of a
    messaging service its grid."""
    settle_refusal(code)
    service = (await published_catalog()).by_key.get(key)
    if service is not None and service.choice is not None:
        return await _messages_page(request, patron, service.choice.group, error=code)
    return await gate(request, key, error=code)


async def everything_off(request: Request) -> Response:
    patron = require_patron(request)
    await services.turn_everything_off(patron.patron_id, now=utcnow(), party=PATRON_ONLINE)
    response = redirect_to(request, "consent.privacy")
    response.headers["location"] += "?done=all_off"
    return response


async def messages(request: Request) -> Response:
    patron = require_patron(request)
    saved = request.query_params.get("saved", "")
    return await _messages_page(
        request,
        patron,
        request.path_params["group"],
        saved=int(saved) if saved.isascii() and saved.isdigit() and len(saved) < 4 else None,
    )


async def choose_messages(request: Request) -> Response:
    patron = require_patron(request)
    group = request.path_params["group"]
    settings = settings_of(request)
    raw = await request.form()
    try:
        form = parse_messages(raw)
        changed = await services.choose_messages(
            patron.patron_id,
            group,
            form.cells,
            form.contacts,
            locale=current_locale(),
            now=utcnow(),
            timezone=settings.timezone,
            phone_region=settings.phone_region,
        )
    except DomainError as failure:
        settle_refusal(failure.code)
        # Nothing was changed: the page comes back as the patron left it, with the reason.
        return await _messages_page(
            request,
            patron,
            group,
            error=failure.code,
            **left_as(raw),
        )
    response = redirect_to(request, "decisions.messages", group=group)
    response.headers["location"] += f"?saved={len(changed)}"
    return response


async def _messages_page(
    request: Request,
    patron: Identity,
    group: str,
    *,
    saved: int | None = None,
    error: ErrorCode | None = None,
    ticked: set[str] | None = None,
    entered: dict[str, str] | None = None,
) -> Response:
    try:
        grid = await reads.message_grid(
            patron.patron_id, group, current_locale(), await visitor_age(request, patron)
        )
    except ConsentError as failure:
        raise HTTPException(status_code=404, detail=failure.code) from None
    kept = (await contacts_of([patron.patron_id])).get(patron.patron_id, {})
    return render(
        request,
        "messages/choose.html",
        {
            "grid": grid,
            "contacts": {channel: shown(value) for channel, value in kept.items()},
            "entered": entered or {},
            "ticked": ticked,
            "saved": saved,
        },
        error=error,
    )


routes = [
    Route(f"/services/{KEY}/decision", decide, methods=["POST"], name="decisions.decide"),
    Route("/privacy/everything-off", everything_off, methods=["POST"], name="decisions.all_off"),
    Route(f"/messages/{GROUP}", messages, methods=["GET"], name="decisions.messages"),
    Route(
        f"/messages/{GROUP}", choose_messages, methods=["POST"], name="decisions.choose_messages"
    ),
]
