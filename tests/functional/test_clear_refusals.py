"""Every input the second attack review answered with a server error now gets a clear 4xx in
the portal's error shape: JSON `{"error", "message"}` on the API, the error page elsewhere."""

from __future__ import annotations

import base64

from portal.consent.policy import Decision
from portal.staff.policy import Role
from tests.api import bearer, make_client
from tests.desk import make_staff, staff_sign_in
from tests.factories import decides, make_patron, publish, standard_catalog, system_table
from tests.web import sign_in

ILS = system_table("ils", "https://ils.library.example/hooks")


def _api_error(answer, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    assert answer.status_code == status, answer.text[:300]
    body = answer.json()
    assert body["error"] == code, body
    assert body["message"], body


async def test_a_basic_header_that_is_not_utf8_authenticates_no_client(portal) -> None:
    await publish(standard_catalog())
    await make_client()
    for raw in (b"\xff\xfe:\x80", b"caf\xe9:secret", b"no-colon-\xc3"):
        answer = await portal.client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            headers={"authorization": "Basic " + base64.b64encode(raw).decode()},
        )
        _api_error(answer, 401, "invalid_client")
    latin = await portal.client.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        headers={"authorization": b"Basic \xe9t\xe9"},
    )
    _api_error(latin, 401, "invalid_client")


async def test_digits_int_does_not_read_are_a_query_error(portal) -> None:
    await publish(standard_catalog() + ILS)
    headers = await bearer(system="ils")
    for query in ("after=₀₁₂", "limit=²", "after=٣", "limit=" + "9" * 5000):
        answer = await portal.client.get(f"/api/v1/deletions?{query}", headers=headers)
        _api_error(answer, 400, "query_invalid")


async def test_an_ack_id_of_any_length_or_alphabet_is_unknown(portal) -> None:
    await publish(standard_catalog() + ILS)
    headers = await bearer(system="ils")
    for message_id in ("m" * 41, "4111111111111111" * 4, "msg_\u00e9t\u00e9", "x%0Ay"):
        answer = await portal.client.post(f"/api/v1/deletions/{message_id}/ack", headers=headers)
        _api_error(answer, 404, "deletion_unknown")


async def test_a_notice_revision_past_the_database_range_is_not_found(portal) -> None:
    await publish(standard_catalog())
    for revision in (2**31, 2**63, 10**30):
        answer = await portal.client.get(f"/notices/newsletter/v{revision}/en")
        assert answer.status_code == 404, answer.text[:300]
        assert "<html" in answer.text


async def test_a_notice_key_of_any_length_is_not_found(portal) -> None:
    await publish(standard_catalog())
    for key in ("n" * 41, "newsletter" * 10, "n\u00e9ws"):
        for path in (f"/notices/{key}", f"/notices/{key}/v1/en", f"/services/{key}"):
            answer = await portal.client.get(path)
            assert answer.status_code in (303, 404), (path, answer.status_code)


async def test_a_receipt_reference_not_in_ascii_is_not_found(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    await decides(patron.id, "newsletter", Decision.YES)
    await sign_in(portal.client, patron)
    for reference in ("\u00e9" * 24, "٣" * 24, "r" * 300):
        for path in (f"/privacy/receipts/{reference}", f"/privacy/receipts/{reference}/download"):
            answer = await portal.client.get(path)
            assert answer.status_code == 404, (path, answer.status_code)


async def test_a_trail_page_link_nobody_made_is_a_clear_refusal(portal) -> None:
    await staff_sign_in(portal.client, await make_staff(Role.PRIVACY_OFFICER))
    for before in ("9" * 30, "²", "٣", str(2**63)):
        answer = await portal.client.get("/staff/trail", params={"before": before})
        assert answer.status_code == 400, (before, answer.status_code)
        assert "start from the first page" in answer.text
    assert (await portal.client.get("/staff/trail", params={"before": "12"})).status_code == 200


async def test_a_catalog_with_an_integer_too_long_to_read_is_a_catalog_problem(portal) -> None:
    await publish(standard_catalog())
    await staff_sign_in(portal.client, await make_staff(Role.PRIVACY_OFFICER))
    text = standard_catalog() + "\nhuge = " + "9" * 4400 + "\n"
    answer = await portal.client.post(
        "/officer/catalog/preview",
        files={"catalog": ("catalog.toml", text.encode(), "text/plain")},
    )
    assert answer.status_code == 200, answer.status_code
    assert "not valid TOML" in answer.text


async def test_a_preview_token_or_desk_reference_of_odd_digits_is_refused_clearly(portal) -> None:
    await publish(standard_catalog())
    await staff_sign_in(portal.client, await make_staff(Role.PRIVACY_OFFICER, Role.DESK))
    text = standard_catalog()
    for token in ("².x.y", "\u00e9", "1." + "\u00e9" * 64):
        answer = await portal.client.post(
            "/officer/catalog/publish", data={"catalog_text": text, "token": token}
        )
        assert answer.status_code in (400, 409), (token, answer.status_code)
    for ref in ("1.0.0.-.p.9999999999.\u00e9", "².0.0.-.p.9.x", "1.٣.0.-.p.9.x"):
        for path in ("/desk/handover", "/desk/setup-slip", "/desk/reset-pin", "/desk/unlock"):
            answer = await portal.client.post(path, data={"ref": ref, "purpose": "p"})
            assert answer.status_code < 500, (path, ref, answer.status_code)
    answer = await portal.client.get("/officer/transparency", params={"year": "²"})
    assert answer.status_code == 200
