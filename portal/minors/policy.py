"""What a guardian may see of a minor's account. Pure rules; the age thresholds themselves
are the library's jurisdiction (catalog.jurisdiction), and who may decide is consent.policy.

A guardian never sees a minor's library use (PRODUCT.md promise 6), and sees a teenager's
own choices only when the teenager shares them (ALA, Privacy Q&A, section IV).
"""

from __future__ import annotations

from portal.catalog.jurisdiction import AgeBand

# A one-time code a minor makes for a guardian is valid this long.
LINK_CODE_HOURS = 72


def guardian_sees_choices(band: AgeBand, shares_with_guardians: bool) -> bool:
    """Guardians see the choices they are responsible for, and a teen's only if shared."""
    if band is AgeBand.CHILD:
        return True
    return band is AgeBand.TEEN and shares_with_guardians
