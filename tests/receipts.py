"""A patron's signed consent receipts as the tests get and read them: downloaded from the
record's last link, decoded, and forged by changing one claim."""

from __future__ import annotations

import base64
from typing import Any


def b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def tamper(receipt: str) -> str:
    """One byte of the payload changed (the service's data, as a forger would)."""
    header, payload, signature = receipt.split(".")
    claims = b64(payload).replace(b'"event":"refused"', b'"event":"given"')
    assert claims != b64(payload)
    forged = base64.urlsafe_b64encode(claims).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


async def receipt_of_last_decision(portal: Any) -> str:
    record = await portal.client.get("/privacy/record")
    links = [part.split('"')[0] for part in record.text.split('href="/privacy/receipts/')[1:]]
    assert links, "the record links each decision to its receipt"
    download = await portal.client.get(f"/privacy/receipts/{links[-1]}/download")
    assert download.status_code == 200
    return download.text.strip()
