"""The one clock: every use case, job and page reads the time here, in UTC, so tests and
scheduled jobs agree. Birthdays and shown dates happen in the library's time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo


def utcnow() -> datetime:
    return datetime.now(UTC)


def local_date(moment: datetime, timezone: str) -> date:
    """The calendar day at the library: birthdays happen at midnight there, not in UTC."""
    return moment.astimezone(ZoneInfo(timezone)).date()
