"""Publishing the catalog from the officer's page or the command line: one use case for
both, and the preview token that binds what was previewed to what is published."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime

from portal.catalog.policy import Catalog
from portal.catalog.publishing import PublishReport, publish_catalog
from portal.consent.services import pause_for_material_change
from portal.decisions.services import carry_over
from portal.staff import audit
from portal.staff.policy import AuditAction
from portal.staff.services import StaffIdentity


async def publish(
    catalog: Catalog,
    source_text: str,
    *,
    now: datetime,
    based_on: int | None = None,
    staff: StaffIdentity | None = None,
) -> PublishReport:
    """Publish a catalog; a material change pauses the consents given to the old terms, and
    the staff member who published it (none from the command line) is in the audit trail,
    all in one transaction. The officer's page and `portal publish` both come here."""

    async def audited(report: PublishReport) -> None:
        if staff is None:
            return
        await audit.append(
            staff,
            AuditAction.CATALOG_PUBLISHED,
            now=now,
            detail={
                "source_hash": source_hash(source_text),
                "changes": {key: change.value for key, change in report.changes.items()},
                "consents_paused": report.consents_suspended,
            },
        )

    return await publish_catalog(
        catalog,
        source_text,
        now=now,
        based_on=based_on,
        pause_consents=pause_for_material_change,
        carry_consents=carry_over,
        record=audited,
    )


def preview_token(secret: str, staff_id: int, based_on: int, text: str) -> str:
    """Binds a preview to exactly the text previewed, the publication it was compared with,
    and the officer who saw it: publishing checks all three."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    message = f"catalog-preview:{staff_id}:{based_on}:{digest}".encode()
    signature = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"{based_on}.{digest}.{signature}"


MAX_ID_DIGITS = 10  # a publication's id, a 32-bit integer


def read_preview_token(secret: str, staff_id: int, token: str, text: str) -> int | None:
    """The publication the preview was based on, if the token is this officer's for
    exactly this text; otherwise None."""
    based_on, _, _ = token.partition(".")
    # ASCII only: "²" is a digit to isdigit and not to int, and compare_digest needs ASCII.
    if not (token.isascii() and based_on.isdigit()) or len(based_on) > MAX_ID_DIGITS:
        return None
    expected = preview_token(secret, staff_id, int(based_on), text)
    return int(based_on) if hmac.compare_digest(expected, token) else None


def source_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
