"""Pure rules of receipts and notice history, and the receipt keys file."""

from __future__ import annotations

import base64
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from portal.ledger.vocabulary import EventKind
from portal.rights.keys import ReceiptKeysError, load_keys, rotate
from portal.rights.policy import Fact, ReceiptFacts, changed_facts, receipt_claims
from portal.rights.services import sign_receipt, verify_receipt
from portal.settings import Settings

TERMS = {
    "purposes": ["own_use"],
    "data_categories": ["titles"],
    "recipients": ["library"],
    "retention_days": 365,
}


def _facts(kind: EventKind = EventKind.GIVEN) -> ReceiptFacts:
    return ReceiptFacts(
        event_id=7,
        kind=kind,
        controller="Riverside Public Library",
        subject="a" * 64,
        service_key="reading_history",
        service_title="Reading history",
        terms=TERMS,
        notice_version_id=3,
        notice_revision=1,
        notice_hash="b" * 64,
        locale="es",
        occurred_at=datetime(2026, 5, 5, 14, 3, 11, tzinfo=UTC),
        method="online",
        actor="patron",
        channel="web",
        witnessed_by=None,
        notice_url="http://portal.test/notices/versions/3",
    )


def test_a_first_version_changed_nothing() -> None:
    assert changed_facts(None, TERMS) == ()


def test_each_material_fact_that_changed_is_named() -> None:
    new = {**TERMS, "recipients": ["library", "vendor"], "retention_days": 730}
    assert changed_facts(TERMS, new) == (Fact.RECIPIENTS, Fact.RETENTION)


def test_shorter_retention_is_a_change_too_though_not_a_material_one() -> None:
    assert changed_facts(TERMS, {**TERMS, "retention_days": 30}) == (Fact.RETENTION,)


def test_a_receipt_carries_every_consent_record_field() -> None:
    claims = receipt_claims(_facts(), issued_at=datetime(2026, 5, 6, tzinfo=UTC))
    assert claims["controller"] == {"name": "Riverside Public Library"}
    assert claims["service"]["key"] == "reading_history"
    assert claims["purposes"] == ["own_use"]
    assert claims["data_categories"] == ["titles"]
    assert claims["recipients"] == ["library"]
    assert claims["retention_days"] == 365
    assert claims["notice"]["sha256"] == "b" * 64
    assert claims["language"] == "es"
    assert claims["time"] == "2026-05-05T14:03:11Z"
    assert (claims["method"], claims["actor"], claims["channel"]) == ("online", "patron", "web")
    assert claims["state"] == "active"


def test_a_withdrawal_receipt_says_the_consent_is_withdrawn() -> None:
    claims = receipt_claims(_facts(EventKind.WITHDRAWN), issued_at=datetime.now(UTC))
    assert claims["state"] == "withdrawn"


def test_without_a_keys_file_outside_development_there_are_no_receipts(tmp_path: Path) -> None:
    with pytest.raises(ReceiptKeysError):
        load_keys(Settings(data_dir=tmp_path))


def test_development_mode_makes_one_key_and_keeps_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, dev_mode=True)
    first = load_keys(settings).signing.kid
    assert load_keys(Settings(data_dir=tmp_path, dev_mode=True)).signing.kid == first


def test_rotation_keeps_only_the_public_half_of_retired_keys(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    first = rotate(path)
    second = rotate(path)
    keys = json.loads(path.read_text())["keys"]
    assert [key["kid"] for key in keys] == [second, first]
    assert ["d" in key for key in keys] == [True, False]
    assert path.stat().st_mode & 0o777 == 0o600


def test_rotations_at_the_same_time_lose_no_key(tmp_path: Path) -> None:
    """Two operators, or a script run twice: every key made stays in the file, or receipts
    it signed would no longer verify."""
    path = tmp_path / "keys.json"
    rotate(path)
    start = threading.Barrier(8)

    def rotate_together() -> str:
        start.wait()
        return rotate(path)

    with ThreadPoolExecutor(8) as pool:
        made = set(pool.map(lambda _: rotate_together(), range(8)))
    kept = [key["kid"] for key in json.loads(path.read_text())["keys"]]
    assert len(kept) == 9
    assert made <= set(kept)
    assert sum("d" in key for key in json.loads(path.read_text())["keys"]) == 1


def test_a_receipt_signed_before_rotation_verifies_after_it(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    rotate(path)
    settings = Settings(data_dir=tmp_path, receipt_keys_file=path)
    claims = receipt_claims(_facts(), issued_at=datetime.now(UTC))
    receipt = sign_receipt(claims, load_keys(settings))
    rotate(path)
    result = verify_receipt(receipt, load_keys(settings).public)
    assert result.valid
    assert result.claims == claims


def test_a_receipt_signed_by_another_key_is_not_valid(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours.json", tmp_path / "theirs.json"
    rotate(ours)
    rotate(theirs)
    forged = sign_receipt(
        receipt_claims(_facts(), issued_at=datetime.now(UTC)),
        load_keys(Settings(receipt_keys_file=theirs)),
    )
    assert not verify_receipt(forged, load_keys(Settings(receipt_keys_file=ours)).public).valid


@pytest.mark.parametrize("garbage", ["", "not a receipt", "a.b.c", "x" * 20_000])
def test_anything_that_is_not_a_receipt_is_not_valid(tmp_path: Path, garbage: str) -> None:
    rotate(tmp_path / "keys.json")
    keys = load_keys(Settings(receipt_keys_file=tmp_path / "keys.json"))
    assert not verify_receipt(garbage, keys.public).valid


def test_a_file_with_two_private_keys_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    rotate(path)
    keys = json.loads(path.read_text())["keys"]
    path.write_text(json.dumps({"keys": keys + keys}))
    with pytest.raises(ReceiptKeysError, match="exactly one private key"):
        load_keys(Settings(receipt_keys_file=path))


def test_a_rotated_file_is_never_left_half_written(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    rotate(path)
    rotate(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys.json"]


# The order of P-256's group (FIPS 186-5, SEC 2): s and n - s both verify under plain ECDSA.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _signature_s(receipt: str) -> int:
    signature = base64.urlsafe_b64decode(receipt.rsplit(".", 1)[1] + "==")
    return int.from_bytes(signature[32:], "big")


def _with_s(receipt: str, s: int) -> str:
    head, signature = receipt.rsplit(".", 1)
    raw = base64.urlsafe_b64decode(signature + "==")[:32] + s.to_bytes(32, "big")
    return f"{head}.{base64.urlsafe_b64encode(raw).rstrip(b'=').decode()}"


def test_receipts_are_signed_in_the_low_s_form_only(tmp_path: Path) -> None:
    rotate(tmp_path / "keys.json")
    keys = load_keys(Settings(receipt_keys_file=tmp_path / "keys.json"))
    claims = receipt_claims(_facts(), issued_at=datetime.now(UTC))
    # ECDSA signatures are random: about half come out high-S unless the signer lowers them.
    for _ in range(40):
        assert _signature_s(sign_receipt(claims, keys)) <= P256_ORDER // 2


def test_the_high_s_twin_of_a_valid_receipt_is_not_valid(tmp_path: Path) -> None:
    rotate(tmp_path / "keys.json")
    keys = load_keys(Settings(receipt_keys_file=tmp_path / "keys.json"))
    receipt = sign_receipt(receipt_claims(_facts(), issued_at=datetime.now(UTC)), keys)
    s = _signature_s(receipt)
    low, high = sorted((s, P256_ORDER - s))
    assert verify_receipt(_with_s(receipt, low), keys.public).valid
    twin = _with_s(receipt, high)
    assert not verify_receipt(twin, keys.public).valid
