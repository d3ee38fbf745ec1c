"""The one Jinja2 environment (autoescaping, i18n through portal.i18n, Babel formatting), and
rendering pages: whole, or with an error code's message and status (portal.web.problems)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import HTMLResponse

from portal import i18n
from portal.errors import ErrorCode
from portal.locale_codes import fallbacks
from portal.settings import Settings
from portal.web.problems import http_status, message_for

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"


def build_environment(timezone: str, *, reload: bool = False) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        auto_reload=reload,
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.newstyle_gettext = True  # type: ignore[attr-defined]
    # Our own callables: they format with fallback to the source text (portal.i18n).
    env.globals.update(
        gettext=i18n.markup_gettext,
        _=i18n.markup_gettext,
        ngettext=i18n.markup_ngettext,
        pgettext=i18n.markup_pgettext,
        npgettext=i18n.markup_npgettext,
    )
    env.filters["day"] = lambda value: i18n.format_day(value, timezone)
    env.filters["moment"] = lambda value: i18n.format_moment(value, timezone)
    env.filters["count"] = i18n.format_count
    env.filters["duration"] = i18n.format_duration
    env.filters["bidi"] = i18n.isolate_latin
    env.globals["text_direction"] = i18n.text_direction
    return env


def for_locale(mapping: Mapping[str, Any]) -> Any:
    """What `mapping` (by locale) holds for the page's language, or for the language a
    regional variant falls back to (zh_Hant_HK reads zh_Hant's); None when neither."""
    for code in fallbacks(i18n.current_locale()):
        if mapping.get(code) is not None:
            return mapping[code]
    return None


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    error: ErrorCode | None = None,
    background: BackgroundTask | None = None,
) -> HTMLResponse:
    """`error`: the page again with that code's message in `error` and its status."""
    env: Environment = request.app.state.templates
    locale = i18n.current_locale()
    paths: dict[tuple[str, tuple[tuple[str, Any], ...]], str] = request.app.state.url_paths
    root = request.scope.get("root_path", "")

    def url_for(name: str, **params: Any) -> str:
        # Paths, not absolute URLs: right behind any proxy. Routes never change while the
        # app runs, so each path is worked out once.
        key = (name, tuple(sorted(params.items())))
        path = paths.get(key)
        if path is None:
            path = paths[key] = root + str(request.app.url_path_for(name, **params))
        return path

    page_context = {
        "request": request,
        "url_for": url_for,
        "locale": locale,
        "direction": i18n.text_direction(locale),
        "known_locales": i18n.KNOWN_LOCALES,
        "enabled_locales": request.app.state.settings.locales,
        # In the language of the page (a printed sheet may be in the patron's, not the staff's).
        "library_name": for_locale(getattr(request.state, "library_names", {}))
        or request.state.library_name,
        "for_locale": for_locale,
        "error": None,
        **(context or {}),
    }
    if error is not None:
        page_context["error"] = error_message(request, error)
        status_code = http_status(error)
    html = env.get_template(template).render(page_context)
    return HTMLResponse(html, status_code=status_code, background=background)


def error_message(request: Request, code: ErrorCode) -> str:
    """The code's message in the reader's language, with the settings it mentions."""
    settings: Settings = request.app.state.settings
    return message_for(code, num=math.ceil(settings.signin_window_seconds / 60))
