"""The pure rules of backups: the header inside the encryption, and when a key backup is too
old (or claims to come from the future) to restore."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portal.backups.policy import (
    LEFT_OUT_OF_BACKUPS,
    MAGIC,
    BackupError,
    Engine,
    Header,
    Kind,
    key_backup_refusal,
    parse_header,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_the_header_reads_back_as_written() -> None:
    header = Header(Kind.KEYS, Engine.POSTGRES, NOW, LEFT_OUT_OF_BACKUPS)
    encoded = header.encode()
    assert encoded.startswith(MAGIC)
    assert parse_header(encoded[len(MAGIC) :].rstrip(b"\n")) == header


@pytest.mark.parametrize("line", [b"", b"{}", b'{"kind": "x"}', b"not json"])
def test_a_header_that_cannot_be_read_is_refused(line: bytes) -> None:
    with pytest.raises(BackupError, match="not a portal backup"):
        parse_header(line)


@pytest.mark.parametrize(
    ("age", "refused"),
    [(timedelta(hours=23, minutes=59), False), (timedelta(hours=24, seconds=1), True)],
)
def test_a_key_backup_older_than_the_setting_is_refused(age: timedelta, refused: bool) -> None:
    assert (key_backup_refusal(NOW - age, NOW, 24) is not None) is refused


def test_a_key_backup_from_the_future_is_refused() -> None:
    # Anyone holding the public recipient can write a backup: a future time must not make
    # one live longer.
    refusal = key_backup_refusal(NOW + timedelta(hours=1), NOW, 24)
    assert refusal is not None
    assert "future" in refusal
