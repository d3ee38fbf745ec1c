"""What a guardian may see of a minor's account. Pure rules; the age thresholds themselves
are the library's jurisdiction (catalog.jurisdiction), and who may decide is consent.policy.

A guardian never sees a minor's library use (docs/PROMISES.md promise 6), and sees a teenager's
own choices only when the teenager shares them (ALA, Privacy Q&A, section IV).
"""

from __future__ import annotations

from portal.catalog.jurisdiction import AgeBand
from portal.ledger.vocabulary import Method

# A one-time code a minor makes for a guardian is valid this long.
LINK_CODE_HOURS = 72
# Two parents, and room for a guardian or step-parent: beyond that, staff decide in person.
MAX_GUARDIANS = 4


def may_decide_for_child(link_method: str) -> bool:
    """Consent for a child below the guardian-consent age comes only from a guardian whose
    link was verified in person (COPPA's verifiable parental consent); a link made with the
    child's code lets the adult read the notices and see which services are on."""
    return link_method == Method.DESK_HANDOVER


def guardian_sees_choices(band: AgeBand, shares_with_guardians: bool) -> bool:
    """Guardians see the choices they are responsible for, and a teen's only if shared."""
    if band is AgeBand.CHILD:
        return True
    return band is AgeBand.TEEN and shares_with_guardians
