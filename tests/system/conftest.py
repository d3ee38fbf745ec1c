"""The system tier: the portal with other real processes on loopback — several portal
processes and workers, `portal deliver` killed with SIGKILL, receivers standing in for
connected systems, the OpenID Connect provider, node's `jose`. Slower than the other tiers,
and left out of `make quick`; every wait here is a poll with a deadline, never a sleep."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.delivery import ReceiverProcess


@pytest.fixture
def receivers(tmp_path: Path) -> Iterator[Callable[..., ReceiverProcess]]:
    """Receivers on loopback (not started until `start`), stopped at the end of the test."""
    made: list[ReceiverProcess] = []

    def make(*options: str, secret: str = "") -> ReceiverProcess:
        receiver = ReceiverProcess(tmp_path, secret, options)
        made.append(receiver)
        return receiver

    yield make
    for receiver in made:
        receiver.stop()
