"""The keys that sign consent receipts (ES256, RFC 7515/7518). They live in the JSON file
PORTAL_RECEIPT_KEYS_FILE names, the same file on every process and host: the one private key
signing now, and the public keys of the retired ones, so that a receipt signed years ago still
verifies. Rotating keeps the old public key and forgets its private half. In development mode
a missing file is generated into the data folder."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc.jwk import ECKey, KeySet

from portal.settings import Settings

logger = logging.getLogger("portal.rights")
DEVELOPMENT_FILE = "dev-receipt-keys.json"
ALGORITHM = "ES256"


class ReceiptKeysError(ValueError):
    """No usable signing key: receipts cannot be signed (nothing is signed with a made-up one)."""


@dataclass(frozen=True)
class ReceiptKeys:
    signing: ECKey
    public: KeySet  # current and retired, for verifying and for /.well-known/jwks.json

    def public_jwks(self) -> dict[str, Any]:
        return {"keys": [key.as_dict(private=False) for key in self.public.keys]}


def keys_path(settings: Settings) -> Path | None:
    if settings.receipt_keys_file is not None:
        return settings.receipt_keys_file
    if settings.dev_mode:
        return settings.data_dir / DEVELOPMENT_FILE
    return None


# Reread whenever the file changes (a rotation in another process): keyed by its stat.
_cache: dict[Path, tuple[tuple[int, int], ReceiptKeys]] = {}


def _read(path: Path) -> ReceiptKeys:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        entries = list(raw["keys"])
    except OSError as error:
        raise ReceiptKeysError(f"cannot read the receipt keys file {path}: {error}") from None
    except (ValueError, KeyError, TypeError):
        raise ReceiptKeysError(f"{path} is not a receipt keys file ({{'keys': [...]}})") from None
    private = [entry for entry in entries if isinstance(entry, dict) and "d" in entry]
    if len(private) != 1:
        raise ReceiptKeysError(f"{path} must hold exactly one private key (the current one)")
    try:
        keys = [ECKey.import_key(entry) for entry in entries]
    except (ValueError, TypeError) as error:
        raise ReceiptKeysError(f"{path}: a key cannot be read: {error}") from None
    signing = ECKey.import_key(private[0])
    public = KeySet([ECKey.import_key(key.as_dict(private=False)) for key in keys])
    return ReceiptKeys(signing=signing, public=public)


def load_keys(settings: Settings) -> ReceiptKeys:
    """The current keys; in development mode the file is made the first time."""
    path = keys_path(settings)
    if path is None:
        raise ReceiptKeysError("no receipt keys: set PORTAL_RECEIPT_KEYS_FILE")
    if not path.exists() and settings.receipt_keys_file is None and settings.dev_mode:
        _create(path)
    try:
        stat = path.stat()
    except OSError as error:
        raise ReceiptKeysError(f"cannot read the receipt keys file {path}: {error}") from None
    stamp = (stat.st_mtime_ns, stat.st_size)
    cached = _cache.get(path)
    if cached and cached[0] == stamp:
        return cached[1]
    keys = _read(path)
    _cache[path] = (stamp, keys)
    return keys


def new_key() -> dict[str, Any]:
    key = ECKey.generate_key("P-256", private=True)
    jwk = key.as_dict(private=True)
    jwk.update({"kid": key.thumbprint(), "alg": ALGORITHM, "use": "sig"})
    return dict(jwk)


def rotate(path: Path) -> str:
    """A new signing key; the previous ones stay as public keys only. Returns the new kid.
    Creates the file when there is none."""
    with _rotating(path):
        entries: list[dict[str, Any]] = []
        if path.exists():
            _read(path)  # refuse to rotate a file that is not one
            entries = json.loads(path.read_text(encoding="utf-8"))["keys"]
        retired = [{k: value for k, value in entry.items() if k != "d"} for entry in entries]
        fresh = new_key()
        _write(path, [fresh, *retired])
    return str(fresh["kid"])


@contextlib.contextmanager
def _rotating(path: Path) -> Iterator[None]:
    """One rotation at a time on this host: two at once would each keep the keys they read,
    and the file would lose the other's new key, and with it every receipt it signed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # The lock is on the folder, which stays while the file itself is replaced; and it leaves
    # nothing behind in it.
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        fcntl.flock(folder, fcntl.LOCK_EX)
        yield
    finally:
        os.close(folder)  # and with it the lock


def _write(path: Path, keys: list[dict[str, Any]]) -> None:
    """Atomically: a process reading it meanwhile sees the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=".receipt-keys-")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump({"keys": keys}, out, indent=2)
        out.write("\n")
        out.flush()
        os.fsync(out.fileno())  # on disk before it replaces the old file: a crash loses neither
    os.chmod(name, 0o600)
    if path.exists():  # rotated by root for the portal's user: the file stays theirs
        owner = path.stat()
        with contextlib.suppress(PermissionError):
            os.chown(name, owner.st_uid, owner.st_gid)
    os.replace(name, path)


def _create(path: Path) -> None:
    """Development mode: the first key, once (another process may have made it meanwhile)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump({"keys": [new_key()]}, out, indent=2)
        out.write("\n")
    logger.warning("development mode: generated a receipt signing key in %s", path)
