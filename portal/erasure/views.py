"""The two portal-native services a patron uses directly: reading history and saved lists.
Both sit behind the consent gate: without a current consent the patron meets the notice."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal.consent.policy import Status
from portal.consent.state import status_of_store
from portal.consent.views import gate
from portal.erasure import services
from portal.http import redirect_to, require_patron, settings_of, utcnow
from portal.messages import message_for
from portal.minors.policy import local_date
from portal.patrons.forms import field
from portal.templating import render


async def _gated(request: Request, store: str) -> tuple[int, Response | None]:
    patron = require_patron(request)
    service, status = await status_of_store(patron.patron_id, store)
    if service is None:
        raise HTTPException(status_code=404)
    if status is not Status.ON:
        return patron.patron_id, await gate(request, service.key)
    return patron.patron_id, None


async def history(request: Request) -> Response:
    patron_id, notice = await _gated(request, "reading_history")
    if notice is not None:
        return notice
    entries = await services.reading_history(patron_id)
    return render(
        request,
        "erasure/history.html",
        {"entries": entries, "demo": settings_of(request).dev_mode},
    )


async def demo_loan(request: Request) -> Response:
    """Development mode only: stands in for the library system handing over a checkout."""
    if not settings_of(request).dev_mode:
        raise HTTPException(status_code=404)
    patron = require_patron(request)
    tz = settings_of(request).timezone
    title = field(await request.form(), "title") or "The Left Hand of Darkness"
    try:
        await services.record_loans(
            patron.patron_id,
            [services.Loan(title=title, author="", borrowed_on=local_date(utcnow(), tz))],
            now=utcnow(),
        )
    except services.NoCurrentConsent:
        return await gate(request, "reading_history", error="no_current_consent", status_code=409)
    return redirect_to(request, "erasure.history")


async def lists(request: Request, *, error: str | None = None, status_code: int = 200) -> Response:
    patron_id, notice = await _gated(request, "saved_lists")
    if notice is not None:
        return notice
    saved = await services.saved_lists(patron_id)
    return render(
        request,
        "erasure/lists.html",
        {"lists": saved, "error": message_for(error) if error else None},
        status_code=status_code,
    )


async def create_list(request: Request) -> Response:
    patron = require_patron(request)
    name = field(await request.form(), "name")
    if not name:
        return await lists(request, error="list_name_missing", status_code=400)
    try:
        await services.create_list(patron.patron_id, name, now=utcnow())
    except services.NoCurrentConsent:
        return await lists(request)  # shows the notice: the service is off
    return redirect_to(request, "erasure.lists")


async def add_item(request: Request) -> Response:
    patron = require_patron(request)
    form = await request.form()
    title, list_id = field(form, "title"), field(form, "list_id")
    if not title:
        return await lists(request, error="title_missing", status_code=400)
    try:
        await services.add_to_list(
            patron.patron_id, int(list_id) if list_id.isdigit() else 0, title, now=utcnow()
        )
    except services.NoCurrentConsent:
        return await lists(request)
    except services.NotFound:
        return await lists(request, error="not_found", status_code=404)
    return redirect_to(request, "erasure.lists")


async def delete_list(request: Request) -> Response:
    patron = require_patron(request)
    list_id = field(await request.form(), "list_id")
    try:
        await services.delete_list(patron.patron_id, int(list_id) if list_id.isdigit() else 0)
    except services.NotFound:
        return await lists(request, error="not_found", status_code=404)
    return redirect_to(request, "erasure.lists")


routes = [
    Route("/reading-history", history, methods=["GET"], name="erasure.history"),
    Route("/reading-history/demo-loan", demo_loan, methods=["POST"], name="erasure.demo_loan"),
    Route("/saved-lists", lists, methods=["GET"], name="erasure.lists"),
    Route("/saved-lists", create_list, methods=["POST"], name="erasure.create_list"),
    Route("/saved-lists/items", add_item, methods=["POST"], name="erasure.add_item"),
    Route("/saved-lists/delete", delete_list, methods=["POST"], name="erasure.delete_list"),
]
