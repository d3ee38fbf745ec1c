"""Consent receipts verified outside the portal, by the npm `jose` package run in node (the
one next to the OpenID Connect provider the staff sign-in tests use)."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from portal.rights.keys import rotate
from portal.settings import Settings
from tests.factories import make_patron, publish, standard_catalog
from tests.receipts import receipt_of_last_decision, tamper
from tests.web import choose, sign_in


@pytest.fixture
def portal_settings(settings: Settings, tmp_path: Path) -> Settings:
    path = tmp_path / "receipt-keys.json"
    rotate(path)
    return replace(settings, receipt_keys_file=path)


def _node_jose(receipt: str, jwks: dict[str, object]) -> dict[str, object]:
    """The npm `jose` package, next to the oidc-provider the staff sign-in tests use."""
    provider = os.environ.get("PORTAL_TEST_OIDC_PROVIDER")
    if not provider or not Path(provider).is_file():
        pytest.fail("the npm packages are missing: run the tests with `make test`")
    module = Path(provider).parents[2] / "jose" / "dist" / "webapi" / "index.js"
    done = subprocess.run(
        ["node", str(Path(__file__).parents[1] / "jose" / "verify.mjs")],
        input=json.dumps({"jwks": jwks, "receipt": receipt}),
        env={**os.environ, "JOSE_MODULE": str(module)},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


async def test_a_receipt_verifies_with_an_independent_jose_implementation(portal) -> None:
    await publish(standard_catalog())
    await sign_in(portal.client, await make_patron())
    await choose(portal.client, "newsletter", "no")
    receipt = await receipt_of_last_decision(portal)
    jwks = (await portal.client.get("/.well-known/jwks.json")).json()
    checked = _node_jose(receipt, jwks)
    assert checked["valid"] is True
    assert checked["payload"]["event"] == "refused"  # type: ignore[index]
    assert _node_jose(tamper(receipt), jwks)["valid"] is False
