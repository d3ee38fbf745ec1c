"""The privacy officer's pages through the in-process client: the catalog uploaded,
previewed in every enabled language and published once; the report; the register of
outside requests and its summary; the inventory; each view in the staff audit trail."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from datetime import timedelta

import pytest

from portal.catalog.models import NoticeVersion
from portal.clock import local_date
from portal.consent.policy import Decision
from portal.officer import services
from portal.officer.models import JobRun, OutsideRequest, ReportRelease
from portal.officer.policy import JobName, RunOutcome
from portal.settings import Settings
from portal.staff import audit
from portal.staff.models import StaffAuditEvent
from portal.staff.policy import AuditAction, Role
from tests.desk import make_staff, staff_sign_in
from tests.factories import SECRET, decides, make_patron, now, publish, standard_catalog
from tests.web import hidden, visible_text

LOCALES = ("en", "ar", "fil")


@pytest.fixture
def portal_settings(settings: Settings) -> Settings:
    return replace(settings, locales=LOCALES)


async def _officer(portal) -> None:  # type: ignore[no-untyped-def]
    await staff_sign_in(portal.client, await make_staff(Role.PRIVACY_OFFICER))


async def _actions() -> list[str]:
    return [event.action for event in await StaffAuditEvent.all().order_by("id")]


async def _preview(portal, text: str):  # type: ignore[no-untyped-def]
    return await portal.client.post(
        "/officer/catalog/preview",
        files={"catalog": ("catalog.toml", text.encode(), "text/plain")},
    )


async def test_an_officer_previews_a_material_change_and_publishes_it_once(portal) -> None:
    await publish(standard_catalog(locales=LOCALES), locales=LOCALES)
    patrons = [await make_patron() for _ in range(11)]
    for patron in patrons:
        await decides(patron.id, "reading_history", Decision.YES)
    await _officer(portal)
    assert (await portal.client.get("/officer/catalog")).status_code == 200
    changed = standard_catalog(locales=LOCALES, retention_days=900, wording=" (revised)")
    preview = await _preview(portal, changed.replace("\n", "\r\n"))
    assert preview.status_code == 200, preview.text
    seen = visible_text(preview.text)
    assert "reading_history : material change" in seen
    assert "900 (longer)" in seen
    assert "Privacy notice in English" in seen
    assert "Privacy notice in العربية" in seen
    assert "reading_history summary ar (revised)" in seen  # the new text beside the old
    assert "reading_history summary ar" in seen
    # The child's version too: its wording tells the terms, so it changed with them.
    child = preview.text.split('id="child-diff-reading_history-en"')[1].split("</table>")[0]
    assert "Privacy notice in <bdi>English</bdi>, the version for children" in child
    assert "365 days)" in child
    assert "<mark>" in child
    assert "900 days)" in child
    assert "Unchanged: saved_lists , newsletter" in seen
    form = {
        "catalog_text": html.unescape(hidden(preview.text, "catalog_text")),
        "token": hidden(preview.text, "token"),
    }
    published = await portal.client.post("/officer/catalog/publish", data=form)
    assert published.status_code == 303
    report = await portal.client.get(published.headers["location"])
    # The month's figures, drawn now (after the change): 11 paused, plus noise.
    released = await ReportRelease.get(service="reading_history")
    row = report.text.split('id="service-reading_history"')[1].split("</tr>")[0]
    assert f'<td class="paused">about <bdi>{max(released.paused, 0)}</bdi></td>' in row
    meaning = visible_text(report.text).split("Each count is close to the true number")[1]
    assert f"19 times out of 20 the true number is within {released.margin} of" in meaning
    again = await portal.client.post("/officer/catalog/publish", data=form)
    assert again.status_code == 409
    assert "already published" in visible_text(again.text)
    actions = await _actions()
    assert actions.count(AuditAction.CATALOG_PUBLISHED) == 1
    assert AuditAction.CATALOG_FORM_OPENED in actions
    assert AuditAction.CATALOG_PREVIEWED in actions
    assert AuditAction.REPORT_READ in actions


async def test_a_preview_cannot_publish_a_different_text(portal) -> None:
    await publish(standard_catalog(locales=LOCALES), locales=LOCALES)
    await _officer(portal)
    preview = await _preview(portal, standard_catalog(locales=LOCALES, retention_days=900))
    tampered = standard_catalog(locales=LOCALES, retention_days=9000)
    refused = await portal.client.post(
        "/officer/catalog/publish",
        data={"catalog_text": tampered, "token": hidden(preview.text, "token")},
    )
    assert refused.status_code == 400
    assert AuditAction.CATALOG_PUBLISHED not in await _actions()


async def test_a_preview_made_before_another_publication_publishes_nothing(portal) -> None:
    await publish(standard_catalog(locales=LOCALES), locales=LOCALES)
    await _officer(portal)
    preview = await _preview(portal, standard_catalog(locales=LOCALES, retention_days=900))
    await publish(standard_catalog(locales=LOCALES, wording=" (other)"), locales=LOCALES)
    stale = await portal.client.post(
        "/officer/catalog/publish",
        data={
            "catalog_text": html.unescape(hidden(preview.text, "catalog_text")),
            "token": hidden(preview.text, "token"),
        },
    )
    assert stale.status_code == 409
    assert "published by someone else" in visible_text(stale.text)


async def test_every_problem_in_the_file_is_listed_and_nothing_is_published(portal) -> None:
    await publish(standard_catalog(locales=LOCALES), locales=LOCALES)
    await _officer(portal)
    broken = standard_catalog(locales=("en",)).replace("retention_days = 365", "retention_days = 0")
    page = await _preview(portal, broken)
    seen = visible_text(page.text)
    assert "Nothing was published" in seen
    assert "notice missing in locale(s) ar" in seen
    assert "'retention_days' must be a positive number of days" in seen
    assert 'name="token"' not in page.text


async def test_outside_requests_keep_only_a_coded_reference_and_every_view_is_audited(
    portal,
) -> None:
    await publish(standard_catalog(locales=LOCALES), locales=LOCALES)
    patron = await make_patron()
    await _officer(portal)
    listed = await portal.client.get("/officer/requests")
    assert listed.status_code == 200
    recorded = await portal.client.post(
        "/officer/requests",
        data={
            "received_on": (now() - timedelta(days=2)).date().isoformat(),
            "requesting_body": "court",
            "body_name": "District court",
            "instrument": "court_order",
            "reference": "CV-2026-114",
            "asked": "Loans of one card\nfrom March",
            "decision": "refused",
            "disclosed": "",
            "card": patron.card,
        },
    )
    assert recorded.status_code == 303
    stored = await OutsideRequest.get()
    assert stored.patron_key == audit.patron_key(SECRET, patron.id)
    assert stored.asked == "Loans of one card\nfrom March"
    page = await portal.client.get("/officer/requests")
    assert "CV-2026-114" in page.text
    assert patron.card not in page.text
    actions = await _actions()
    assert actions.count(AuditAction.REGISTER_READ) == 2
    assert AuditAction.OUTSIDE_REQUEST_RECORDED in actions
    summary = await portal.client.get("/officer/transparency")
    assert "fewer than 10" in visible_text(summary.text)
    csv = await portal.client.get(f"/officer/transparency.csv?year={now().year}")
    assert csv.headers["content-type"].startswith("text/csv")
    assert f"{now().year},court,<10" in csv.text
    assert actions.count(AuditAction.TRANSPARENCY_READ) == 0
    assert (await _actions()).count(AuditAction.TRANSPARENCY_READ) == 2


async def test_the_register_form_sent_twice_records_one_request(portal) -> None:
    await publish(standard_catalog(locales=LOCALES), locales=LOCALES)
    await _officer(portal)
    page = await portal.client.get("/officer/requests")
    entry = re.search(r'name="entry" value="([^"]+)"', page.text)
    assert entry is not None
    form = {
        "entry": entry.group(1),
        # The library's day, not UTC's: a request cannot be received tomorrow.
        "received_on": local_date(now(), portal.app.state.settings.timezone).isoformat(),
        "requesting_body": "law_enforcement",
        "body_name": "County sheriff",
        "instrument": "subpoena",
        "reference": "S-77",
        "asked": "Loans of one card",
        "decision": "pending",
        "disclosed": "",
        "card": "",
    }
    for _ in range(2):
        sent = await portal.client.post("/officer/requests", data=form)
        assert sent.status_code == 303
    assert await OutsideRequest.filter(reference="S-77").count() == 1
    assert (await _actions()).count(AuditAction.OUTSIDE_REQUEST_RECORDED) == 1
    again = await portal.client.get("/officer/requests")
    assert f'value="{entry.group(1)}"' not in again.text  # each showing has its own key


async def test_a_card_number_typed_into_the_text_is_refused(portal) -> None:
    """The register keeps a patron only as a coded reference: a card typed into the free
    text would be kept as it is, for the life of the database."""
    await publish(standard_catalog(locales=LOCALES), locales=LOCALES)
    patron = await make_patron()
    await _officer(portal)
    printed = " ".join(patron.card[i : i + 4] for i in range(0, len(patron.card), 4))
    form = {
        # The library's day, not UTC's: a request cannot be received tomorrow.
        "received_on": local_date(now(), portal.app.state.settings.timezone).isoformat(),
        "requesting_body": "law_enforcement",
        "body_name": "County sheriff",
        "instrument": "subpoena",
        "reference": "S-78",
        "asked": f"Loans of card {printed} since March",
        "decision": "pending",
        "disclosed": "",
        "card": "",
    }
    refused = await portal.client.post("/officer/requests", data=form)
    assert refused.status_code == 400
    assert "its own field" in refused.text
    assert await OutsideRequest.all().count() == 0
    form["asked"], form["card"] = "Loans of the card named", patron.card
    assert (await portal.client.post("/officer/requests", data=form)).status_code == 303
    stored = await OutsideRequest.get()
    decided = await portal.client.post(
        "/officer/requests/decision",
        data={
            "request": str(stored.id),
            "decision": "disclosed",
            "disclosed": f"Loans of {patron.card}",
        },
    )
    assert decided.status_code == 400
    await stored.refresh_from_db()
    assert (stored.decision, stored.disclosed) == ("pending", "")
    # Refused at the entry's own form, with what was typed there.
    entry_form = decided.text.split(f'name="request" value="{stored.id}"')[1].split("</form>")[0]
    assert f'id="decision-error-{stored.id}"' in entry_form
    assert f">Loans of {patron.card}</textarea>" in entry_form
    assert '<option value="disclosed" selected>' in entry_form


async def test_the_preview_shows_filipino_notices_published_under_the_old_code(portal) -> None:
    """Notice versions published before Filipino's code became `fil` keep `tl`: the preview
    still shows them as what is published now."""
    await publish(standard_catalog(locales=LOCALES), locales=LOCALES)
    await NoticeVersion.filter(locale="fil").update(locale="tl")
    await _officer(portal)
    preview = await _preview(portal, standard_catalog(locales=LOCALES, wording=" (revised)"))
    assert preview.status_code == 200, preview.text
    table = preview.text.split('id="diff-reading_history-fil"')[1].split("</table>")[0]
    published_now = [row.split("<td")[1] for row in table.split("<tr")[2:]]
    assert all("reading_history" in cell for cell in published_now), published_now


async def test_an_incomplete_request_is_refused_and_nothing_is_recorded(portal) -> None:
    await publish(standard_catalog(locales=LOCALES), locales=LOCALES)
    await _officer(portal)
    refused = await portal.client.post(
        "/officer/requests",
        data={
            "received_on": "yesterday",
            "body_name": "County <sheriff>",
            "instrument": "subpoena",
            "asked": "Loans of\none card",
        },
    )
    assert refused.status_code == 400
    assert await OutsideRequest.all().count() == 0
    # What was typed is there to correct, not to type again.
    assert 'value="County &lt;sheriff&gt;"' in refused.text
    assert '<option value="subpoena" selected>' in refused.text
    assert ">Loans of\none card</textarea>" in refused.text


async def test_the_inventory_page_lists_every_table(portal) -> None:
    await publish(standard_catalog(locales=LOCALES), locales=LOCALES)
    await _officer(portal)
    page = await portal.client.get("/officer/inventory")
    assert "outside_request" in page.text
    assert "card_lookup" in page.text
    assert AuditAction.INVENTORY_READ in await _actions()


async def test_only_officers_see_the_officer_pages_in_the_staff_menu(portal) -> None:
    await publish(standard_catalog(locales=LOCALES), locales=LOCALES)
    await staff_sign_in(portal.client, await make_staff(Role.DESK))
    desk = await portal.client.get("/desk")
    assert "/officer/report" not in desk.text
    await portal.client.post("/staff/signout")
    await staff_sign_in(portal.client, await make_staff(Role.DESK, Role.PRIVACY_OFFICER))
    both = await portal.client.get("/desk")
    assert "/officer/report" in both.text
    assert "/officer/catalog" in both.text


async def test_promises_kept_warns_about_jobs_that_never_ran(portal) -> None:
    await publish(standard_catalog(locales=LOCALES), locales=LOCALES)
    async with services.recorded(JobName.APPLY_RETENTION, now) as run:
        run.counts["rows_deleted"] = 3
    await _officer(portal)
    page = visible_text((await portal.client.get("/officer/promises")).text)
    retention = page.split("portal apply-retention")[1].split("portal compact-erased")[0]
    assert "Warning" not in retention
    assert "succeeded" in retention
    assert "rows_deleted 3" in retention
    deliver = page.split("portal deliver")[1]
    assert "Warning: this job has never run successfully." in deliver
    assert AuditAction.PROMISES_READ in await _actions()


async def test_promises_kept_shows_a_running_jobs_progress(portal) -> None:
    await publish(standard_catalog(locales=LOCALES), locales=LOCALES)
    # What a job writes after its batches: 2,000 of 5,000 in 100 seconds.
    await JobRun.create(
        job="coming-of-age",
        started_at=now() - timedelta(seconds=100),
        outcome=RunOutcome.RUNNING,
        counts={},
        done=2000,
        batches=2,
        total=5000,
        progress_at=now(),
    )
    await JobRun.create(
        job="apply-retention",
        started_at=now() - timedelta(seconds=10),
        outcome=RunOutcome.RUNNING,
        counts={},
        done=1000,
        batches=1,
        progress_at=now(),
    )
    await JobRun.create(  # killed after its third batch, seven hours ago
        job="expire-consents",
        started_at=now() - timedelta(hours=7),
        outcome=RunOutcome.RUNNING,
        counts={},
        done=3000,
        batches=3,
        total=4000,
        progress_at=now() - timedelta(hours=7),
    )
    await _officer(portal)
    page = visible_text((await portal.client.get("/officer/promises")).text)
    expiry = page.split("portal expire-consents")[1].split("portal apply-retention")[0]
    assert "did not finish" in expiry
    assert "stopped after 3,000" in expiry
    assert "the next run does the rest" in expiry
    coming = page.split("portal coming-of-age")[1]
    assert "2,000 of 5,000 done so far, 20 a second, about 2 minutes left" in coming
    retention = page.split("portal apply-retention")[1].split("portal compact-erased")[0]
    assert "1,000 done so far, 100 a second; how many are left is not known" in retention


async def test_a_pending_request_is_decided_later_and_the_change_is_audited(portal) -> None:
    await publish(standard_catalog(locales=LOCALES), locales=LOCALES)
    await _officer(portal)
    await portal.client.post(
        "/officer/requests",
        data={
            "received_on": (now() - timedelta(days=3)).date().isoformat(),
            "requesting_body": "law_enforcement",
            "body_name": "City police",
            "instrument": "informal_request",
            "reference": "phone call",
            "asked": "Who borrowed a title",
            "decision": "pending",
        },
    )
    stored = await OutsideRequest.get()
    page = await portal.client.get("/officer/requests")
    assert 'action="/officer/requests/decision"' in page.text
    decided = await portal.client.post(
        "/officer/requests/decision",
        data={"request": str(stored.id), "decision": "refused", "disclosed": ""},
    )
    assert decided.status_code == 303
    assert (await OutsideRequest.get()).decision == "refused"
    assert await OutsideRequest.all().count() == 1
    assert AuditAction.OUTSIDE_REQUEST_DECIDED in await _actions()
    unknown = await portal.client.post(
        "/officer/requests/decision", data={"request": "999", "decision": "refused"}
    )
    assert unknown.status_code == 404
    again = await portal.client.post(  # a double submit, or a second officer's stale page
        "/officer/requests/decision",
        data={"request": str(stored.id), "decision": "disclosed", "disclosed": "everything"},
    )
    assert again.status_code == 303
    assert ((await OutsideRequest.get()).decision, (await OutsideRequest.get()).disclosed) == (
        "refused",
        "",
    )
    assert (await _actions()).count(AuditAction.OUTSIDE_REQUEST_DECIDED) == 1


async def test_promises_kept_formats_retention_periods_as_receipts_do(portal) -> None:
    """One number filter: "1,095 days" here as on every receipt, not "1095 days"."""
    await publish(standard_catalog(locales=LOCALES, retention_days=1095), locales=LOCALES)
    await _officer(portal)
    page = visible_text((await portal.client.get("/officer/promises")).text)
    assert "1,095 days" in page
