"""Reading guardian links: whether a guardian may decide for a child (a link in force that
staff checked in person), and what the child and other guardians are told about links."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from portal.guardians.models import GuardianLink
from portal.ledger.vocabulary import Method


@dataclass(frozen=True)
class LinkInfo:
    """A guardian link as the child and the other guardians see it: how and when it was
    made, and when it ended (never the other guardian's label or identity)."""

    linked_at: datetime
    in_person: bool
    ended_at: datetime | None
    link_id: int  # for the child's own "end this link" (a number, naming nobody)


# Links ended this recently are still shown to the child and the other guardians.
RECENT_LINK_DAYS = 30


async def links_of(
    child_id: int, *, now: datetime, except_link: int | None = None
) -> list[LinkInfo]:
    """The child's guardian links in force, and those ended in the last RECENT_LINK_DAYS:
    what the child and each guardian are told about who can act for the child."""
    since = now - timedelta(days=RECENT_LINK_DAYS)
    links = await GuardianLink.filter(child_id=child_id).order_by("linked_at")
    return [
        LinkInfo(link.linked_at, link.method == Method.DESK_HANDOVER, link.ended_at, link.id)
        for link in links
        if link.id != except_link and (link.ended_at is None or link.ended_at >= since)
    ]


async def has_verified_link(guardian_id: int, child_id: int) -> bool:
    """A link in force that staff checked in person: the only kind that may decide."""
    verified: bool = await GuardianLink.exists(
        guardian_id=guardian_id, child_id=child_id, ended_at=None, method=Method.DESK_HANDOVER
    )
    return verified
