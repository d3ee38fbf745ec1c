"""The ledger's signed checkpoints in public, a receipt's proof that its decision is in the
published record, and the verify page checking it; checked again here from RFC 9162 with
hashlib alone (tests/rfc9162.py) and the JWS by hand with `cryptography`."""

from __future__ import annotations

import html
import json
from dataclasses import replace
from pathlib import Path

import pytest

from portal.officer import jobs
from portal.rights.keys import rotate
from portal.settings import Settings
from portal.staff.policy import Role
from tests import rfc9162
from tests.desk import make_staff, staff_sign_in
from tests.factories import make_patron, publish, standard_catalog
from tests.receipts import b64, receipt_of_last_decision
from tests.web import choose, sign_in, visible_text


@pytest.fixture
def portal_settings(settings: Settings, tmp_path: Path) -> Settings:
    path = tmp_path / "receipt-keys.json"
    rotate(path)
    return replace(settings, receipt_keys_file=path)


async def _receipt_page(portal) -> str:  # type: ignore[no-untyped-def]
    record = (await portal.client.get("/privacy/record")).text
    reference = record.split('href="/privacy/receipts/')[-1].split('"')[0]
    page = await portal.client.get(f"/privacy/receipts/{reference}")
    assert page.status_code == 200
    return page.text


def _proof_on(page: str) -> dict[str, object]:
    return json.loads(
        html.unescape(page.split('<pre class="token" dir="ltr">')[1].split("</pre>", maxsplit=1)[0])
    )


async def test_checkpoints_are_published_as_a_page_and_as_json(portal) -> None:
    await publish(standard_catalog())
    await sign_in(portal.client, await make_patron())
    await choose(portal.client, "newsletter", "yes")
    await choose(portal.client, "newsletter", "no")
    portal.client.cookies.clear()
    assert (
        "No checkpoint has been signed yet" in (await portal.client.get("/ledger/checkpoints")).text
    )
    made = (await jobs.checkpoint(portal.app.state.settings)).checkpoint
    assert made is not None
    listed = (await portal.client.get("/ledger/checkpoints?format=json")).json()
    assert [item["tree_size"] for item in listed["checkpoints"]] == [made.tree_size]
    page = await portal.client.get(f"/ledger/checkpoints/{made.tree_size}")
    assert made.root_hash in page.text
    one = (await portal.client.get(f"/ledger/checkpoints/{made.tree_size}?format=json")).json()
    header, payload, _ = one["signed"].split(".")
    assert json.loads(b64(header))["typ"] == "ledger-checkpoint+jwt"
    signed = json.loads(b64(payload))
    assert (signed["tree_size"], signed["root_hash"]) == (made.tree_size, one["root_hash"])
    assert (await portal.client.get("/ledger/checkpoints/999")).status_code == 404


async def test_a_receipt_shows_its_proof_once_a_checkpoint_holds_it(portal) -> None:
    await publish(standard_catalog())
    await sign_in(portal.client, await make_patron())
    await choose(portal.client, "newsletter", "yes")
    assert "No signed checkpoint of the consent record holds this decision yet" in visible_text(
        await _receipt_page(portal)
    )
    await jobs.checkpoint(portal.app.state.settings)
    await choose(portal.client, "newsletter", "no")  # newer than the checkpoint: no proof yet
    assert "No signed checkpoint" in visible_text(await _receipt_page(portal))
    await jobs.checkpoint(portal.app.state.settings)
    page = await _receipt_page(portal)
    proof = _proof_on(page)
    # Checked from the RFC alone: the leaf up the audit path to the signed root.
    signed = json.loads(b64(str(proof["checkpoint"]).split(".")[1]))
    assert rfc9162.included(
        rfc9162.leaf(str(proof["leaf"]).encode()),
        int(proof["leaf_index"]),  # type: ignore[call-overload]
        int(signed["tree_size"]),
        [bytes.fromhex(value) for value in proof["audit_path"]],  # type: ignore[attr-defined]
        bytes.fromhex(signed["root_hash"]),
    )
    assert json.loads(str(proof["leaf"]))["kind"] == "withdrawn"


async def test_the_verify_page_checks_the_proof_of_the_receipts_decision(portal) -> None:
    await publish(standard_catalog())
    await sign_in(portal.client, await make_patron())
    await choose(portal.client, "newsletter", "yes")
    given = await receipt_of_last_decision(portal)
    await choose(portal.client, "newsletter", "no")
    withdrawn = await receipt_of_last_decision(portal)
    await jobs.checkpoint(portal.app.state.settings)
    proof = _proof_on(await _receipt_page(portal))  # the withdrawal's
    portal.client.cookies.clear()  # the verify page is public

    async def verdict(receipt: str, proof_text: str) -> str:
        answer = await portal.client.post(
            "/receipts/verify", data={"receipt": receipt, "proof": proof_text}
        )
        return visible_text(answer.text)

    assert "In the published record" in await verdict(withdrawn, json.dumps(proof))
    # Another decision's receipt, a changed hash, a leaf edited to say something else.
    assert "does not show this decision" in await verdict(given, json.dumps(proof))
    path = list(proof["audit_path"])  # type: ignore[call-overload]
    path[0] = ("0" if path[0][0] != "0" else "1") + path[0][1:]
    assert "does not show" in await verdict(withdrawn, json.dumps(proof | {"audit_path": path}))
    edited = str(proof["leaf"]).replace('"withdrawn"', '"given"')
    assert "does not show" in await verdict(withdrawn, json.dumps(proof | {"leaf": edited}))
    assert "In the published record" not in await verdict(withdrawn, "")


async def test_the_transparency_summary_shows_the_latest_checkpoint(portal) -> None:
    await publish(standard_catalog())
    await sign_in(portal.client, await make_patron())
    await choose(portal.client, "newsletter", "yes")
    made = (await jobs.checkpoint(portal.app.state.settings)).checkpoint
    assert made is not None
    portal.client.cookies.clear()
    await staff_sign_in(portal.client, await make_staff(Role.PRIVACY_OFFICER))
    summary = await portal.client.get("/officer/transparency")
    assert made.root_hash in summary.text
