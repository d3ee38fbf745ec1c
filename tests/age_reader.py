"""An age (age-encryption.org/v1) reader for X25519 identities, written from the format's
specification (https://age-encryption.org/v1) over `cryptography`'s primitives, so that the
tests check backups against something other than the library that wrote them: the identity's
Bech32 text, the recipient stanza, the header's MAC and the STREAM payload."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_CHUNK = 64 * 1024


def _bech32_payload(text: str, hrp: str) -> bytes:
    """The data of a Bech32 string (BIP 173) with the given human-readable part, checked."""
    text = text.lower()
    found, _, data = text.rpartition("1")
    if found != hrp:
        raise ValueError(f"not a Bech32 string for {hrp}")
    values = [_BECH32.index(char) for char in data]

    def polymod(numbers: list[int]) -> int:
        check = 1
        for number in numbers:
            top = check >> 25
            check = (check & 0x1FFFFFF) << 5 ^ number
            for bit, generator in enumerate(
                (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
            ):
                check ^= generator if (top >> bit) & 1 else 0
        return check

    expanded = [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]
    if polymod(expanded + values) != 1:
        raise ValueError("Bech32 checksum")
    bits = accumulator = 0
    out = bytearray()
    for value in values[:-6]:
        accumulator = accumulator << 5 | value
        bits += 5
        if bits >= 8:
            bits -= 8
            out.append(accumulator >> bits & 0xFF)
    return bytes(out)


def _unpadded(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def read_identity(text: str) -> X25519PrivateKey:
    """The first AGE-SECRET-KEY-1… line of an identity file (as age-keygen writes one)."""
    line = next(line for line in text.splitlines() if line.startswith("AGE-SECRET-KEY-1"))
    return X25519PrivateKey.from_private_bytes(_bech32_payload(line, "age-secret-key-"))


def decrypt(data: bytes, identity: X25519PrivateKey) -> bytes:
    """The plaintext of an age file encrypted to `identity`'s recipient; ValueError otherwise."""
    end = data.index(b"\n---")
    header, _, rest = data[end + 1 :].partition(b"\n")
    mac_line = header.decode()
    lines = data[:end].decode().split("\n")
    if lines[0] != "age-encryption.org/v1":
        raise ValueError("not an age v1 file")
    ours = identity.public_key().public_bytes_raw()
    file_key = None
    index = 1
    while index < len(lines):
        arguments = lines[index].split(" ")
        body = ""
        index += 1
        while index < len(lines) and not lines[index].startswith("-> "):
            body += lines[index]
            index += 1
        if arguments[:2] != ["->", "X25519"]:
            continue
        share = _unpadded(arguments[2])
        shared = identity.exchange(X25519PublicKey.from_public_bytes(share))
        wrap = _hkdf(shared, share + ours, b"age-encryption.org/v1/X25519")
        with contextlib.suppress(InvalidTag):  # InvalidTag: another recipient's stanza
            file_key = ChaCha20Poly1305(wrap).decrypt(b"\0" * 12, _unpadded(body), None)
            break
    if file_key is None:
        raise ValueError("not encrypted to this identity")
    mac = hmac.new(_hkdf(file_key, b"", b"header"), data[: end + 4], hashlib.sha256).digest()
    if not hmac.compare_digest(mac, _unpadded(mac_line.removeprefix("--- "))):
        raise ValueError("header MAC")
    nonce, payload = rest[:16], rest[16:]
    cipher = ChaCha20Poly1305(_hkdf(file_key, nonce, b"payload"))
    plain = bytearray()
    sealed = _CHUNK + 16
    chunks = [payload[i : i + sealed] for i in range(0, len(payload), sealed)] or [b""]
    for counter, chunk in enumerate(chunks):
        last = counter == len(chunks) - 1
        plain += cipher.decrypt(counter.to_bytes(11, "big") + bytes([last]), chunk, None)
    return bytes(plain)
