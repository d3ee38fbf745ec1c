"""The page of store `reading_history`, behind the consent gate, and the development-mode
button that stands in for the library system."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal.clock import local_date, utcnow
from portal.consent.policy import ConsentError
from portal.patrons.access import require_patron
from portal.stores.pages import StorePage, open_store, refused
from portal.stores.reading_history.services import KEY, Loan, history, record_loans
from portal.web.rendering import render
from portal.web.requests import field, redirect_to, settings_of


async def page(request: Request) -> Response:
    visited = await open_store(request, KEY)
    if not isinstance(visited, StorePage):
        return visited
    return render(
        request,
        "stores/history.html",
        {
            "entries": await history(visited.patron.patron_id),
            "service_key": visited.service.key,
            "demo": settings_of(request).dev_mode,
        },
    )


async def demo_loan(request: Request) -> Response:
    """Development mode only: stands in for the library system handing over a checkout."""
    settings = settings_of(request)
    if not settings.dev_mode:
        raise HTTPException(status_code=404)
    patron = require_patron(request)
    title = field(await request.form(), "title") or "The Left Hand of Darkness"
    now = utcnow()
    try:
        await record_loans(
            patron.patron_id,
            [Loan(title=title, author="", borrowed_on=local_date(now, settings.timezone))],
            now=now,
        )
    except ConsentError as failure:
        return await refused(request, KEY, failure)
    return redirect_to(request, "stores.reading_history")


routes = [
    Route("/reading-history", page, methods=["GET"], name="stores.reading_history"),
    Route(
        "/reading-history/demo-loan",
        demo_loan,
        methods=["POST"],
        name="stores.reading_history.demo_loan",
    ),
]
