"""Sealing a value of retained data: it opens only with its key, in its own place."""

from __future__ import annotations

import base64

import pytest

from portal.retained_keys.policy import (
    KEY_BYTES,
    SEALED_TABLES,
    VERSION,
    PatronKey,
    SealError,
    context,
    new_key,
    open_sealed,
    seal,
)
from portal.stores.registry import STORES

PLACE = context("history_entry", "title", 7)


def test_a_sealed_value_opens_with_its_key_in_its_place() -> None:
    key = new_key()
    token = seal(key, "The Left Hand of Darkness", context=PLACE)
    assert token.startswith("v1.")
    assert "Left Hand" not in token
    assert open_sealed(key, token, context=PLACE) == "The Left Hand of Darkness"


def test_two_seals_of_one_value_differ() -> None:
    key = new_key()
    assert seal(key, "Dune", context=PLACE) != seal(key, "Dune", context=PLACE)


def test_a_key_is_32_random_bytes() -> None:
    assert len(new_key()) == KEY_BYTES == 32
    assert new_key() != new_key()


@pytest.mark.parametrize(
    "elsewhere",
    [
        context("history_entry", "title", 8),  # another patron's row
        context("history_entry", "author", 7),  # another column
        context("saved_list_item", "title", 7),  # another table
    ],
)
def test_a_sealed_value_moved_elsewhere_does_not_open(elsewhere: bytes) -> None:
    key = new_key()
    token = seal(key, "Dune", context=PLACE)
    with pytest.raises(SealError):
        open_sealed(key, token, context=elsewhere)


def test_another_key_does_not_open_it() -> None:
    token = seal(new_key(), "Dune", context=PLACE)
    with pytest.raises(SealError):
        open_sealed(new_key(), token, context=PLACE)


@pytest.mark.parametrize("garbage", ["Dune", "v1.", "v1.!!!", "v2.AAAA", "v1." + "A" * 40])
def test_plaintext_or_garbage_does_not_open(garbage: str) -> None:
    with pytest.raises(SealError):
        open_sealed(new_key(), garbage, context=PLACE)


def test_a_changed_byte_does_not_open() -> None:
    key = new_key()
    token = seal(key, "Dune", context=PLACE)
    # A byte of the ciphertext changed (changing a base64 character could touch only the
    # padding bits of the last one, and leave the bytes as they were).
    raw = bytearray(base64.urlsafe_b64decode(token.removeprefix(VERSION)))
    raw[20] ^= 0x01
    flipped = VERSION + base64.urlsafe_b64encode(bytes(raw)).decode()
    with pytest.raises(SealError):
        open_sealed(key, flipped, context=PLACE)


def test_a_patron_key_seals_for_its_own_patron() -> None:
    mine, theirs = PatronKey(7, new_key()), None
    token = mine.seal("history_entry", "title", "Dune")
    assert open_sealed(mine.key, token, context=PLACE) == "Dune"
    theirs = PatronKey(8, mine.key)
    with pytest.raises(SealError):
        theirs.open("history_entry", "title", token)


def test_every_store_table_with_text_about_the_patron_is_sealed() -> None:
    """A store's table that keeps text is listed, so a restore finds what no longer opens."""
    sealed = {column.table for column in SEALED_TABLES}
    texts = {
        model._meta.db_table
        for store in STORES.values()
        for model in store.models
        if any(
            field.field_type is str
            for name, field in model._meta.fields_map.items()
            if name != "id"
        )
    }
    assert texts <= sealed
