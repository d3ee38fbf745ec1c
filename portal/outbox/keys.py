"""The signing secrets of connected systems: never in the catalog (which is kept under
version control), but in a TOML file of their own that PORTAL_SYSTEM_SECRETS_FILE names,
one line per system: `ils = "whsec_…"`. In development mode a missing one is generated
into the data folder, so the demo runs without configuration."""

from __future__ import annotations

import logging
import os
import tomllib
from collections.abc import Iterable
from pathlib import Path

from portal.outbox.policy import new_secret, secret_bytes
from portal.settings import Settings

logger = logging.getLogger("portal.outbox")
DEVELOPMENT_FILE = "dev-system-secrets.toml"


class SecretsError(ValueError):
    """A connected system has no usable signing secret: nothing is sent to it unsigned."""


def _read(path: Path) -> dict[str, str]:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise SecretsError(
            f"cannot read the system secrets file {path}: {error.strerror}"
        ) from None
    except tomllib.TOMLDecodeError:
        raise SecretsError(f"the system secrets file {path} is not valid TOML") from None
    if not all(isinstance(value, str) for value in raw.values()):
        raise SecretsError(f'{path}: each line is one system\'s key = "whsec_…"')
    return dict(raw)


def load_secrets(settings: Settings) -> dict[str, bytes]:
    """Every configured secret, as key bytes; a malformed one is refused with its name."""
    found: dict[str, str] = {}
    if settings.dev_mode and (settings.data_dir / DEVELOPMENT_FILE).exists():
        found.update(_read(settings.data_dir / DEVELOPMENT_FILE))
    if settings.system_secrets_file is not None:
        found.update(_read(settings.system_secrets_file))
    keys = {}
    for system, secret in found.items():
        try:
            keys[system] = secret_bytes(secret)
        except ValueError as error:
            raise SecretsError(f"the signing secret of system '{system}': {error}") from None
    return keys


def require_secrets(settings: Settings, systems: Iterable[str]) -> dict[str, bytes]:
    """The secrets of `systems`, each required; in development mode, missing ones are
    generated once into the data folder (and printed nowhere)."""
    keys = load_secrets(settings)
    missing = sorted(set(systems) - set(keys))
    if missing and settings.dev_mode:
        _generate(settings.data_dir / DEVELOPMENT_FILE, missing)
        keys = load_secrets(settings)
        missing = []
    if missing:
        raise SecretsError(
            f"no signing secret for connected system(s) {', '.join(missing)}: add them to "
            "the file PORTAL_SYSTEM_SECRETS_FILE names (`portal system-secret` makes one)"
        )
    return keys


def _generate(path: Path, systems: list[str]) -> None:
    existing = _read(path) if path.exists() else {}
    existing.update({system: new_secret() for system in systems})
    path.parent.mkdir(parents=True, exist_ok=True)
    # Made 0600 from the start, not chmod-ed after: never readable by others, even briefly.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        os.fchmod(out.fileno(), 0o600)
        for system, secret in sorted(existing.items()):
            out.write(f'{system} = "{secret}"\n')
    logger.warning("development mode: generated signing secrets for %s", ", ".join(systems))
