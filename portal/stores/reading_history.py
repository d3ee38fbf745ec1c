"""Store `reading_history`: what the library system reported the patron borrowed, kept only
while the patron has consented (ALA: borrowing history is opt-in and off by default).

Rows arrive from the library system (the integration API) or, in development mode, from a
demo button; they are erased in the withdrawal's transaction and past `retention_days`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from tortoise import fields
from tortoise.expressions import Q
from tortoise.models import Model
from tortoise.transactions import in_transaction

from portal.clock import local_date, utcnow
from portal.consent.policy import ConsentError
from portal.consent.services import require_current_consent
from portal.patrons.access import require_patron
from portal.patrons.models import Patron
from portal.stores.base import Cutoff, Retained, Store, StorePage, open_store, refused
from portal.web.rendering import render
from portal.web.requests import field, redirect_to, settings_of

KEY = "reading_history"


class HistoryEntry(Model):
    """Store `reading_history`: what the library system reported the patron borrowed."""

    id = fields.IntField(primary_key=True)
    patron: fields.ForeignKeyRelation[Patron] = fields.ForeignKeyField(
        "models.Patron", related_name="history", on_delete=fields.RESTRICT, db_index=True
    )
    title = fields.CharField(max_length=500)
    author = fields.CharField(max_length=300, default="")
    borrowed_on = fields.DateField()
    recorded_at = fields.DatetimeField()
    # The integration API client that handed the loan over (its id in `api_client`, from its
    # signed access token); none for the development-mode demo button.
    recorded_by_client = fields.IntField(null=True)

    patron_id: int

    class Meta:
        table = "history_entry"
        ordering = ("-borrowed_on", "-id")


@dataclass(frozen=True)
class Loan:
    title: str
    author: str
    borrowed_on: date


# --- use cases ---------------------------------------------------------------------------


async def record_loans(
    patron_id: int, loans: list[Loan], *, now: datetime, recorded_by_client: int | None = None
) -> int:
    """What the library system hands over (`recorded_by_client`: which one); refused whole
    without a current consent."""
    async with in_transaction():
        await require_current_consent(patron_id, KEY)
        await HistoryEntry.bulk_create(
            [
                HistoryEntry(
                    patron_id=patron_id,
                    title=loan.title,
                    author=loan.author,
                    borrowed_on=loan.borrowed_on,
                    recorded_at=now,
                    recorded_by_client=recorded_by_client,
                )
                for loan in loans
            ]
        )
    return len(loans)


async def history(patron_id: int) -> list[Loan]:
    return [
        Loan(title=entry.title, author=entry.author, borrowed_on=entry.borrowed_on)
        for entry in await HistoryEntry.filter(patron_id=patron_id)
    ]


async def export(patron_id: int) -> list[dict[str, Any]]:
    return [
        {
            "title": entry.title,
            "author": entry.author,
            "borrowed_on": entry.borrowed_on.isoformat(),
            "recorded_at": entry.recorded_at.isoformat(timespec="seconds"),
        }
        for entry in await HistoryEntry.filter(patron_id=patron_id)
    ]


async def erase(patron_id: int) -> int:
    deleted: int = await HistoryEntry.filter(patron_id=patron_id).delete()
    return deleted


async def expire(cutoff: Cutoff) -> Counter[int]:
    # A loan's age counts from the day it was borrowed, and never from later than the day it
    # was recorded: an entry whose loan date was wrong (in the future) still expires on time.
    expired = HistoryEntry.filter(Q(borrowed_on__lt=cutoff.day) | Q(recorded_at__lt=cutoff.moment))
    counts = Counter(row["patron_id"] for row in await expired.values("patron_id"))
    await expired.delete()
    return counts


async def retained(cutoff: Cutoff) -> Retained:
    """By the rule of `expire`: an entry's age counts from the earlier of its two dates."""
    overdue = await HistoryEntry.filter(
        Q(borrowed_on__lt=cutoff.day) | Q(recorded_at__lt=cutoff.moment)
    ).count()
    first_loan = await HistoryEntry.all().order_by("borrowed_on").first()
    first_recorded = await HistoryEntry.all().order_by("recorded_at").first()
    days = [
        day
        for day in (
            first_loan.borrowed_on if first_loan else None,
            first_recorded.recorded_at.date() if first_recorded else None,
        )
        if day is not None
    ]
    return Retained(oldest=min(days) if days else None, overdue=overdue)


# --- pages -------------------------------------------------------------------------------


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


STORE = Store(
    key=KEY,
    models=(HistoryEntry,),
    erase=erase,
    expire=expire,
    export=export,
    retained=retained,
    page="stores.reading_history",
    routes=(
        Route("/reading-history", page, methods=["GET"], name="stores.reading_history"),
        Route(
            "/reading-history/demo-loan",
            demo_loan,
            methods=["POST"],
            name="stores.reading_history.demo_loan",
        ),
    ),
)
