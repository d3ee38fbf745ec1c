"""Sealing one value of retained data: AES-256-GCM (NIST SP 800-38D) from `cryptography`,
a random 96-bit nonce per value, and the value's place (table, column, patron) as the
associated data, so a sealed value copied into another patron's row or another column does
not open. Pure: the key is handed in."""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # 96 bits: GCM's own size, random per value (2**-32 collision bound far off)
VERSION = "v1."  # a later algorithm gets its own prefix; every stored value names its own

# The store of a patron's contact detail for one channel ("contact:sms"): one key per
# channel, as a channel's detail is erased on its own (portal.erasure).
CONTACT_STORE = "contact:"


class SealError(Exception):
    """A sealed value that cannot be opened: its key was destroyed or replaced, or the value
    was altered or moved to another row or column. Never shown to a person: a value that
    does not open is treated as gone (`services.settle_after_restore`)."""


def contact_store(channel: str) -> str:
    return CONTACT_STORE + channel


def context(table: str, column: str, patron_id: int) -> bytes:
    """Where a sealed value belongs: bound into its tag, checked when it is opened."""
    return f"{table}\x1f{column}\x1f{patron_id}".encode()


def seal(key: bytes, plaintext: str, *, context: bytes) -> str:
    nonce = _nonce()
    sealed = AESGCM(key).encrypt(nonce, plaintext.encode(), context)
    return VERSION + base64.urlsafe_b64encode(nonce + sealed).decode("ascii")


def open_sealed(key: bytes, token: str, *, context: bytes) -> str:
    if not token.startswith(VERSION):
        raise SealError
    try:
        raw = base64.urlsafe_b64decode(token.removeprefix(VERSION).encode("ascii"))
        opened = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], context)
    except (InvalidTag, ValueError, binascii.Error, UnicodeEncodeError):
        raise SealError from None
    return opened.decode()


def is_sealed(value: str) -> bool:
    return value.startswith(VERSION)


def _nonce() -> bytes:
    return os.urandom(NONCE_BYTES)


def new_key() -> bytes:
    return os.urandom(KEY_BYTES)


# Patrons are spread over this many buckets, each with its own wrapping key: a night's
# erasures dirty a few thousand buckets, so compaction re-wraps that fraction of the keys
# (at 30 million keys, about 460 a bucket), never the whole key table.
BUCKETS = 65_536
WRAPPED_BYTES = NONCE_BYTES + KEY_BYTES + 16  # nonce, key, GCM tag


def bucket_of(patron_id: int) -> int:
    return patron_id % BUCKETS


def _wrap_context(patron_id: int, store: str) -> bytes:
    # A wrapped key copied into another patron's or store's row does not unwrap.
    return f"retained_data_key\x1f{patron_id}\x1f{store}".encode()


def wrap_key(wrapping: bytes, key: bytes, patron_id: int, store: str) -> bytes:
    """A patron's key as stored: sealed (AES-256-GCM, NIST SP 800-38D) under the wrapping
    key of their bucket, bound to the patron and store."""
    nonce = _nonce()
    return nonce + AESGCM(wrapping).encrypt(nonce, key, _wrap_context(patron_id, store))


def unwrap_key(wrapping: bytes, wrapped: bytes, patron_id: int, store: str) -> bytes:
    try:
        return AESGCM(wrapping).decrypt(
            wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], _wrap_context(patron_id, store)
        )
    except (InvalidTag, ValueError):
        raise SealError from None


class PatronKey:
    """One patron's key for one store, fetched once per page or write and used for each
    value: the context binds every value to its table, column and this patron."""

    __slots__ = ("key", "patron_id")

    def __init__(self, patron_id: int, key: bytes) -> None:
        self.patron_id = patron_id
        self.key = key

    def seal(self, table: str, column: str, value: str) -> str:
        return seal(self.key, value, context=context(table, column, self.patron_id))

    def open(self, table: str, column: str, token: str) -> str:
        return open_sealed(self.key, token, context=context(table, column, self.patron_id))


@dataclass(frozen=True)
class SealedColumn:
    """A column kept sealed, as `services.settle_after_restore` and the migration that
    sealed the rows kept before find it: `rows` selects (id, patron_id, store, sealed) in
    batches of ids above `?`. The stores seal with the same table and column names."""

    table: str
    column: str
    rows: str


# Every column of retained data that says what a patron read, listed or where their messages
# go. One column per table is enough to tell whether a row still opens: every sealed column
# of a row is sealed under the same key. A store with sealed columns is listed here, and
# tests/unit/test_retained_keys_policy.py checks the list against the stores' models.
SEALED_TABLES = (
    SealedColumn(
        "history_entry",
        "title",
        "SELECT id, patron_id, 'reading_history' AS store, title AS sealed FROM history_entry "
        "WHERE id > ? ORDER BY id LIMIT ?",
    ),
    SealedColumn(
        "saved_list_item",
        "title",
        "SELECT i.id, l.patron_id, 'saved_lists' AS store, i.title AS sealed "
        "FROM saved_list_item i JOIN saved_list l ON l.id = i.saved_list_id "
        "WHERE i.id > ? ORDER BY i.id LIMIT ?",
    ),
    SealedColumn(
        "saved_list",
        "name",
        "SELECT id, patron_id, 'saved_lists' AS store, name AS sealed FROM saved_list "
        "WHERE id > ? ORDER BY id LIMIT ?",
    ),
    SealedColumn(
        "message_contact",
        "value",
        "SELECT id, patron_id, 'contact:' || channel AS store, value AS sealed "
        "FROM message_contact WHERE id > ? ORDER BY id LIMIT ?",
    ),
)
# The other sealed columns, sealed and opened with the first of their table.
ALSO_SEALED = {"history_entry": ("author",)}
