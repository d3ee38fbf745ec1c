"""The served access log's writer (portal.web.access_log.QueuedAccessLog): the same lines as
the logging format, written by its own thread at least once a second, and a stream that
blocks or fails costs lines, counted and said, never a request's time."""

from __future__ import annotations

import errno
import io
import logging
import threading
import time

import pytest

from portal.web import access_log
from portal.web.access_log import LINE_FORMAT, QueuedAccessLog

ROUTE = "/api/v1/consent-check"


class BlockedStream(io.StringIO):
    """A log reader that stopped reading: every write waits until `release` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def write(self, text: str) -> int:
        self.entered.set()
        self.release.wait(timeout=30)
        return super().write(text)


class FullDisk(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.full = True

    def write(self, text: str) -> int:
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device")
        return super().write(text)


def test_a_queued_line_reads_as_the_logging_format_writes_it(monkeypatch) -> None:
    when = 1_796_000_000.0456  # a time with milliseconds, in the local time zone
    monkeypatch.setattr(access_log.time, "time", lambda: when)
    stream = io.StringIO()
    handler = QueuedAccessLog(stream)
    handler.add("POST", ROUTE, 200, 1.25)
    handler.flush()
    record = logging.LogRecord("portal.access", logging.INFO, "", 0, "%s %s %s %.1fms",
                               ("POST", ROUTE, 200, 1.25), None)  # fmt: skip
    record.created, record.msecs = when, 45.0
    assert stream.getvalue() == logging.Formatter(LINE_FORMAT).format(record) + "\n"
    handler.close()


def test_lines_are_written_within_a_second_without_a_flush() -> None:
    stream = io.StringIO()
    handler = QueuedAccessLog(stream)
    try:
        handler.add("GET", "/privacy", 200, 3.0)
        asked = time.monotonic()
        while "GET /privacy 200 3.0ms" not in stream.getvalue():
            # A second, and some slack for a busy machine scheduling the thread.
            assert time.monotonic() - asked < 1.9, "the line was not written within a second"
            time.sleep(0.01)
    finally:
        handler.close()


def test_a_blocked_stream_never_holds_up_a_request_and_the_dropped_lines_are_said() -> None:
    stream = BlockedStream()
    handler = QueuedAccessLog(stream, capacity=100, flush_seconds=0.01)
    handler.add("GET", "/first", 200, 1.0)
    assert stream.entered.wait(timeout=5)  # the writer is stuck in the stream
    started = time.perf_counter()
    for _ in range(1000):
        handler.add("POST", ROUTE, 200, 1.0)
    assert time.perf_counter() - started < 0.1  # a thousand requests, not held up
    assert handler.dropped == 900  # the queue holds 100; the rest are counted
    stream.release.set()
    handler.close()
    written = stream.getvalue()
    assert written.count(f"POST {ROUTE} 200") == 100
    warnings = [line for line in written.splitlines() if "WARNING" in line]
    assert len(warnings) == 1  # said once, with the count
    assert "900 access log lines were dropped" in warnings[0]


def test_a_full_disk_loses_lines_without_raising_and_says_so_once_it_frees() -> None:
    stream = FullDisk()
    handler = QueuedAccessLog(stream, flush_seconds=3600)
    handler.add("POST", ROUTE, 200, 1.0)
    handler.add("POST", ROUTE, 400, 1.0)
    handler.flush()  # the write fails: nothing raised
    assert handler.dropped == 2
    stream.full = False
    handler.add("POST", ROUTE, 200, 2.0)
    handler.flush()
    lines = stream.getvalue().splitlines()
    assert f"POST {ROUTE} 200 2.0ms" in lines[0]
    assert "WARNING portal.access 2 access log lines were dropped" in lines[1]
    handler.flush()
    assert len(stream.getvalue().splitlines()) == 2  # said once, not again
    handler.close()


def test_lines_left_in_the_queue_are_written_when_logging_shuts_down() -> None:
    stream = io.StringIO()
    handler = QueuedAccessLog(stream, flush_seconds=3600)
    handler.add("GET", "/healthz", 200, 0.1)
    handler.close()  # what logging.shutdown does at exit
    assert "GET /healthz 200 0.1ms" in stream.getvalue()


@pytest.fixture
def served_logging() -> QueuedAccessLog:
    """portal.access as LOGGING_CONFIG sets it up, on a stream of the test's own; the
    logger's own set-up is put back afterwards."""
    access = logging.getLogger("portal.access")
    saved = (access.handlers[:], access.level, access.propagate)
    handler = QueuedAccessLog(io.StringIO(), flush_seconds=3600)
    access.handlers[:] = [handler]
    access.setLevel(logging.INFO)
    access.propagate = False
    yield handler
    handler.close()
    access.handlers[:], access.level, access.propagate = saved[0], saved[1], saved[2]


def test_served_requests_hand_their_line_to_the_queue(served_logging: QueuedAccessLog) -> None:
    access_log.log_request("BREW", None, 418, time.perf_counter())
    assert served_logging.stream.getvalue() == ""  # not written by the request
    served_logging.flush()
    assert " INFO portal.access OTHER (no route) 418 " in served_logging.stream.getvalue()


def test_portal_serve_sets_the_queued_writer_up_for_the_access_log() -> None:
    config = access_log.LOGGING_CONFIG
    assert isinstance(config["handlers"], dict)
    assert isinstance(config["loggers"], dict)
    (name,) = config["loggers"]["portal.access"]["handlers"]
    assert config["handlers"][name]["()"] == "portal.web.access_log.QueuedAccessLog"
