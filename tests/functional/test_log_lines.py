"""No byte a client sent reaches a log line (docs/PROMISES.md promise 7): every route of the
app, as a caller who reaches it, with CR, LF, NEL, U+2028 and card-shaped digits in each path
parameter and in every query parameter the portal reads. Every logger is captured at INFO
(the portal's own loggers log at INFO, the others at WARNING), and what the app raises is
logged as the server would log it (uvicorn: "Exception in ASGI application" with the
traceback), so a traceback that quotes the input is caught too."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from urllib.parse import quote, urlencode

import pytest
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from portal.settings import Settings
from tests.factories import publish, standard_catalog, system_table
from tests.functional.test_route_access import (
    ACCESS,
    ANONYMOUS,
    EVERYONE,
    PATH_PARAMS,
    ROLES,
    _headers,
    _people,
)
from tests.support import portal_client

CARD = "4111111111111111"
FORGED = "FORGEDLINE"
BREAKS = ("\r\n", "\n", "\r", "\x85", "\u2028")
HOSTILE = (
    *(f"ok{line_break}{FORGED} GET /admin 200 {CARD}" for line_break in BREAKS),
    "4111 1111 1111 1111",
    CARD * 3,  # past every column's length
    f"{CARD}\u2029{FORGED}",
)
# Every query parameter a page or the API reads, and one nobody reads.
QUERY_KEYS = ("before", "action", "since", "until", "year", "for", "done", "system",
              "status", "after", "limit", "code", "state", "error", "error_description",
              "next", "q")  # fmt: skip
SEPARATORS = re.compile(r"[\r\n\x85\u2028\u2029\x0b\x0c\x1c\x1d\x1e]")


@pytest.fixture(params=[False, True], ids=["production", "development"])
def portal_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    return replace(settings, dev_mode=request.param)


def as_the_server_logs(app: ASGIApp) -> ASGIApp:
    """What reaches the server is logged as uvicorn logs it, traceback and all."""

    async def server(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await app(scope, receive, send)
        except Exception as error:
            logging.getLogger("uvicorn.error").error(
                "Exception in ASGI application\n", exc_info=error
            )

    return server


def _paths(route: Route) -> list[str]:
    """The route with each parameter in turn holding each hostile value, the others valid."""
    names = list(route.param_convertors)
    if not names:
        return [route.path]

    def filled(values: dict[str, str]) -> str:
        return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: values[m.group(1)], route.path)

    valid = {name: quote(str(PATH_PARAMS[name]), safe="") for name in names}
    return [filled({**valid, name: quote(value, safe="")}) for name in names for value in HOSTILE]


def _logged(records: list[logging.LogRecord]) -> list[str]:
    formatter = logging.Formatter()
    texts = []
    for record in records:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + formatter.formatException(record.exc_info)
        if record.stack_info:
            text += "\n" + record.stack_info
        texts.append(text)
    return texts


async def test_no_byte_a_client_sent_reaches_the_log(portal, caplog) -> None:
    await publish(standard_catalog() + system_table("ils", "https://ils.library.example/hooks"))
    people = await _people(portal.client)
    app = as_the_server_logs(portal.app)
    caplog.set_level(logging.INFO)
    requests, server_errors = 0, []
    for route in portal.app.routes:
        if not isinstance(route, Route):
            continue
        reaching = ACCESS[route.name]
        role = (
            ANONYMOUS
            if reaching is EVERYONE
            else next((r for r in ROLES if r in reaching), ANONYMOUS)
        )
        for method in sorted((route.methods or set()) - {"HEAD"}):
            for index, path in enumerate(_paths(route)):
                value = HOSTILE[index % len(HOSTILE)]
                query = urlencode({key: value for key in QUERY_KEYS})
                async with portal_client(app, **await _headers(people, role)) as client:
                    answer = await client.request(method, f"{path}?{query}")
                requests += 1
                if answer.status_code == 500:  # 503: no receipt keys in production, said so
                    server_errors.append((route.name, method, path))
    # The portal's and the server's records; the test client's own (httpx) are not the log.
    records = [record for record in caplog.records if not record.name.startswith("httpx")]
    texts = _logged(records)
    # The access log wrote a line per request: the records were captured, not lost.
    assert sum(record.name == "portal.access" for record in records) >= requests
    leaked = [text for text in texts if FORGED in text or CARD in text or "4111 1111" in text]
    assert leaked == [], leaked[:3]
    broken = [text for text in texts if SEPARATORS.search(text)]
    assert broken == [], broken[:3]
    assert server_errors == []


async def test_a_bug_is_logged_by_its_type_and_route_never_by_what_it_says(portal, caplog) -> None:
    async def broken(request):  # type: ignore[no-untyped-def]
        try:
            int(request.path_params["value"])  # quotes the value in its message
        except ValueError as error:
            raise RuntimeError(f"could not read {request.url.path}") from error

    portal.app.router.routes.append(Route("/api/v1/broken/{value:str}", broken, methods=["GET"]))
    caplog.set_level(logging.INFO)
    async with portal_client(as_the_server_logs(portal.app)) as client:
        answer = await client.get(f"/api/v1/broken/ok%0D%0A{FORGED}%20{CARD}")
    assert answer.status_code == 500
    records = [record for record in caplog.records if not record.name.startswith("httpx")]
    texts = _logged(records)
    assert [text for text in texts if FORGED in text or CARD in text] == []
    [failure] = [record for record in records if record.name == "portal.errors"]
    line = failure.getMessage()
    assert line.startswith("server error in GET /api/v1/broken/{value:str}: builtins.RuntimeError")
    assert "; from builtins.ValueError at " in line
    assert "test_log_lines.py:" in line  # where it was raised
    assert not SEPARATORS.search(line)
