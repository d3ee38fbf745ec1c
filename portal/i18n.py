"""Everything about language: known locales, negotiation, catalogs and formatting.

Translations are chosen per request (or per explicit `use_locale` block outside a request)
through a ContextVar, so one shared Jinja2 environment serves every language at once.
"""

from __future__ import annotations

import contextlib
import functools
import io
import re
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from gettext import GNUTranslations, NullTranslations
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.core import UnknownLocaleError
from babel.dates import format_date, format_datetime, format_timedelta
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from markupsafe import Markup

from portal.locale_codes import RENAMED, VARIANT_OF, canonical

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"


@dataclass(frozen=True)
class LocaleInfo:
    code: str  # folder name under locales/ and the value patrons choose
    babel_id: str  # CLDR identifier used for formatting
    html_lang: str  # BCP 47 tag for <html lang>
    native_name: str  # shown in the language switcher, in the language itself


class _KnownLocales(dict[str, LocaleInfo]):
    """Looking up a renamed code ("tl", as old ledger entries spell it) finds its new one;
    iteration and `in` list only the codes in use."""

    def __missing__(self, code: str) -> LocaleInfo:
        if code in RENAMED:
            return self[RENAMED[code]]
        raise KeyError(code)


KNOWN_LOCALES: dict[str, LocaleInfo] = _KnownLocales(
    (info.code, info)
    for info in (
        LocaleInfo("en", "en_US", "en", "English"),
        LocaleInfo("es", "es", "es", "Español"),
        LocaleInfo("fr", "fr", "fr", "Français"),
        LocaleInfo("zh_Hans", "zh_Hans_CN", "zh-Hans", "简体中文"),
        LocaleInfo("zh_Hant", "zh_Hant_TW", "zh-Hant", "繁體中文"),
        # Hong Kong's words and dates over Traditional Chinese (locale_codes.VARIANT_OF); also
        # chosen for Macao and for Cantonese browsers.
        LocaleInfo("zh_Hant_HK", "zh_Hant_HK", "zh-Hant-HK", "繁體中文（香港）"),
        LocaleInfo("vi", "vi", "vi", "Tiếng Việt"),
        # One code everywhere (folders, <html lang>, Babel, the PO header): screen readers
        # register fil-PH voices. Labelled so US patrons who say "Tagalog" find it.
        LocaleInfo("fil", "fil", "fil", "Filipino (Tagalog)"),
        LocaleInfo("ko", "ko", "ko", "한국어"),
        LocaleInfo("ru", "ru", "ru", "Русский"),
        LocaleInfo("ar", "ar", "ar", "العربية"),
    )
)
SOURCE_LOCALE = "en"


def text_direction(code: str) -> str:
    """ "rtl" or "ltr"; a code no longer known (a stored "tl" is known as "fil") is "auto"."""
    code = canonical(code)
    if code not in KNOWN_LOCALES:
        return "auto"
    return _parsed_locale(code).text_direction


def negotiate(
    enabled: tuple[str, ...],
    default: str,
    *,
    chosen: str | None = None,
    accept_language: str | None = None,
) -> str:
    """Explicit choice first, then the browser's Accept-Language, then the library default."""
    chosen = canonical(chosen) if chosen else chosen
    if chosen in enabled:
        return chosen
    for tag in _parse_accept_language(accept_language or ""):
        match = _match_tag(tag, enabled)
        if match:
            return match
    return default


@functools.lru_cache(maxsize=512)
def _parse_accept_language(header: str) -> tuple[str, ...]:
    weighted: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        pieces = part.strip().split(";")
        tag = pieces[0].strip()
        if not tag or tag == "*":
            continue
        quality = 1.0
        for param in pieces[1:]:
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0:
            weighted.append((-quality, position, tag))
    return tuple(tag for _, _, tag in sorted(weighted))


@functools.lru_cache(maxsize=512)
def _match_tag(tag: str, enabled: tuple[str, ...]) -> str | None:
    try:
        wanted = Locale.parse(tag, sep="-")
    except (ValueError, UnknownLocaleError):
        return None
    language = canonical(wanted.language)
    if wanted.script == "Hans" and language in {"zh", "yue"}:
        return "zh_Hans" if "zh_Hans" in enabled else None
    if language == "yue" or (language == "zh" and wanted.territory in {"HK", "MO"}):
        # Hong Kong's and Macao's readers, and Cantonese ones (README, Languages): Hong Kong
        # words where enabled, else Traditional Chinese.
        return next((code for code in ("zh_Hant_HK", "zh_Hant") if code in enabled), None)
    if language == "zh":
        traditional = wanted.script == "Hant" or (
            wanted.script is None and wanted.territory == "TW"
        )
        code = "zh_Hant" if traditional else "zh_Hans"
        return code if code in enabled else None
    return language if language in enabled else None


@functools.cache
def translations(code: str) -> NullTranslations:
    """Compile locales/<code>/LC_MESSAGES/messages.po in memory (no build step, no .mo files).
    A regional variant's catalog falls back to its language's for every entry it lacks."""
    if code == SOURCE_LOCALE:
        return NullTranslations()
    po_path = LOCALES_DIR / code / "LC_MESSAGES" / "messages.po"
    with po_path.open("rb") as handle:
        catalog = read_po(handle, locale=KNOWN_LOCALES[code].babel_id)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    compiled = GNUTranslations(buffer)
    if code in VARIANT_OF:
        compiled.add_fallback(translations(VARIANT_OF[code]))
    return compiled


_current_locale: ContextVar[str] = ContextVar("portal_locale", default=SOURCE_LOCALE)


def current_locale() -> str:
    return _current_locale.get()


@contextlib.contextmanager
def use_locale(code: str) -> Iterator[None]:
    """Render texts in `code` — for requests and for anything written outside one."""
    token = _current_locale.set(canonical(code))  # a stored "tl" renders as "fil"
    try:
        yield
    finally:
        _current_locale.reset(token)


def _interpolate(translated: str, source: str, variables: Mapping[str, Any]) -> str:
    # A translation that lost or renamed a placeholder falls back to the source text
    # rather than breaking the page.
    try:
        return translated % variables if variables else translated
    except (KeyError, ValueError, TypeError):
        return source % variables if variables else source


CHILD = "child"
# The register a page speaks in: None for the adult register, CHILD for a child below the
# guardian-consent age (informal where the language distinguishes: tú, tu, em, 你, ты).
_current_register: ContextVar[str | None] = ContextVar("portal_register", default=None)


def current_register() -> str | None:
    return _current_register.get()


@contextlib.contextmanager
def use_register(register: str | None) -> Iterator[None]:
    """Render texts in `register` ("child") — set once per request beside the locale."""
    token = _current_register.set(register)
    try:
        yield
    finally:
        _current_register.reset(token)


def _lookup(
    context: str | None, message: str, plural: str | None = None, num: int = 1
) -> str | None:
    """The translation of `message` in `context` for the current locale, or None when the
    catalog has no such entry (the plain message is then used, never the English)."""
    if context is None:
        return None
    key = f"{context}\x04{message}"
    catalog: NullTranslations | None = translations(current_locale())
    # A variant's own entry first, then its language's (the fallback chain).
    while catalog is not None:
        entries: dict[Any, str] | None = getattr(catalog, "_catalog", None)
        if entries is None:  # the source language: nothing to look up
            return None
        if plural is None:
            found = entries.get(key)
        else:
            plural_of = getattr(catalog, "plural", lambda n: int(n != 1))
            found = entries.get((key, plural_of(num)))
        if found is not None:
            return found
        catalog = getattr(catalog, "_fallback", None)
    return None


def gettext(message: str, **variables: Any) -> str:
    """In the child register, the "child" entry when the catalog has one, else the plain one."""
    translated = _lookup(current_register(), message)
    if translated is None:
        translated = translations(current_locale()).gettext(message)
    return _interpolate(translated, message, variables)


def ngettext(singular: str, plural: str, num: int, **variables: Any) -> str:
    variables.setdefault("num", num)
    translated = _lookup(current_register(), singular, plural, num)
    if translated is None:
        translated = translations(current_locale()).ngettext(singular, plural, num)
    source = singular if num == 1 else plural
    return _interpolate(translated, source, variables)


def pgettext(context: str, message: str, **variables: Any) -> str:
    """A message in a context: the same English, worded apart per language (e.g. "child":
    pages a child reads, in the informal register where the language has one). A context
    without an entry falls back to the plain message's translation."""
    translated = _lookup(context, message)
    if translated is None:
        translated = translations(current_locale()).gettext(message)
    return _interpolate(translated, message, variables)


def npgettext(context: str, singular: str, plural: str, num: int, **variables: Any) -> str:
    variables.setdefault("num", num)
    translated = _lookup(context, singular, plural, num)
    if translated is None:
        translated = translations(current_locale()).ngettext(singular, plural, num)
    source = singular if num == 1 else plural
    return _interpolate(translated, source, variables)


def Cp_(context: str, message: str) -> str:
    """Marks a message for extraction in a context (`-k Cp_:1c,2`); returns it untouched."""
    del context
    return message


def Cnp_(context: str, singular: str, plural: str) -> tuple[str, str]:
    """The same for a message with a plural (`-k Cnp_:1c,2,3`)."""
    del context
    return singular, plural


def _isolated(variables: dict[str, Any]) -> dict[str, Markup]:
    # Each value is escaped and isolated with <bdi>, so a Latin title, a date or a number
    # keeps its own direction inside an Arabic sentence (and the reverse).
    return {name: Markup("<bdi>%s</bdi>") % value for name, value in variables.items()}


def markup_gettext(message: str, **variables: Any) -> Markup:
    """Jinja flavour: the message is trusted template text, the variables are escaped."""
    escaped = _isolated(variables)
    return Markup(gettext(message, **escaped))  # noqa: S704 - msgids are template text, variables escaped


def markup_ngettext(singular: str, plural: str, num: int, **variables: Any) -> Markup:
    escaped = _isolated(variables)
    return Markup(ngettext(singular, plural, num, **escaped))  # noqa: S704 - as above


def markup_pgettext(context: str, message: str, **variables: Any) -> Markup:
    escaped = _isolated(variables)
    return Markup(pgettext(context, message, **escaped))  # noqa: S704 - as above


def markup_npgettext(
    context: str, singular: str, plural: str, num: int, **variables: Any
) -> Markup:
    escaped = _isolated(variables)
    return Markup(npgettext(context, singular, plural, num, **escaped))  # noqa: S704 - as above


# A run of Latin script inside other text: words of Latin letters (and the digits, dots,
# hyphens, apostrophes and ampersands inside them) joined by single spaces.
_LATIN_RUN = re.compile(
    r"[A-Za-z\u00c0-\u024f][A-Za-z0-9\u00c0-\u024f&'\u2019.\-]*"
    r"(?: [A-Za-z\u00c0-\u024f][A-Za-z0-9\u00c0-\u024f&'\u2019.\-]*)*"
)
# The full stop of an abbreviation belongs to the name ("Inc.", "Ltd.", "LLC.").
_ABBREVIATION = re.compile(r"(?:^|\s)(?:[A-Z][a-z]{0,3}|[A-Z]{2,5})\.$")


def isolate_latin(text: str, language: str | None = None) -> Markup | str:
    """Notice text for a right-to-left page: each Latin-script run (a company's name) in a
    <bdi dir="ltr">, so "TextRelay Messaging Inc." keeps its full stop on its own right and
    a sentence's full stop stays at the sentence's end (Unicode bidi isolates, UAX #9).
    Only the rendering changes: the published text stays exactly as published.
    `language`: the text's own locale when it is not the page's (an earlier version shown
    in its language on another language's page)."""
    if text_direction(language or current_locale()) != "rtl":
        return text
    parts: list[Markup] = []
    position = 0
    for match in _LATIN_RUN.finditer(text):
        run = match.group()
        while run and run[-1] in ".-'\u2019&" and not _ABBREVIATION.search(run):
            run = run[:-1]
        if not run:
            continue
        start = match.start()
        parts.append(Markup.escape(text[position:start]))
        parts.append(Markup('<bdi dir="ltr">%s</bdi>') % run)
        position = start + len(run)
    parts.append(Markup.escape(text[position:]))
    return Markup("").join(parts)


@functools.cache
def _parsed_locale(code: str) -> Locale:
    return Locale.parse(KNOWN_LOCALES[code].babel_id)


def _babel_locale() -> Locale:
    return _parsed_locale(current_locale())


def format_day(value: date | datetime, timezone: str) -> str:
    """A calendar date; moments are first placed in the library's time zone."""
    if isinstance(value, datetime):
        value = value.astimezone(ZoneInfo(timezone)).date()
    return format_date(value, format="long", locale=_babel_locale())


def format_moment(value: datetime, timezone: str) -> str:
    return format_datetime(
        value, format="medium", tzinfo=ZoneInfo(timezone), locale=_babel_locale()
    )


# CLDR's minimumGroupingDigits where it is 2 (Babel does not carry it): a four-digit number
# is written without a separator, "1095 días", and grouping starts at 10.950.
_MINIMUM_GROUPING_DIGITS: dict[str, int] = {"es": 2}


def format_duration(value: timedelta) -> str:
    """A time still to wait ("3 minutes"), rounded to its largest unit, in the locale."""
    return format_timedelta(value, locale=_babel_locale())


def format_count(value: int) -> str:
    """Every count on every page (the `count` filter): Babel's format in the locale."""
    locale = _babel_locale()
    minimum = _MINIMUM_GROUPING_DIGITS.get(locale.language, 1)
    grouped = abs(value) >= 10 ** (2 + minimum)
    return format_decimal(value, locale=locale, group_separator=grouped)
