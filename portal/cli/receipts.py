"""The verbs of signed consent receipts: rotating the signing key, checking a receipt (and
its inclusion proof), checking the whole ledger against its signed checkpoints."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from portal.cli.database import with_db
from portal.ledger import checkpoints
from portal.rights.keys import ReceiptKeysError, keys_path, load_keys
from portal.rights.keys import rotate as rotate_receipt_key
from portal.rights.proofs import check_proof, checker
from portal.rights.services import verify_receipt
from portal.settings import Settings


def cmd_receipt_key_rotate(settings: Settings, args: argparse.Namespace) -> int:
    path = keys_path(settings)
    if path is None:
        print("Set PORTAL_RECEIPT_KEYS_FILE to the receipt keys file.", file=sys.stderr)
        return 2
    try:
        kid = rotate_receipt_key(path)
    except ReceiptKeysError as error:
        print(f"Nothing changed: {error}", file=sys.stderr)
        return 1
    print(f"Receipts are now signed with key {kid}; older receipts still verify.")
    print(f"Copy {path} to every host that runs the portal.")
    return 0


def cmd_verify_receipt(settings: Settings, args: argparse.Namespace) -> int:
    try:
        keys = load_keys(settings)
        token = Path(args.file).read_text(encoding="utf-8", errors="replace")
    except (ReceiptKeysError, OSError) as error:
        print(f"Cannot check: {error}", file=sys.stderr)
        return 2
    result = verify_receipt(token, keys.public)
    if not result.valid:
        print("NOT VALID: changed after signing, or not signed by this library's keys.")
        return 1
    print(f"VALID: signed with key {result.key_id}.")
    print(json.dumps(result.claims, ensure_ascii=False, indent=2, sort_keys=True))
    if args.proof:
        try:
            bundle = Path(args.proof).read_text(encoding="utf-8", errors="replace")
        except OSError as error:
            print(f"Cannot check the proof: {error}", file=sys.stderr)
            return 2
        proof = check_proof(bundle, keys.public, result.claims)
        if not proof.valid:
            print("PROOF NOT VALID: the ledger's signed checkpoints do not show this decision.")
            return 1
        print(
            f"IN THE LEDGER: this decision is in the checkpoint of {proof.tree_size} event(s) "
            f"signed {proof.checkpoint_time}."
        )
    return 0


def cmd_verify_ledger(settings: Settings, args: argparse.Namespace) -> int:
    try:
        keys = load_keys(settings)
    except ReceiptKeysError as error:
        print(f"Cannot check: {error}", file=sys.stderr)
        return 2

    async def work() -> int:
        verdict = await checkpoints.verify(checker(keys.public))
        for problem in verdict.problems:
            print(f"PROBLEM: {problem.message}")
        if verdict.more:
            print(f"… and {verdict.more} more problem(s), not listed.")
        if verdict.problems:
            count = len(verdict.problems) + verdict.more
            print(f"{count} problem(s): the ledger was changed after it was signed.")
            return 1
        print(
            f"OK: {verdict.events} ledger event(s); {verdict.checkpoints} checkpoint(s), each "
            "signed, matching the events and consistent with the one before."
        )
        return 0

    return with_db(settings, work)


def add_verbs(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The verbs of signed consent receipts."""
    receipt_key = commands.add_parser("receipt-key", help="the keys that sign consent receipts")
    receipt_verbs = receipt_key.add_subparsers(dest="receipt_command", required=True)
    receipt_verbs.add_parser(
        "rotate", help="a new signing key (creates the file); retired keys still verify"
    ).set_defaults(run=cmd_receipt_key_rotate)
    verify = commands.add_parser(
        "verify-receipt", help="check a consent receipt file: valid or not, and what it says"
    )
    verify.add_argument("file")
    verify.add_argument(
        "--proof", help="its inclusion proof (from the receipt's page), checked against the ledger"
    )
    verify.set_defaults(run=cmd_verify_receipt)
    commands.add_parser(
        "verify-ledger",
        help="recompute the consent ledger's Merkle tree and check every signed checkpoint",
    ).set_defaults(run=cmd_verify_ledger)
