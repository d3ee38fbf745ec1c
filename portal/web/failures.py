"""A request that fails with a bug is logged on one line: the exception's type, the route's
template and where in the code it was raised. Never the exception's text nor its traceback
as Python prints it: a driver's or a validator's message quotes the value it was given (a
path parameter, card digits, an encoded newline that would start a forged log line), and the
server prints both when an exception reaches it. So none does: this layer, outside
Starlette's own (which has already answered 500), keeps it (docs/PROMISES.md promise 7)."""

from __future__ import annotations

import logging
import traceback
from pathlib import PurePath

from starlette.types import ASGIApp, Receive, Scope, Send

from portal.web.access_log import KNOWN_METHODS

logger = logging.getLogger("portal.errors")
FRAMES = 8  # the innermost frames of each exception, enough to find the line


def _where(error: BaseException) -> str:
    frames = traceback.extract_tb(error.__traceback__)[-FRAMES:]
    return " < ".join(
        f"{PurePath(frame.filename).name}:{frame.lineno} {frame.name}" for frame in reversed(frames)
    )


def failure_line(error: BaseException, scope: Scope) -> str:
    """`RuntimeError at views.py:12 broken < routing.py:…; from KeyError at …`: each
    exception of the chain by its type and frames, nothing it says."""
    chain: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        kind = type(current)
        chain.append(f"{kind.__module__}.{kind.__qualname__} at {_where(current)}")
        current = current.__cause__ or (
            None if current.__suppress_context__ else current.__context__
        )
    method = scope.get("method")
    route = getattr(scope.get("route"), "path", None) or "(no route)"
    return (
        f"server error in {method if method in KNOWN_METHODS else 'OTHER'} {route}: "
        + "; from ".join(chain)
    )


def log_failure(error: BaseException, scope: Scope) -> None:
    logger.error("%s", failure_line(error, scope))


class FailureLog:
    """Outermost: what Starlette's server-error layer raises on after its 500 stops here."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        except Exception as error:  # logged by its type and place, and not raised on
            log_failure(error, scope)
