"""A patron's copy of their data, signed receipts of their decisions, the public verify page
and the history of every privacy notice, through real HTTP against the running app."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from portal.catalog.models import NoticeVersion
from portal.consent.policy import Decision
from portal.ledger.models import ConsentEvent, EventKind
from portal.minors.services import link_at_desk
from portal.rights.keys import rotate
from portal.settings import Settings
from portal.stores.reading_history import services as reading_history
from portal.stores.saved_lists import services as saved_lists
from tests.factories import (
    SECRET,
    aged,
    decides,
    make_patron,
    now,
    publish,
    standard_catalog,
)
from tests.receipts import b64, receipt_of_last_decision, tamper
from tests.web import choose, sign_in, visible_text

# Not the address the test client uses (it is allowed as a further host name): a receipt's
# links are the configured address whatever a request says.
PUBLIC_URL = "https://privacy.library.example"


@pytest.fixture
def portal_settings(settings: Settings, tmp_path: Path) -> Settings:
    path = tmp_path / "receipt-keys.json"
    rotate(path)
    return replace(
        settings,
        receipt_keys_file=path,
        public_url=PUBLIC_URL,
        allowed_hosts=(*settings.allowed_hosts, "portal.test"),
    )


def _hand_check(receipt: str, jwks: dict[str, object]) -> bool:
    """ES256 by hand with `cryptography`: the raw r||s signature over header.payload."""
    header_part, payload_part, signature_part = receipt.split(".")
    kid = json.loads(b64(header_part))["kid"]
    jwk = next(key for key in jwks["keys"] if key["kid"] == kid)  # type: ignore[attr-defined]
    public = ec.EllipticCurvePublicNumbers(
        int.from_bytes(b64(jwk["x"])), int.from_bytes(b64(jwk["y"])), ec.SECP256R1()
    ).public_key()
    raw = b64(signature_part)
    signature = encode_dss_signature(int.from_bytes(raw[:32]), int.from_bytes(raw[32:]))
    try:
        public.verify(
            signature, f"{header_part}.{payload_part}".encode(), ec.ECDSA(hashes.SHA256())
        )
    except InvalidSignature:
        return False
    return True


async def test_my_data_download_is_a_private_attachment_with_a_schema_version(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    await sign_in(portal.client, patron)
    response = await portal.client.get("/privacy/my-data/download")
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.headers["cache-control"] == "no-store"
    assert response.json()["schema_version"] == 1
    assert patron.card not in response.text


async def test_my_data_holds_profile_choices_record_and_what_each_service_kept(portal) -> None:
    await publish(standard_catalog())
    patron = await make_patron(born_on=aged(40))
    await sign_in(portal.client, patron)
    await choose(portal.client, "saved_lists", "yes")
    await choose(portal.client, "newsletter", "no")
    await saved_lists.create_list(patron.id, "Books for the trip", now=now())
    data = (await portal.client.get("/privacy/my-data/download")).json()
    assert data["profile"]["date_of_birth"] == aged(40).isoformat()
    assert {c["service"]: c["status"] for c in data["consents"]}["saved_lists"] == "on"
    assert [e["event"] for e in data["consent_record"]] == ["given", "refused"]
    assert data["retained_data"]["saved_lists"][0]["name"] == "Books for the trip"
    page = await portal.client.get("/privacy/my-data")
    assert "Books for the trip" in visible_text(page.text)


async def test_a_guardians_copy_names_the_link_but_none_of_the_childs_library_use(portal) -> None:
    await publish(standard_catalog())
    guardian = await make_patron()
    child = await make_patron(born_on=aged(15))  # decides alone; the link stays
    await link_at_desk(SECRET, guardian.card, child.card, "Sam", now=now(), timezone="UTC")
    await decides(child.id, "reading_history", Decision.YES)
    await reading_history.record_loans(
        child.id, [reading_history.Loan("Secret Garden", "", now().date())], now=now()
    )
    await sign_in(portal.client, guardian)
    for path in ("/privacy/my-data/download", "/privacy/my-data"):
        response = await portal.client.get(path)
        assert "Sam" in response.text
        assert "Secret Garden" not in response.text


async def test_a_receipt_carries_the_consent_record_fields_and_verifies_by_hand(portal) -> None:
    await publish(standard_catalog())
    await sign_in(portal.client, await make_patron())
    await choose(portal.client, "newsletter", "no")
    receipt = await receipt_of_last_decision(portal)
    claims = json.loads(b64(receipt.split(".")[1]))
    assert claims["event"] == "refused"
    assert claims["service"]["key"] == "newsletter"
    assert claims["data_categories"] == ["email"]
    assert claims["language"] == "en"
    assert len(claims["notice"]["sha256"]) == 64
    assert (claims["method"], claims["actor"], claims["channel"]) == ("online", "patron", "web")
    jwks = (await portal.client.get("/.well-known/jwks.json")).json()
    assert _hand_check(receipt, jwks)
    assert not _hand_check(tamper(receipt), jwks)


async def test_only_decisions_have_receipts_in_the_record(portal) -> None:
    await publish(standard_catalog())
    await sign_in(portal.client, await make_patron())
    await choose(portal.client, "saved_lists", "yes")
    await choose(portal.client, "saved_lists", "no")  # a withdrawal, and its erasure
    record = (await portal.client.get("/privacy/record")).text
    kinds = [event.kind for event in await ConsentEvent.all()]
    assert EventKind.ERASED in kinds  # a line of the record that is not a decision
    links = record.count('href="/privacy/receipts/')
    assert links == sum(kind in (EventKind.GIVEN, EventKind.WITHDRAWN) for kind in kinds) == 2


async def test_the_verify_page_accepts_a_receipt_and_rejects_an_altered_one(portal) -> None:
    await publish(standard_catalog())
    await sign_in(portal.client, await make_patron())
    await choose(portal.client, "newsletter", "no")
    receipt = await receipt_of_last_decision(portal)
    portal.client.cookies.clear()  # the verify page is public
    valid = await portal.client.post("/receipts/verify", data={"receipt": receipt})
    assert "Valid: the library signed this receipt" in valid.text
    forged = await portal.client.post("/receipts/verify", data={"receipt": tamper(receipt)})
    assert "Not valid" in forged.text
    uploaded = await portal.client.post(
        "/receipts/verify", files={"file": ("receipt.jws", receipt.encode(), "application/jose")}
    )
    assert "Valid: the library signed this receipt" in uploaded.text


async def test_receipts_signed_before_a_key_rotation_still_verify(portal) -> None:
    await publish(standard_catalog())
    await sign_in(portal.client, await make_patron())
    await choose(portal.client, "newsletter", "no")
    old = await receipt_of_last_decision(portal)
    rotate(portal.app.state.settings.receipt_keys_file)
    new = await receipt_of_last_decision(portal)
    jwks = (await portal.client.get("/.well-known/jwks.json")).json()
    assert len(jwks["keys"]) == 2
    assert all("d" not in key for key in jwks["keys"])
    assert json.loads(b64(old.split(".")[0]))["kid"] != json.loads(b64(new.split(".")[0]))["kid"]
    for receipt in (old, new):
        verdict = await portal.client.post("/receipts/verify", data={"receipt": receipt})
        assert "Valid: the library signed this receipt" in verdict.text


async def test_nobody_gets_a_receipt_for_another_patrons_decision(portal) -> None:
    await publish(standard_catalog())
    await sign_in(portal.client, await make_patron())
    await choose(portal.client, "newsletter", "no")
    record = await portal.client.get("/privacy/record")
    event = record.text.split('href="/privacy/receipts/')[1].split('"')[0]
    portal.client.cookies.clear()
    await sign_in(portal.client, await make_patron())
    assert (await portal.client.get(f"/privacy/receipts/{event}")).status_code == 404
    assert (await portal.client.get(f"/privacy/receipts/{event}/download")).status_code == 404


async def test_a_record_entry_leads_to_the_earlier_text_of_a_changed_notice(portal) -> None:
    await publish(standard_catalog())
    await sign_in(portal.client, await make_patron())
    await choose(portal.client, "newsletter", "no")
    await publish(
        standard_catalog()
        .replace('data_categories = ["email"]', 'data_categories = ["email", "phone"]')
        .replace("newsletter summary en", "newsletter summary en, now with texts")
    )
    record = await portal.client.get("/privacy/record")
    link = re.findall(r'href="(/notices/newsletter/v\d+/en)"', record.text)[0]
    earlier = visible_text((await portal.client.get(link)).text)
    assert "newsletter summary en" in earlier
    assert "now with texts" not in earlier
    assert "This is an earlier version" in earlier


async def test_a_childs_record_entry_leads_to_the_childs_version_it_was_shown(portal) -> None:
    await publish(standard_catalog())
    child = await make_patron(born_on=aged(10))
    await sign_in(portal.client, child)
    await choose(portal.client, "newsletter", "no")
    [event] = await ConsentEvent.filter(patron_id=child.id, kind=EventKind.REFUSED)
    record = await portal.client.get("/privacy/record")
    [link] = re.findall(r'href="(/notices/newsletter/v\d+/en\?for=children)"', record.text)
    shown = await portal.client.get(link)
    text = visible_text(shown.text)
    assert "newsletter data en for a child" in text
    assert "This is the version for children" in text
    assert event.notice_hash is not None
    assert event.notice_hash in shown.text  # the fingerprint of the text it was shown
    full = visible_text((await portal.client.get(link.partition("?")[0])).text)
    assert "for a child" not in full


async def test_a_version_published_as_tl_is_found_as_fil(portal) -> None:
    """Versions published before Filipino became "fil" keep their "tl" rows; a record entry
    made since names "fil" and must still reach them."""
    await publish(standard_catalog(("en", "fil")), ("en", "fil"))
    await NoticeVersion.filter(locale="fil").update(locale="tl")
    page = await portal.client.get("/notices/newsletter/v1/fil")
    assert page.status_code == 200
    assert "newsletter summary fil" in visible_text(page.text)


async def test_notice_history_says_which_version_asked_for_a_fresh_yes_and_why(portal) -> None:
    await publish(standard_catalog())
    await publish(standard_catalog(retention_days=900))
    page = await portal.client.get("/notices/reading_history")
    assert page.status_code == 200
    text = visible_text(page.text)
    assert "Version 2 · Current version" in text
    assert "A fresh yes was needed" in text
    assert "What changed: How long we keep it" in text
    assert "First version." in text


async def test_my_data_matches_its_published_json_schema(portal) -> None:
    # jsonschema_rs comes with schemathesis (a dev dependency); Draft 2020-12, as declared.
    import jsonschema_rs  # noqa: PLC0415

    await publish(standard_catalog())
    guardian = await make_patron(born_on=aged(40))
    teen = await make_patron(born_on=aged(15))
    await link_at_desk(SECRET, guardian.card, teen.card, "Sam", now=now(), timezone="UTC")
    await decides(guardian.id, "reading_history", Decision.YES)
    await decides(guardian.id, "saved_lists", Decision.YES)
    await reading_history.record_loans(
        guardian.id, [reading_history.Loan("Beloved", "Toni Morrison", now().date())], now=now()
    )
    list_id = await saved_lists.create_list(guardian.id, "Later", now=now())
    await saved_lists.add_to_list(guardian.id, list_id, "Jazz", now=now())
    await sign_in(portal.client, guardian)
    data = (await portal.client.get("/privacy/my-data/download")).json()
    schema = json.loads((Path(__file__).parents[2] / "deploy" / "my-data.schema.json").read_text())
    errors = [error.message for error in jsonschema_rs.validator_for(schema).iter_errors(data)]
    assert errors == []
    assert data["retained_data"]["saved_lists"][0]["items"][0]["title"] == "Jazz"


async def test_a_receipt_links_to_the_configured_address_and_other_hosts_are_refused(
    portal,
) -> None:
    await publish(standard_catalog())
    await sign_in(portal.client, await make_patron())
    await choose(portal.client, "newsletter", "no")
    record = await portal.client.get("/privacy/record")
    reference = record.text.split('href="/privacy/receipts/')[-1].split('"')[0]
    forged_host = await portal.client.get(
        f"/privacy/receipts/{reference}/download", headers={"host": "evil.example"}
    )
    assert forged_host.status_code == 400
    assert "evil.example" not in forged_host.text
    receipt = await receipt_of_last_decision(portal)
    link = json.loads(b64(receipt.split(".")[1]))["notice"]["url"]
    assert link.startswith(f"{PUBLIC_URL}/notices/newsletter/v1/en")
