"""A real OpenID Connect provider for the staff sign-in tests (tests/oidc/provider.mjs, on
node-oidc-provider) and a driver that plays the person at its pages: follow the redirects,
fill the login form, confirm a logout. Plain functions; the fixtures live with their tests."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx2 as httpx
import pytest

from tests.support import free_port, ready_line, stop_process

SCRIPT = Path(__file__).parent / "oidc" / "provider.mjs"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0
MAX_STEPS = 12


@dataclass(frozen=True)
class Provider:
    issuer: str
    client_id: str
    client_secret: str
    redirect_uri: str

    @property
    def metadata_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"


@contextlib.contextmanager
def running_provider(
    redirect_uri: str,
    *,
    misbehave: str | None = None,
    post_logout_redirect_uri: str | None = None,
) -> Iterator[Provider]:
    """A fresh provider process with one confidential client (PKCE required) for the portal.
    misbehave="audience" or "expired" makes every ID token wrong in that way."""
    module = os.environ.get("PORTAL_TEST_OIDC_PROVIDER")
    if not module or not Path(module).is_file():
        pytest.fail("oidc-provider is missing: run the tests with `make test`")
    client_id, client_secret = "library-portal", secrets.token_urlsafe(32)
    env = {
        **os.environ,
        "OIDC_PROVIDER_MODULE": module,
        "PORT": str(free_port()),
        "CLIENT_ID": client_id,
        "CLIENT_SECRET": client_secret,
        "REDIRECT_URI": redirect_uri,
        "POST_LOGOUT_REDIRECT_URI": post_logout_redirect_uri or "",
        "MISBEHAVE": misbehave or "",
    }
    process = subprocess.Popen(
        ["node", str(SCRIPT)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        issuer = ready_line(
            process, "the oidc provider", _forward_stderr(process), seconds=START_TIMEOUT
        )
        yield Provider(issuer, client_id, client_secret, redirect_uri)
    finally:
        stop_process(process, STOP_TIMEOUT)


def _forward_stderr(process: subprocess.Popen[bytes]) -> Callable[[], str]:
    """Drains the provider's stderr so it never blocks. Its start-up warnings are dropped; any
    other line (a server_error and its stack) goes to file descriptor 2, which pytest captures
    and shows with the test that failed. Returns what it said last, for a failed start."""
    assert process.stderr is not None
    stream, last = process.stderr, deque[str](maxlen=40)

    def forward() -> None:
        for raw in stream:
            line = raw.decode(errors="replace")
            last.append(line)
            if not line.startswith("oidc-provider WARNING:"):
                with contextlib.suppress(OSError):
                    os.write(2, f"oidc provider: {line}".encode())
        stream.close()

    thread = threading.Thread(target=forward, name="oidc-provider-stderr", daemon=True)
    thread.start()

    def said() -> str:
        thread.join(STOP_TIMEOUT)
        return "".join(last)

    return said


# The driver: what a person's browser does at the provider. It talks to the provider over real
# HTTP with a client of its own (never the portal's in-process ASGI client), whose cookie jar
# is the person's provider session, and it never follows a redirect into the portal.


class UnexpectedPage(AssertionError):
    """The provider showed something a person could not get past (an error, a consent page)."""


@dataclass(frozen=True)
class Form:
    action: str
    fields: dict[str, str]


@dataclass(frozen=True)
class LoginPage:
    """The provider's login form, met on the way from an authorization request."""

    form: Form
    redirect_uri: str


async def authorize(authorize_url: str, provider_client: httpx.AsyncClient) -> str | LoginPage:
    """Open an authorization request as a browser does: the URL back at the portal's
    redirect_uri (with code and state, or error) when the provider needs nobody, or its login
    page when a person has to log in."""
    redirect_uri = _query_value(authorize_url, "redirect_uri")
    if redirect_uri is None:
        raise ValueError(f"{authorize_url} has no redirect_uri")
    return await _browse(provider_client, "GET", authorize_url, {}, stop_at=redirect_uri)


async def submit_login(page: LoginPage, login: str, provider_client: httpx.AsyncClient) -> str:
    """Type a login (any password) into the login page; the URL back at the portal."""
    fields = {**page.form.fields, "login": login, "password": "any password"}
    result = await _browse(
        provider_client, "POST", page.form.action, fields, stop_at=page.redirect_uri
    )
    if isinstance(result, LoginPage):
        raise UnexpectedPage(f"the provider asked for a login again after {login!r}")
    return result


async def log_in(authorize_url: str, login: str, provider_client: httpx.AsyncClient) -> str:
    """A person logs in at the provider as `login`: the URL back at the portal's redirect_uri,
    with code and state, not followed. Fails if the provider let them through without asking
    (use `authorize` to test a silent sign-in)."""
    page = await authorize(authorize_url, provider_client)
    if not isinstance(page, LoginPage):
        raise UnexpectedPage(
            f"the provider did not ask for a login (its session is still signed in): {page}"
        )
    return await submit_login(page, login, provider_client)


async def log_out(end_session_url: str, provider_client: httpx.AsyncClient) -> str:
    """Follow an end-session (logout) URL and confirm the logout the provider asks about: the
    redirect to the post_logout_redirect_uri (not followed) or the provider's own success page."""
    stop_at = _query_value(end_session_url, "post_logout_redirect_uri")
    result = await _browse(provider_client, "GET", end_session_url, {}, stop_at=stop_at)
    if isinstance(result, LoginPage):
        raise UnexpectedPage("the provider showed its login page instead of logging out")
    return result


async def _browse(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    fields: dict[str, str],
    *,
    stop_at: str | None,
) -> str | LoginPage:
    for _ in range(MAX_STEPS):
        if method == "POST":
            response = await client.post(url, data=fields, follow_redirects=False)
        else:
            response = await client.get(url, follow_redirects=False)
        method, fields = "GET", {}
        if response.is_redirect:
            url = urljoin(url, response.headers["location"])
            if stop_at is not None and url.startswith(stop_at):
                return url
            continue
        if response.status_code != 200:
            raise UnexpectedPage(f"{response.status_code} from {url}: {_text(response.text)}")
        forms = _forms(response.text, url)
        login = next((form for form in forms if "login" in form.fields), None)
        if login is not None and stop_at is not None:
            return LoginPage(login, stop_at)
        if not forms and urlsplit(url).path == "/session/end/success":
            return url  # a logout that goes nowhere else ends on the provider's own page
        if len(forms) != 1:
            raise UnexpectedPage(f"the provider showed {url}: {_text(response.text)}")
        # One form left to submit: the logout confirmation ("Yes, sign me out"), or a page
        # that submits itself with JavaScript (the logout before another account logs in).
        (form,) = forms
        if stop_at is not None and form.action.startswith(stop_at):
            raise UnexpectedPage("response_mode=form_post is not supported by this driver")
        if "xsrf" not in form.fields:
            raise UnexpectedPage(f"the provider showed a form at {url}: {_text(response.text)}")
        method, url, fields = "POST", form.action, {"logout": "yes", **form.fields}
    raise UnexpectedPage(f"more than {MAX_STEPS} steps at the provider, last at {url}")


def _query_value(url: str, name: str) -> str | None:
    values = parse_qs(urlsplit(url).query).get(name)
    return values[0] if values else None


def _text(html: str, size: int = 600) -> str:
    parser = _TextParser()
    parser.feed(html)
    return " ".join(parser.parts)[:size]


class _TextParser(HTMLParser):
    """What a page says, for error messages: its text without styles and scripts."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hidden += tag in ("style", "script")

    def handle_endtag(self, tag: str) -> None:
        self.hidden -= tag in ("style", "script")

    def handle_data(self, data: str) -> None:
        if not self.hidden and data.strip():
            self.parts.append(data.strip())


class _FormParser(HTMLParser):
    """Forms and the named inputs that belong to them, nested or by the `form` attribute."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base
        self.forms: list[tuple[str | None, str, dict[str, str]]] = []
        self.open: int | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "form":
            action = urljoin(self.base, attributes.get("action") or self.base)
            self.forms.append((attributes.get("id"), action, {}))
            self.open = len(self.forms) - 1
        elif tag == "input" and attributes.get("name"):
            owner = attributes.get("form")
            if owner is not None:
                targets = [form for form in self.forms if form[0] == owner]
            elif self.open is not None:
                targets = [self.forms[self.open]]
            else:
                targets = []
            for _, _, fields in targets:
                fields[attributes["name"]] = attributes.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.open = None


def _forms(html: str, base: str) -> list[Form]:
    parser = _FormParser(base)
    parser.feed(html)
    return [Form(action, fields) for _, action, fields in parser.forms]
