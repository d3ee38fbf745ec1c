"""The portal's own access log: method, path, status and time — never the client address,
the query string, a cookie or anything a patron typed (docs/PROMISES.md promise 7)."""

from __future__ import annotations

import logging
import time

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

LOGGING_CONFIG: dict[str, object] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "portal": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        # uvicorn's own access log prints the client address: it stays off.
        "uvicorn.access": {"handlers": [], "level": "CRITICAL", "propagate": False},
        "uvicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
    },
}


def log_request(method: str, route: str | None, status: int, started: float) -> None:
    """`route` is the route's template, never the raw path: nothing a client typed reaches the
    log (no forged lines from an encoded newline, no card number in an unknown path).
    `started` is the request's time.perf_counter()."""
    logger.info(
        "%s %s %s %.1fms",
        method if method in KNOWN_METHODS else "OTHER",
        route or "(no route)",
        status,
        (time.perf_counter() - started) * 1000,
    )


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
