"""Concurrent grant, withdraw and data hand-over for one patron: whatever the interleaving,
the ledger and the retained data agree. Meaningful on PostgreSQL (row locks); on SQLite the
engine serialises writers and the same assertions hold."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from datetime import date

import pytest

from portal.api import services as api
from portal.api.policy import Scope
from portal.consent import reads
from portal.consent.models import ConsentState
from portal.consent.policy import ConsentError, Decision
from portal.decisions import services as decisions
from portal.ledger.models import ConsentEvent, EventKind
from portal.stores.reading_history import services as reading_history
from portal.stores.reading_history.models import HistoryEntry
from tests.factories import SECRET, decides, make_patron, now, publish, standard_catalog

pytestmark = pytest.mark.usefixtures("db")


async def attempt(coroutine) -> str:
    try:
        await coroutine
    except ConsentError as failure:
        return "refused" if failure.code == "no_current_consent" else failure.code
    return "ok"


async def test_concurrent_yes_no_and_loans_leave_a_consistent_state() -> None:
    await publish(standard_catalog())
    patron = await make_patron()
    await decides(patron.id, "reading_history", Decision.YES)
    loan = [reading_history.Loan("Kindred", "Octavia E. Butler", date(2026, 5, 5))]

    def answer(decision: Decision, view: reads.ServiceOverview):
        # Both answers come from forms rendered from the same view, as in two browser tabs.
        return decisions.decide(
            patron.id,
            "reading_history",
            decision,
            notice_version_id=view.notice.id,
            expected_revision=view.revision,
            locale="en",
            now=now(),
            timezone="UTC",
        )

    for _ in range(10):
        view = await reads.service_view(patron.id, "reading_history", "en")
        results = await asyncio.gather(
            attempt(answer(Decision.NO, view)),
            attempt(answer(Decision.YES, view)),
            *(attempt(reading_history.record_loans(patron.id, loan, now=now())) for _ in range(3)),
        )
        state = await ConsentState.get(patron_id=patron.id)
        # The "no" and the "yes" came from forms of the same revision: exactly one applied
        # or the "yes" found its outcome already in place.
        assert results[0] in ("ok", "stale_form")
        kept = await HistoryEntry.filter(patron_id=patron.id).count()
        if not state.granted:
            assert kept == 0, "withdrawn, yet history survived"
            await decides(patron.id, "reading_history", Decision.YES)  # on again, next round

    events = await ConsentEvent.filter(patron_id=patron.id)
    withdrawals = [e for e in events if e.kind == EventKind.WITHDRAWN]
    erasures = [e for e in events if e.kind == EventKind.ERASED]
    assert len(withdrawals) == len(erasures)  # every withdrawal has its erasure, same transaction
    revisions = await ConsentState.get(patron_id=patron.id)
    state_changes = [e for e in events if e.kind != EventKind.ERASED]
    assert revisions.revision == len(state_changes)  # one event per state change, no more


async def test_rotating_a_client_while_another_process_writes_is_never_refused_as_locked(
    engine: str, database_url: str
) -> None:
    """`portal api-client rotate` reads the client, then writes it. In a deferred SQLite
    transaction the read takes a snapshot, and a commit by the busy server in between makes
    the write fail at once with "database is locked" (no busy wait helps a stale snapshot)."""
    if engine != "sqlite":
        pytest.skip("PostgreSQL locks the row; the deferred snapshot is SQLite's")

    await api.add_client(SECRET, "ils", frozenset({Scope.CONSENT_READ}), now=now())
    await api.add_client(SECRET, "busy", frozenset({Scope.CONSENT_READ}), now=now())
    stop = threading.Event()

    def busy_server() -> None:
        # Another process's writes, one short transaction after another (tokens issued).
        server = sqlite3.connect(database_url.removeprefix("sqlite://"), timeout=5)
        try:
            while not stop.is_set():
                server.execute(
                    "UPDATE api_client SET last_token_at = ? WHERE name = 'busy'",
                    (now().isoformat(),),
                )
                server.commit()
                # A server's writes come between requests, not back to back for ever: a
                # loop that takes the lock again the instant it lets go can starve any other
                # writer past its busy timeout (SQLite's busy handler is not a queue).
                time.sleep(0.001)
        finally:
            server.close()

    writer = threading.Thread(target=busy_server)
    writer.start()
    try:
        for _ in range(40):
            await api.rotate_client(SECRET, "ils", None, now=now())
    finally:
        stop.set()
        writer.join()
