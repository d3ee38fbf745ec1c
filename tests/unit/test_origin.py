"""The cross-site guard (portal/web/origin.py) on its own: the middleware around a tiny app
that says "passed", driven with hand-made ASGI requests, so every header is exactly as
written here (or missing). The portal is served at http://portal.example."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from starlette.responses import PlainTextResponse
from starlette.types import Message, Receive, Scope, Send

from portal.web.origin import CrossOriginGuard

HOST = "portal.example"
SAME = f"http://{HOST}"
FORM = ("content-type", "application/x-www-form-urlencoded")
HTMX = ("hx-request", "true")


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    reached_the_app: bool


async def ask(
    method: str,
    *headers: tuple[str, str],
    path: str = "/services/newsletter/decision",
    scheme: str = "http",
    host: str | None = HOST,
) -> Answer:
    reached: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        reached.append(scope["path"])
        await PlainTextResponse("passed")(scope, receive, send)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    with_host = [("host", host)] if host is not None else []
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": scheme,
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.encode(), v.encode()) for k, v in [*with_host, *headers]],
        "client": ("127.0.0.1", 50000),
        "server": (HOST, 80),
    }
    await CrossOriginGuard(app)(scope, receive, send)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Answer(sent[0]["status"], body, bool(reached))


def site(value: str) -> tuple[str, str]:
    return ("sec-fetch-site", value)


def origin(value: str) -> tuple[str, str]:
    return ("origin", value)


# Browsers that send Fetch Metadata are believed: it says where the request came from.
FETCH_METADATA = [
    pytest.param([site("same-origin")], True, id="same-origin"),
    pytest.param([site("none")], True, id="none: typed, bookmarked or from another app"),
    pytest.param([site("same-site")], False, id="same-site: a sibling subdomain"),
    pytest.param([site("cross-site")], False, id="cross-site"),
    pytest.param([site("cross-site"), origin(SAME)], False, id="cross-site wins over an Origin"),
    pytest.param([site("same-origin"), origin("null")], True, id="same-origin wins over null"),
    pytest.param([site("Same-Origin")], False, id="an unknown value is cross-site"),
    pytest.param([site("")], False, id="an empty value is cross-site"),
]

# Older browsers send only Origin: it must be this host, by the request's scheme or https.
ORIGIN_ONLY = [
    pytest.param([origin(SAME)], "http", HOST, True, id="same scheme, host and port"),
    pytest.param([origin(f"https://{HOST}")], "http", HOST, True, id="https behind a proxy"),
    pytest.param([origin(SAME)], "https", HOST, False, id="http origin to an https portal"),
    pytest.param([], "http", HOST, False, id="neither header"),
    pytest.param([origin("null")], "http", HOST, False, id="null origin (sandbox, file)"),
    pytest.param([origin("")], "http", HOST, False, id="empty origin"),
    pytest.param([origin("http://evil.example")], "http", HOST, False, id="another host"),
    pytest.param([origin(f"http://{HOST}.evil.example")], "http", HOST, False, id="host suffix"),
    pytest.param([origin(f"http://www.{HOST}")], "http", HOST, False, id="a subdomain"),
    pytest.param([origin(f"{SAME}:8080")], "http", HOST, False, id="another port"),
    pytest.param([origin(SAME)], "http", f"{HOST}:8080", False, id="port left out"),
    pytest.param([origin(f"{SAME}:8080")], "http", f"{HOST}:8080", True, id="same port"),
    pytest.param([origin(f"{SAME}/")], "http", HOST, False, id="a path is not an origin"),
    pytest.param([origin(SAME)], "http", None, False, id="no host header"),
]


@pytest.mark.parametrize(("headers", "passes"), FETCH_METADATA)
async def test_a_post_passes_only_from_the_portals_own_pages_by_fetch_metadata(
    headers: list[tuple[str, str]], passes: bool
) -> None:
    answer = await ask("POST", FORM, *headers)
    assert answer.reached_the_app is passes
    assert answer.status == (200 if passes else 403)


@pytest.mark.parametrize(("headers", "scheme", "host", "passes"), ORIGIN_ONLY)
async def test_without_fetch_metadata_a_post_passes_only_from_the_same_origin(
    headers: list[tuple[str, str]], scheme: str, host: str | None, passes: bool
) -> None:
    answer = await ask("POST", FORM, *headers, scheme=scheme, host=host)
    assert answer.reached_the_app is passes
    assert answer.status == (200 if passes else 403)


async def test_a_refusal_is_a_plain_403_and_the_app_never_runs() -> None:
    answer = await ask("POST", FORM, site("cross-site"))
    assert answer == Answer(403, b"Cross-site request refused.", reached_the_app=False)


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS"])
async def test_safe_methods_pass_from_anywhere(method: str) -> None:
    answer = await ask(method, site("cross-site"), origin("http://evil.example"))
    assert answer.reached_the_app


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "PROPFIND"])
async def test_every_unsafe_method_is_guarded(method: str) -> None:
    refused = await ask(method, site("cross-site"))
    allowed = await ask(method, site("same-origin"))
    assert (refused.status, allowed.status) == (403, 200)


@pytest.mark.parametrize(
    ("headers", "passes"),
    [
        pytest.param([HTMX, site("same-origin"), origin(SAME)], True, id="from the page"),
        pytest.param([HTMX, origin(SAME)], True, id="older browser, same origin"),
        pytest.param([HTMX, site("cross-site"), origin(SAME)], False, id="cross-site"),
        pytest.param([HTMX], False, id="HX-Request alone is no credential"),
        pytest.param([HTMX, ("hx-target", "main"), origin("null")], False, id="null origin"),
    ],
)
async def test_htmx_requests_are_judged_like_any_other(
    headers: list[tuple[str, str]], passes: bool
) -> None:
    answer = await ask("POST", *headers)
    assert answer.reached_the_app is passes


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain"],
)
async def test_a_form_another_site_submits_is_refused_whatever_its_encoding(
    content_type: str,
) -> None:
    """The three encodings a cross-site form may send without a CORS preflight."""
    answer = await ask(
        "POST", ("content-type", content_type), site("cross-site"), origin("http://evil.example")
    )
    assert answer.status == 403


@pytest.mark.parametrize(
    ("path", "passes"),
    [
        pytest.param("/api/v1/deletions/msg_1/ack", True, id="the integration API"),
        pytest.param("/api/v1/checks", True, id="an API check"),
        pytest.param("/oauth/token", True, id="the OAuth token endpoint"),
        pytest.param("/api", False, id="/api without its slash"),
        pytest.param("/apiary", False, id="a path that only starts with api"),
        pytest.param("/oauth", False, id="/oauth without its slash"),
        pytest.param("/staff/api/x", False, id="api further down a path"),
        pytest.param("/API/v1/checks", False, id="the prefix is case-sensitive"),
        pytest.param("/signin", False, id="a page"),
    ],
)
async def test_only_the_machine_prefixes_are_exempt(path: str, passes: bool) -> None:
    """Clients of the API send a bearer token or client credentials, never a cookie, and no
    Origin: they are not refused there, and only there."""
    answer = await ask("POST", site("cross-site"), path=path)
    assert answer.reached_the_app is passes


async def test_a_machine_client_sending_no_browser_headers_reaches_the_api() -> None:
    answer = await ask("POST", ("authorization", "Bearer x"), path="/oauth/token")
    assert answer.reached_the_app


async def test_other_connection_types_pass_untouched() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(message: Message) -> None:
        """Nothing is sent."""

    await CrossOriginGuard(app)({"type": "lifespan"}, receive, send)
    assert seen == ["lifespan"]
