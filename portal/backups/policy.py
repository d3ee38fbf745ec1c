"""What a backup file holds and the rules for trusting one: its header, the tables it never
carries, when a key backup is too old, and when a private file is not private. Pure."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

# The tables whose rows no database backup carries: the per-patron keys that retained data is
# sealed under, and the wrapping keys they are wrapped under. Erasure destroys a patron's
# key, so a backup taken before a withdrawal holds only sealed rows nobody can open once
# restored with today's keys (a key backup carries them unwrapped: the restore wraps them
# again). A name that does not exist (yet) is skipped. The key table comes first: its rows
# refer to the wrapping keys'.
LEFT_OUT_OF_BACKUPS: tuple[str, ...] = ("retained_data_key", "retained_key_wrap")

# Inside the age encryption, a backup is this line, one line of JSON (the header) and then
# the payload: a SQLite database file, a pg_dump archive (custom format) or the key rows.
MAGIC = b"portal-backup/1\n"
HEADER_LIMIT = 64 * 1024

# An identity or key file is private when neither its group nor others may do anything with it.
SHARED_BITS = 0o077

# age's X25519 identities, as age-keygen and `portal backup-identity` write them.
IDENTITY_PREFIX = "AGE-SECRET-KEY-1"


class BackupError(ValueError):
    """A backup or restore refused or failed; the message says why, naming no patron."""


class Kind(StrEnum):
    DATABASE = "database"
    KEYS = "keys"


class Engine(StrEnum):
    SQLITE = "sqlite"
    POSTGRES = "postgres"


@dataclass(frozen=True)
class Header:
    kind: Kind
    engine: Engine
    taken_at: datetime
    left_out: tuple[str, ...] = ()

    def encode(self) -> bytes:
        fields = {
            "kind": self.kind.value,
            "engine": self.engine.value,
            "taken_at": self.taken_at.isoformat(),
            "left_out": list(self.left_out),
        }
        return MAGIC + json.dumps(fields, sort_keys=True).encode() + b"\n"


def parse_header(line: bytes) -> Header:
    """The JSON line after MAGIC."""
    try:
        raw = json.loads(line)
        taken_at = datetime.fromisoformat(raw["taken_at"])
        header = Header(
            kind=Kind(raw["kind"]),
            engine=Engine(raw["engine"]),
            taken_at=taken_at,
            left_out=tuple(str(name) for name in raw["left_out"]),
        )
    except (ValueError, KeyError, TypeError):
        raise BackupError("not a portal backup (its header cannot be read)") from None
    if taken_at.tzinfo is None:
        raise BackupError("not a portal backup (its time has no time zone)")
    return header


def engine_of(database_url: str) -> Engine:
    if database_url.startswith("sqlite://"):
        return Engine.SQLITE
    if database_url.startswith(("postgres://", "postgresql://")):
        return Engine.POSTGRES
    raise BackupError("the database URL must start with sqlite:// or postgres://")


def key_backup_refusal(taken_at: datetime, now: datetime, max_age_hours: int) -> str | None:
    """Why a key backup may not be restored, or None. Every hour it is kept is an hour in
    which restoring it would make readable again what a patron withdrew since."""
    if taken_at > now + timedelta(minutes=5):
        return f"the key backup says it was taken in the future ({taken_at:%Y-%m-%d %H:%M} UTC)"
    age = now - taken_at
    if age > timedelta(hours=max_age_hours):
        hours = int(age.total_seconds() // 3600)
        return (
            f"the key backup is {hours} hour(s) old, older than "
            f"PORTAL_KEY_BACKUP_MAX_AGE_HOURS ({max_age_hours}): restoring it could bring back "
            "data patrons withdrew since it was taken"
        )
    return None


def is_shared(mode: int) -> bool:
    return bool(mode & SHARED_BITS)


def identity_lines(text: str) -> list[str]:
    """The secret keys in an age identity file (comments and blank lines skipped)."""
    lines = [line.strip() for line in text.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def identity_file_text(secret: str, public: str, created: datetime) -> str:
    """As age-keygen writes one, so age and rage read it too."""
    return f"# created: {created.isoformat(timespec='seconds')}\n# public key: {public}\n{secret}\n"
