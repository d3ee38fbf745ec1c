"""The ledger's checkpoints signed with the receipt key (the same ES256 key and low-S form
as receipts, a `typ` of their own), and a receipt's inclusion proof checked: the checkpoint's
signature with the library's public keys, then a few hashes (RFC 9162 §2.1.3.2)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from joserfc.jwk import KeySet

from portal.ledger import merkle
from portal.ledger.checkpoints import Sign, Verify
from portal.rights.keys import ReceiptKeys
from portal.rights.policy import MAX_RECEIPT_BYTES, leaf_is_receipts
from portal.rights.services import sign_receipt, verify_receipt


def signer(keys: ReceiptKeys) -> Sign:
    def sign(claims: dict[str, Any]) -> str:
        return sign_receipt(claims, keys, typ=merkle.CHECKPOINT_TYPE)

    return sign


def checker(public: KeySet) -> Verify:
    def check(token: str) -> dict[str, Any] | None:
        result = verify_receipt(token, public, typ=merkle.CHECKPOINT_TYPE)
        return result.claims if result.valid else None

    return check


@dataclass(frozen=True)
class ProofCheck:
    valid: bool
    tree_size: int | None = None
    checkpoint_time: str | None = None


def check_proof(text: str, public: KeySet, receipt: dict[str, Any]) -> ProofCheck:
    """Whether `text` (an inclusion bundle as JSON) proves that the receipt's event is in a
    checkpoint the library signed."""
    if not text.strip() or len(text) > 4 * MAX_RECEIPT_BYTES:
        return ProofCheck(valid=False)
    try:
        bundle = json.loads(text)
    except ValueError:
        return ProofCheck(valid=False)
    if not isinstance(bundle, dict) or not isinstance(bundle.get("checkpoint"), str):
        return ProofCheck(valid=False)
    signed = checker(public)(bundle["checkpoint"])
    if (
        signed is None
        or not merkle.bundle_holds(bundle, signed)
        or not leaf_is_receipts(bundle["leaf"], receipt)
    ):
        return ProofCheck(valid=False)
    return ProofCheck(valid=True, tree_size=signed["tree_size"], checkpoint_time=signed["time"])
