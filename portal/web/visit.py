"""Per request: who is signed in and which language they read. Who a session cookie belongs
to is the patrons domain's to say (portal.patrons.access.visitor), the library's name is the
catalog's (portal.catalog.services.published_catalog): the app hands both in, so request
plumbing imports no domain.

Language order: the visitor's explicit choice (cookie), the signed-in patron's
profile, the browser's Accept-Language, then the library's default. The register: a signed-in
child below the guardian-consent age reads every page in the child's (portal.i18n.use_register).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from portal import i18n
from portal.settings import Settings
from portal.web.origin import MACHINE_PREFIXES

SESSION_COOKIE = "portal_session"


def session_cookie(settings: Settings) -> str:
    """Behind HTTPS the name carries the __Host- prefix: browsers then accept the cookie only
    from this host, over HTTPS, for every path, so no subdomain can plant or read it."""
    return f"__Host-{SESSION_COOKIE}" if settings.https else SESSION_COOKIE


LANGUAGE_COOKIE = "portal_lang"
# The desk's cookies (portal.staff.access). A browser holding one is the library's screen:
# it never acts as a patron, whatever patron cookie it may also hold.
STAFF_COOKIE = "portal_staff"
HANDOVER_COOKIE = "portal_handover"


def host_cookie(settings: Settings, name: str) -> str:
    """Behind HTTPS, the cookie's name with the __Host- prefix (see session_cookie)."""
    return f"__Host-{name}" if settings.https else name


def language_cookie(settings: Settings) -> str:
    """Host-only behind HTTPS too: a sibling host or a plain-HTTP answer could otherwise set
    the language a patron reads their notices in."""
    return host_cookie(settings, LANGUAGE_COOKIE)


@dataclass(frozen=True)
class Visitor:
    """A signed-in patron as the request plumbing needs them."""

    patron: object  # what the patrons domain says of them (request.state.patron)
    locale: str | None  # the language of their profile, if they chose one
    register: str | None  # portal.i18n.CHILD for a child, else None


class Library(Protocol):
    @property
    def library_name(self) -> str: ...

    @property
    def library_names(self) -> dict[str, str]: ...  # per language, where it differs


FindVisitor = Callable[[Settings, str], Awaitable[Visitor | None]]
FindLibrary = Callable[[], Awaitable[Library]]


class VisitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        find_visitor: FindVisitor,
        find_library: FindLibrary,
    ) -> None:
        self.app = app
        self.settings = settings
        self.find_visitor = find_visitor
        self.find_library = find_library
        self.session_cookie = session_cookie(settings)
        self.language_cookie = language_cookie(settings)
        self.desk_cookies = (
            host_cookie(settings, STAFF_COOKIE),
            host_cookie(settings, HANDOVER_COOKIE),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(
            ("/static/", "/healthz", *MACHINE_PREFIXES)
        ):
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        visitor = None
        token = connection.cookies.get(self.session_cookie)
        at_the_desk = any(name in connection.cookies for name in self.desk_cookies)
        if token and not at_the_desk:
            visitor = await self.find_visitor(self.settings, token)
        chosen = connection.cookies.get(self.language_cookie)
        locale = i18n.negotiate(
            self.settings.locales,
            self.settings.default_locale,
            chosen=chosen or (visitor.locale if visitor else None),
            accept_language=Headers(scope=scope).get("accept-language"),
        )
        scope.setdefault("state", {})
        scope["state"]["patron"] = visitor.patron if visitor else None
        scope["state"]["locale"] = locale
        library = await self.find_library()
        scope["state"]["library_name"] = library.library_name
        scope["state"]["library_names"] = library.library_names
        register = visitor.register if visitor else None
        scope["state"]["register"] = register
        with i18n.use_locale(locale), i18n.use_register(register):
            await self.app(scope, receive, send)
