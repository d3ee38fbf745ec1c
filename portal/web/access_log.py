"""The portal's own access log: method, path, status and time — never the client address,
the query string, a cookie or anything a patron typed (docs/PROMISES.md promise 7).

As `portal serve` runs it (LOGGING_CONFIG), a request only hands its four values to a
bounded queue; a background thread formats them and writes what came in at least once a
second, in one write. A crash loses at most the last second's lines; a full disk or a log
reader that stops reading never holds up a request: once the queue is full, lines are
dropped and counted, and the log says so once it can be written again."""

from __future__ import annotations

import collections
import logging
import sys
import threading
import time
from typing import TextIO

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("portal.access")

# The portal's log lines name no source file, thread or process, so the logging module need
# not work them out for every record (the "Optimization" section of Python's logging HOWTO).
# A stack walk per request is most of what an access log line costs.
logging._srcfile = None
logging.logThreads = False
logging.logProcesses = False
logging.logMultiprocessing = False
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LINE_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# At most a second of lines is lost in a crash: the writer wakes at least this often.
FLUSH_SECONDS = 1.0
# Lines waiting for the writer, at most: a few seconds of a busy worker, a few MB of memory.
QUEUED_LINES = 20_000
# At exit, a stream that stays blocked is given this long, then left.
GIVE_UP_SECONDS = 5.0

LOGGING_CONFIG: dict[str, object] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": LINE_FORMAT}},
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": "plain"},
        # The same lines on the same stream, written by a background thread.
        "access": {"()": "portal.web.access_log.QueuedAccessLog"},
    },
    "loggers": {
        "portal": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        "portal.access": {"handlers": ["access"], "level": "INFO", "propagate": False},
        # uvicorn's own access log prints the client address: it stays off.
        "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
        "uvicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
}


def _timestamp(when: float) -> str:
    """What logging.Formatter writes for %(asctime)s: local time, then milliseconds."""
    seconds = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))
    return f"{seconds},{int((when - int(when)) * 1000):03d}"


class QueuedAccessLog(logging.Handler):
    """A handler for portal.access whose lines are written by a thread of its own. Requests
    hand it their values (`add`, through log_request) rather than a LogRecord: the record,
    its formatting and the write are what the line used to cost each request. Lines read
    exactly as the "plain" format writes them."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        capacity: int = QUEUED_LINES,
        flush_seconds: float = FLUSH_SECONDS,
    ) -> None:
        super().__init__()
        self.stream = stream if stream is not None else sys.stderr
        self.capacity = capacity
        self.flush_seconds = flush_seconds
        # deque's append and popleft are atomic: the request side takes no lock.
        self._lines: collections.deque[tuple[float, str, str, int, float] | tuple[float, str]]
        self._lines = collections.deque()
        self._refused = 0  # counted by requests: the queue was full
        self._unwritten = 0  # counted by the writer: the stream refused them
        self._reported = 0  # of those, said in the log so far
        self._wake = threading.Event()
        self._closing = False
        self._writing = threading.Lock()  # one writer at a time: the thread, or flush()
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()

    @property
    def dropped(self) -> int:
        """Lines lost since the start: the queue was full, or writing them failed."""
        return self._refused + self._unwritten

    def add(self, method: str, route: str, status: int, milliseconds: float) -> None:
        """The request's share: no formatting, no lock, no I/O."""
        self._queue((time.time(), method, route, status, milliseconds))

    def emit(self, record: logging.LogRecord) -> None:
        # Anything else logged to portal.access goes the same way, already worded.
        self._queue((record.created, record.getMessage()))

    def _queue(self, line: tuple[float, str, str, int, float] | tuple[float, str]) -> None:
        queued = len(self._lines)
        if queued >= self.capacity:
            self._refused += 1  # only request-side code counts here, the writer elsewhere
            return
        self._lines.append(line)
        if self._thread is None:
            self._start()
        elif queued == self.capacity // 2:
            self._wake.set()  # a burst: write now rather than at the next second

    def _start(self) -> None:
        with self._starting:
            if self._thread is None and not self._closing:
                self._thread = threading.Thread(
                    target=self._run, name="portal-access-log", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while not self._closing:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            with self._writing:  # a blocked stream blocks this thread, and only it
                self._write_queued()

    def flush(self) -> None:
        """Writes every line queued so far (logging calls it at exit); gives up after a few
        seconds on a stream that stays blocked."""
        if self._writing.acquire(timeout=GIVE_UP_SECONDS):
            try:
                self._write_queued()
            finally:
                self._writing.release()

    def _write_queued(self) -> None:
        lines = self._lines
        text: list[str] = []
        second, prefix = -1, ""
        # Only what is queued now: lines that keep coming wait for the next turn.
        for _ in range(len(lines)):
            item = lines.popleft()
            when = item[0]
            if int(when) != second:  # one strftime per second of lines, not one per line
                second = int(when)
                prefix = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))
            stamp = f"{prefix},{int((when - second) * 1000):03d} INFO portal.access "
            if len(item) == 5:
                text.append(f"{stamp}{item[1]} {item[2]} {item[3]} {item[4]:.1f}ms\n")
            else:
                text.append(f"{stamp}{item[1]}\n")
        lost = self.dropped - self._reported
        if lost:
            text.append(
                f"{_timestamp(time.time())} WARNING portal.access {lost} access log lines "
                f"were dropped ({self._reported + lost} since the start): the log could not "
                "be written fast enough\n"
            )
        if not text:
            return
        try:
            self.stream.write("".join(text))
            self.stream.flush()
        except (OSError, ValueError):
            # A full disk, a closed pipe: these lines are lost, counted, and said once the
            # log can be written again. Nothing is raised into a request or the thread.
            self._unwritten += len(text) - (1 if lost else 0)
            return
        self._reported += lost

    def close(self) -> None:
        """Stops the thread and writes what is left (logging calls it at exit)."""
        self._closing = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=GIVE_UP_SECONDS)
        self.flush()
        super().close()


def _queued() -> QueuedAccessLog | None:
    handlers = logger.handlers
    if len(handlers) == 1 and type(handlers[0]) is QueuedAccessLog and not logger.disabled:
        return handlers[0]
    return None


def write_queued_lines() -> None:
    """Called when the app stops. uvicorn ends a worker stopped by SIGTERM by raising the
    signal again once it has shut down, so the process ends without Python's exit handlers
    (logging's among them): the lines still queued are written here, or they were lost."""
    queued = _queued()
    if queued is not None:
        queued.flush()


def log_request(method: str, route: str | None, status: int, started: float) -> None:
    """`route` is the route's template, never the raw path: nothing a client typed reaches the
    log (no forged lines from an encoded newline, no card number in an unknown path).
    `started` is the request's time.perf_counter()."""
    milliseconds = (time.perf_counter() - started) * 1000
    method = method if method in KNOWN_METHODS else "OTHER"
    route = route or "(no route)"
    queued = _queued()
    if queued is not None and logger.isEnabledFor(logging.INFO):
        queued.add(method, route, status, milliseconds)
    else:  # any other logging set-up (the tests', an operator's): an ordinary record
        logger.info("%s %s %s %.1fms", method, route, status, milliseconds)


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            log_request(scope["method"], getattr(scope.get("route"), "path", None), status, started)
