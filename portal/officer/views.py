"""The privacy officer's pages: the consent report (aggregate, with differential privacy),
promises kept, the catalog published from the browser, the register of outside requests
with its transparency summary, and the data inventory. Every page is behind the
privacy-officer role, and every view and act is in the staff audit trail."""

from __future__ import annotations

import csv
import io

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from portal.catalog.parsing import parse_catalog
from portal.catalog.policy import NOTICE_FIELDS, CatalogError
from portal.catalog.publishing import (
    Change,
    PublishedMeanwhile,
    latest_publication,
    preview_publication,
)
from portal.catalog.services import check_endpoints, endpoint_rules
from portal.clock import local_date, utcnow
from portal.errors import DomainError, OfficerCode
from portal.ledger import checkpoints
from portal.officer import publishing, services
from portal.officer import register as outside_register
from portal.officer.forms import (
    REQUEST_FIELDS,
    catalog_file,
    long_text,
    new_entry_key,
    parse_decision,
    parse_outside_request,
    typed_request,
)
from portal.officer.inventory import INVENTORY
from portal.officer.policy import (
    SMALL_CELL,
    SUMMARY_DECISIONS,
    Instrument,
    RequestDecision,
    RequestingBody,
)
from portal.outbox.keys import SecretsError, require_secrets
from portal.staff import audit
from portal.staff.access import require_staff
from portal.staff.policy import AuditAction, Role
from portal.staff.services import StaffIdentity
from portal.stores.registry import KEYS as STORE_KEYS
from portal.web.problems import N_
from portal.web.rendering import render
from portal.web.requests import field, number_field, number_text, redirect_to, settings_of

# What the register's values are called on its pages (translated when shown).
LABELS: dict[str, dict[str, str]] = {
    "body": {
        RequestingBody.LAW_ENFORCEMENT: N_("Law enforcement"),
        RequestingBody.COURT: N_("Court"),
        RequestingBody.GOVERNMENT_AGENCY: N_("Other government agency"),
        RequestingBody.OTHER: N_("Other"),
    },
    "instrument": {
        Instrument.SUBPOENA: N_("Subpoena"),
        Instrument.COURT_ORDER: N_("Court order"),
        Instrument.SEARCH_WARRANT: N_("Search warrant"),
        Instrument.NATIONAL_SECURITY_LETTER: N_("National security letter"),
        Instrument.INFORMAL_REQUEST: N_("Informal request (no legal instrument)"),
        Instrument.OTHER: N_("Other"),
    },
    "decision": {
        RequestDecision.REFUSED: N_("Refused"),
        RequestDecision.DISCLOSED_IN_PART: N_("Disclosed in part"),
        RequestDecision.DISCLOSED: N_("Disclosed"),
        RequestDecision.NO_RECORDS: N_("No records held"),
        RequestDecision.PENDING: N_("Pending"),
        RequestDecision.WITHDRAWN: N_("Withdrawn by the requester"),
    },
}


async def _officer(request: Request, action: AuditAction | None = None) -> StaffIdentity:
    staff = await require_staff(request, Role.PRIVACY_OFFICER)
    if action is not None:
        await audit.append(staff, action, now=utcnow())
    return staff


def _page(request: Request, template: str, staff: StaffIdentity, **context: object) -> Response:
    error = context.pop("failure", None)
    return render(
        request,
        template,
        {"staff": staff, "small_cell": SMALL_CELL, "labels": LABELS, "problems": [], **context},
        error=error.code if isinstance(error, DomainError) else None,
    )


async def report(request: Request) -> Response:
    staff = await _officer(request, AuditAction.REPORT_READ)
    now = utcnow()
    today = local_date(now, settings_of(request).timezone)
    return _page(
        request,
        "officer/report.html",
        staff,
        report=await services.consent_report(now=now, today=today),
    )


async def promises(request: Request) -> Response:
    staff = await _officer(request, AuditAction.PROMISES_READ)
    now = utcnow()
    kept = await services.promises(now=now, today=local_date(now, settings_of(request).timezone))
    return _page(
        request,
        "officer/promises.html",
        staff,
        kept=kept,
        in_process=settings_of(request).delivery_in_process,
    )


# --- the catalog ---------------------------------------------------------------------------


def _normalised(text: str) -> str:
    # A browser sends a form's line breaks as CRLF: the text is hashed with LF only, so the
    # preview's hash and the publication's are of the same text.
    return text.replace("\r\n", "\n").replace("\r", "\n")


async def catalog_form(request: Request) -> Response:
    staff = await _officer(request, AuditAction.CATALOG_FORM_OPENED)
    return _page(request, "officer/catalog.html", staff)


async def catalog_preview(request: Request) -> Response:
    staff = await _officer(request)
    settings = settings_of(request)
    try:
        async with request.form() as form:
            text = _normalised(await catalog_file(form))
    except DomainError as failure:
        return _page(request, "officer/catalog.html", staff, failure=failure)
    await audit.append(
        staff,
        AuditAction.CATALOG_PREVIEWED,
        now=utcnow(),
        detail={"source_hash": publishing.source_hash(text)},
    )
    try:
        catalog = parse_catalog(text, settings.locales, STORE_KEYS)
        require_secrets(settings, [system.key for system in catalog.systems])
        await check_endpoints(catalog.systems, endpoint_rules(settings))
        previews = await preview_publication(catalog)
    except CatalogError as error:
        return _page(request, "officer/catalog.html", staff, problems=error.problems)
    except SecretsError as error:
        return _page(request, "officer/catalog.html", staff, problems=[str(error)])
    latest = await latest_publication()
    based_on = latest[0] if latest else 0
    return _page(
        request,
        "officer/preview.html",
        staff,
        previews=[preview for preview in previews if preview.change is not Change.UNCHANGED],
        unchanged=[preview.key for preview in previews if preview.change is Change.UNCHANGED],
        already=latest is not None and latest[1] == publishing.source_hash(text),
        fields=NOTICE_FIELDS,
        text=text,
        token=publishing.preview_token(settings.secret_key, staff.staff_id, based_on, text),
        changes=Change,
    )


async def catalog_publish(request: Request) -> Response:
    staff = await _officer(request)
    settings = settings_of(request)
    form = await request.form()
    raw = form.get("catalog_text")
    text = _normalised(raw if isinstance(raw, str) else "")
    based_on = publishing.read_preview_token(
        settings.secret_key, staff.staff_id, field(form, "token"), text
    )
    if based_on is None:
        return _page(
            request, "officer/catalog.html", staff, failure=DomainError(OfficerCode.PREVIEW_INVALID)
        )
    try:
        catalog = parse_catalog(text, settings.locales, STORE_KEYS)
        require_secrets(settings, [system.key for system in catalog.systems])
        await check_endpoints(catalog.systems, endpoint_rules(settings))
        await publishing.publish(catalog, text, now=utcnow(), based_on=based_on, staff=staff)
    except CatalogError as error:
        return _page(request, "officer/catalog.html", staff, problems=error.problems)
    except SecretsError as error:
        return _page(request, "officer/catalog.html", staff, problems=[str(error)])
    except PublishedMeanwhile as meanwhile:
        code = (
            OfficerCode.ALREADY_PUBLISHED
            if meanwhile.source_hash == publishing.source_hash(text)
            else OfficerCode.PUBLISHED_MEANWHILE
        )
        return _page(request, "officer/catalog.html", staff, failure=DomainError(code))
    return redirect_to(request, "officer.report")


# --- the register of outside requests ------------------------------------------------------


def _register_page(
    request: Request,
    staff: StaffIdentity,
    entries: list[outside_register.OutsideRequestView],
    typed: dict[str, str] | None = None,
    deciding: dict[str, object] | None = None,
    **extra: object,
) -> Response:
    """`typed`: the new request's form as it was sent; `deciding`: the decision form of one
    entry as it was sent (its "request", "decision" and "disclosed"), when it was refused."""
    return _page(
        request,
        "officer/requests.html",
        staff,
        entries=entries,
        bodies=list(RequestingBody),
        instruments=list(Instrument),
        decisions=list(RequestDecision),
        today=local_date(utcnow(), settings_of(request).timezone),
        entry_key=new_entry_key(),
        typed=typed or dict.fromkeys(REQUEST_FIELDS, ""),
        deciding=deciding,
        **extra,
    )


async def register(request: Request) -> Response:
    staff = await _officer(request, AuditAction.REGISTER_READ)
    return _register_page(request, staff, await outside_register.outside_requests())


async def record_request(request: Request) -> Response:
    staff = await _officer(request)
    settings = settings_of(request)
    now = utcnow()
    form = await request.form()
    try:
        parsed = parse_outside_request(form, today=local_date(now, settings.timezone))
        new = outside_register.NewOutsideRequest(
            received_on=parsed.received_on,
            requesting_body=parsed.requesting_body,
            body_name=parsed.body_name,
            instrument=parsed.instrument,
            reference=parsed.reference,
            asked=parsed.asked,
            decision=parsed.decision,
            disclosed=parsed.disclosed,
            card=parsed.card,
            entry_key=parsed.entry_key,
        )
        # Sent twice, it is recorded once: the register shows it either way.
        await outside_register.record_outside_request(settings.secret_key, new, staff, now=now)
    except DomainError as failure:
        await audit.append(staff, AuditAction.REGISTER_READ, now=now)
        return _register_page(
            request,
            staff,
            await outside_register.outside_requests(),
            failure=failure,
            typed=typed_request(form),
        )
    return redirect_to(request, "officer.requests")


async def decide_request(request: Request) -> Response:
    staff = await _officer(request)
    form = await request.form()
    request_id = number_field(form, "request")
    try:
        decision, disclosed = parse_decision(form)
        decided = (
            await outside_register.decide_outside_request(
                settings_of(request).secret_key,
                request_id,
                decision,
                disclosed,
                staff,
                now=utcnow(),
            )
            if request_id is not None
            else outside_register.Decided.UNKNOWN
        )
    except DomainError as failure:
        await audit.append(staff, AuditAction.REGISTER_READ, now=utcnow())
        # The refusal is shown at the entry's own form, with what was typed there.
        deciding: dict[str, object] = {"request": request_id, "decision": field(form, "decision")}
        deciding["disclosed"] = long_text(form, "disclosed")
        return _register_page(
            request,
            staff,
            await outside_register.outside_requests(),
            failure=failure,
            deciding=deciding,
        )
    if decided is outside_register.Decided.UNKNOWN:
        raise HTTPException(status_code=404)
    # Decided now, or already (the register shows the decision that stands).
    return redirect_to(request, "officer.requests")


def _year(request: Request) -> int:
    year = number_text(request.query_params.get("year", ""), 9999)
    this_year = local_date(utcnow(), settings_of(request).timezone).year
    return year if year is not None and 1990 <= year <= this_year else this_year


async def transparency(request: Request) -> Response:
    staff = await _officer(request, AuditAction.TRANSPARENCY_READ)
    year = _year(request)
    return _page(
        request,
        "officer/transparency.html",
        staff,
        year=year,
        rows=await outside_register.transparency_summary(year),
        decisions=SUMMARY_DECISIONS,
        checkpoint=await checkpoints.latest(),
    )


async def transparency_csv(request: Request) -> Response:
    staff = await _officer(request, AuditAction.TRANSPARENCY_READ)
    del staff
    year = _year(request)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["year", "requesting_body", *SUMMARY_DECISIONS, "total"])
    for body, cells, total in await outside_register.transparency_summary(year):
        writer.writerow(
            [
                year,
                body,
                *(f"<{SMALL_CELL}" if cell.suppressed else cell.value for cell in cells),
                f"<{SMALL_CELL}" if total.suppressed else total.value,
            ]
        )
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="transparency-{year}.csv"'},
    )


async def inventory(request: Request) -> Response:
    staff = await _officer(request, AuditAction.INVENTORY_READ)
    return _page(request, "officer/inventory.html", staff, tables=INVENTORY)


routes = [
    Route("/officer/report", report, methods=["GET"], name="officer.report"),
    Route("/officer/promises", promises, methods=["GET"], name="officer.promises"),
    Route("/officer/catalog", catalog_form, methods=["GET"], name="officer.catalog"),
    Route(
        "/officer/catalog/preview",
        catalog_preview,
        methods=["POST"],
        name="officer.catalog_preview",
    ),
    Route(
        "/officer/catalog/publish",
        catalog_publish,
        methods=["POST"],
        name="officer.catalog_publish",
    ),
    Route("/officer/requests", register, methods=["GET"], name="officer.requests"),
    Route("/officer/requests", record_request, methods=["POST"], name="officer.record_request"),
    Route(
        "/officer/requests/decision",
        decide_request,
        methods=["POST"],
        name="officer.decide_request",
    ),
    Route("/officer/transparency", transparency, methods=["GET"], name="officer.transparency"),
    Route(
        "/officer/transparency.csv",
        transparency_csv,
        methods=["GET"],
        name="officer.transparency_csv",
    ),
    Route("/officer/inventory", inventory, methods=["GET"], name="officer.inventory"),
]
