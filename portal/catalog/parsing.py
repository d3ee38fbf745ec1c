"""Reading the catalog as the privacy officer writes it (TOML) into the published shapes
(portal.catalog.policy), refusing it with every problem named: every notice complete in every
enabled locale, a child's version where children can meet the service, connected systems
reachable only over TLS (their signing secrets are never in the catalog:
portal.outbox.keys). Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
import tomllib
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from portal.catalog.jurisdiction import DEFAULT_PRESET, PRESETS, JurisdictionPolicy
from portal.catalog.policy import (
    CHANNELS,
    KEY_LENGTH,
    MESSAGE_CONTENTS,
    NOTICE_FIELDS,
    PAIR_SEPARATOR,
    CarryOver,
    Catalog,
    CatalogError,
    MessageKindSpec,
    MessagesSpec,
    MessageWords,
    NoticeText,
    ServiceSpec,
    SystemSpec,
    Terms,
    is_key,
    offered_below_consent_age,
    pair_key,
)
from portal.locale_codes import canonical, fallbacks

SERVICE_KEYS = {
    "key",
    "minimum_age",
    "store",
    "purposes",
    "data_categories",
    "recipients",
    "retention_days",
    "systems",
    "notice",
    "child_notice",
    "messages",
}
MESSAGES_KEYS = {"channels", "channel_systems", "channel_terms", "kind", "carry_over"}
KIND_KEYS = {"key", "ils_name", "contains", "purposes"}
CHANNEL_TERMS_KEYS = {"data_categories", "recipients"}
CARRY_OVER_KEYS = {"service", "channel", "kinds"}
# A messaging notice's own fields beside NOTICE_FIELDS, in [service.notice.<locale>].
MESSAGE_NOTICE_KEYS = ("kinds", "titles")
SYSTEM_KEYS = {"key", "name", "endpoint"}
LIBRARY_KEYS = {"name", "name_in"}
JURISDICTION_KEYS = {"preset", "guardian_consent_below", "age_of_majority"}
TOP_KEYS = {"library", "jurisdiction", "system", "service"}
# Deletion requests carry a patron reference: only over TLS, or to this machine itself.
LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}


def _read_toml(text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError([f"the catalog is not valid TOML: {exc}"]) from None
    except RecursionError:  # arrays or tables nested thousands deep
        raise CatalogError(["the catalog is not valid TOML: nested too deeply"]) from None
    except ValueError:  # an integer of thousands of digits (Python's int conversion limit)
        raise CatalogError(["the catalog is not valid TOML: a number is too long"]) from None


def parse_catalog(
    text: str, enabled_locales: tuple[str, ...], known_stores: tuple[str, ...]
) -> Catalog:
    """`known_stores` are the portal's stores of retained data (portal.stores.registry): a
    service names at most one, and its rows are erased when the patron withdraws."""
    raw = _read_toml(text)
    problems: list[str] = []
    for unknown in sorted(set(raw) - TOP_KEYS):
        problems.append(f"unknown top-level key '{unknown}'")
    library = raw.get("library", {})
    if not isinstance(library, dict) or not isinstance(library.get("name"), str):
        problems.append("[library] needs a name")
        library_name = ""
    else:
        library_name = library["name"].strip()
        for unknown in sorted(set(library) - LIBRARY_KEYS):
            problems.append(f"[library]: unknown key '{unknown}'")
    library_names = _parse_library_names(
        library.get("name_in", {}) if isinstance(library, dict) else {}, enabled_locales, problems
    )
    jurisdiction = _parse_jurisdiction(raw.get("jurisdiction", {}), problems)
    systems = _parse_systems(raw.get("system", []), problems)
    system_keys = tuple(system.key for system in systems)
    raw_services = raw.get("service", [])
    if not isinstance(raw_services, list) or not raw_services:
        problems.append("the catalog defines no [[service]]")
        raw_services = []
    services: list[ServiceSpec] = []
    seen: set[str] = set()
    for index, entry in enumerate(raw_services, start=1):
        spec = _parse_service(
            entry,
            index,
            jurisdiction=jurisdiction,
            enabled_locales=enabled_locales,
            known_stores=known_stores,
            known_systems=system_keys,
            problems=problems,
        )
        if spec is None:
            continue
        if spec.key in seen:
            problems.append(f"service '{spec.key}' is defined twice")
        seen.add(spec.key)
        services.append(spec)
    _check_carry_over(services, problems)
    stores = [spec.store for spec in services if spec.store]
    for store in sorted({s for s in stores if stores.count(s) > 1}):
        problems.append(f"store '{store}' belongs to more than one service")
    if problems:
        raise CatalogError(problems)
    return Catalog(
        library_name=library_name,
        library_names=library_names,
        services=tuple(services),
        jurisdiction=jurisdiction,
        systems=systems,
    )


def _parse_library_names(
    raw: Any, enabled_locales: tuple[str, ...], problems: list[str]
) -> dict[str, str]:
    """[library.name_in]: the library's own name in each language, e.g. es = "Biblioteca …"."""
    if not isinstance(raw, dict):
        problems.append("[library.name_in] must be a table of locale = name")
        return {}
    raw = _renamed_locales(raw, "[library.name_in]", problems)
    names: dict[str, str] = {}
    for locale, name in sorted(raw.items()):
        if not any(locale in fallbacks(code) for code in enabled_locales):
            problems.append(f"[library.name_in]: '{locale}' is not an enabled locale")
        elif not isinstance(name, str) or not name.strip() or len(name.strip()) > 200:
            problems.append(f"[library.name_in]: {locale} needs a name (up to 200 characters)")
        else:
            names[locale] = name.strip()
    return names


def _renamed_locales(raw: dict[str, Any], where: str, problems: list[str]) -> dict[str, Any]:
    """A table keyed by locale may still use a renamed code ([service.notice.tl]): it counts
    as the new one ("fil"), unless both are given."""
    tables: dict[str, Any] = {}
    for code, value in raw.items():
        new = canonical(code)
        if new in tables:
            problems.append(f"{where}: '{code}' and '{new}' are the same locale; keep '{new}'")
        tables[new] = value
    return tables


def endpoint_problem(endpoint: str) -> str | None:
    """Why a connected system's endpoint cannot be used, or None: HTTPS (plain HTTP only to
    this machine, for a local relay or the tests), a host, no credentials in the URL."""
    try:
        parts = urlsplit(endpoint)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        return "is not a URL"
    if parts.scheme not in ("https", "http") or not host:
        return "must be an https:// URL"
    if parts.scheme == "http" and host not in LOOPBACK_HOSTS:
        return "must use https:// (plain http only to this machine)"
    if parts.username is not None or parts.password is not None:
        return "must not carry credentials (the requests are signed instead)"
    if parts.fragment:
        return "must not have a #fragment"
    return None


Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def internal_address(address: Address) -> bool:
    """Not a public unicast address: loopback, private, link-local (169.254.169.254, the cloud
    metadata service), unique-local (fd00::/8), shared, reserved, unspecified or multicast;
    an IPv4 address written as IPv6 (::ffff:10.0.0.1) is judged as itself."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


@dataclass(frozen=True)
class EndpointRules:
    """Where connected systems may be reached, beyond `endpoint_problem`: in development
    anywhere it allows; otherwise over HTTPS to public addresses only, except the hosts,
    addresses and networks the operator names (PORTAL_SYSTEM_ALLOWED_ADDRESSES). Deletion
    requests are sent by the server, so an internal address would let whoever writes the
    catalog make the server call its own network (OWASP: server-side request forgery)."""

    development: bool
    allowed: tuple[str, ...] = ()

    def names_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in {entry.lower().rstrip(".") for entry in self.allowed}

    def names_address(self, address: Address) -> bool:
        for entry in self.allowed:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                continue  # a host name
        return False

    def refusal(self, endpoint: str, addresses: list[Address]) -> str | None:
        """Why `endpoint`, its host resolving to `addresses` now, must not be called."""
        if self.development:
            return None
        parts = urlsplit(endpoint)
        host = parts.hostname or ""
        if self.names_host(host):
            return None
        if parts.scheme != "https":
            return (
                "must use https:// outside development mode (plain http only to a host "
                "named in PORTAL_SYSTEM_ALLOWED_ADDRESSES)"
            )
        for address in addresses:
            if internal_address(address) and not self.names_address(address):
                return (
                    f"is on an internal address ({address}); if that is intended, name it in "
                    "PORTAL_SYSTEM_ALLOWED_ADDRESSES"
                )
        return None


def _parse_systems(raw: Any, problems: list[str]) -> tuple[SystemSpec, ...]:
    if not isinstance(raw, list):
        problems.append("[[system]] must be a list of tables")
        return ()
    systems: list[SystemSpec] = []
    for index, entry in enumerate(raw, start=1):
        if not isinstance(entry, dict):
            problems.append(f"system #{index} is not a table")
            continue
        key = entry.get("key")
        if not isinstance(key, str) or not is_key(key):
            problems.append(f"system #{index} needs a key of lowercase letters, digits and _")
            continue
        where = f"system '{key}'"
        before = len(problems)
        for unknown in sorted(set(entry) - SYSTEM_KEYS):
            problems.append(f"{where}: unknown key '{unknown}'")
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > 100:
            problems.append(f"{where}: needs a name (up to 100 characters), shown to patrons")
        endpoint = entry.get("endpoint")
        if not isinstance(endpoint, str) or not endpoint.strip():
            problems.append(f"{where}: needs an endpoint (the URL deletion requests go to)")
        elif (problem := endpoint_problem(endpoint.strip())) is not None:
            problems.append(f"{where}: endpoint {problem}")
        if any(system.key == key for system in systems):
            problems.append(f"system '{key}' is defined twice")
        if len(problems) > before:
            continue
        systems.append(SystemSpec(key=key, name=str(name).strip(), endpoint=str(endpoint).strip()))
    return tuple(systems)


def _is_age(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= 25


def _parse_jurisdiction(raw: Any, problems: list[str]) -> JurisdictionPolicy:
    default = PRESETS[DEFAULT_PRESET]
    if not isinstance(raw, dict):
        problems.append("[jurisdiction] is not a table")
        return default
    for unknown in sorted(set(raw) - JURISDICTION_KEYS):
        problems.append(f"[jurisdiction]: unknown key '{unknown}'")
    preset = raw.get("preset", DEFAULT_PRESET)
    if not isinstance(preset, str) or preset not in PRESETS:
        problems.append(f"[jurisdiction]: unknown preset '{preset}' (e.g. US, GDPR-DE)")
        return default
    base = PRESETS[preset]
    ages = {}
    for name in ("guardian_consent_below", "age_of_majority"):
        value = raw.get(name, getattr(base, name))
        if not _is_age(value):
            problems.append(f"[jurisdiction]: '{name}' must be an age in years")
            return default
        ages[name] = value
    try:
        return JurisdictionPolicy(code=preset, **ages)
    except ValueError as error:
        problems.append(f"[jurisdiction]: {error}")
        return default


def _parse_service(
    entry: Any,
    index: int,
    *,
    jurisdiction: JurisdictionPolicy,
    enabled_locales: tuple[str, ...],
    known_stores: tuple[str, ...],
    known_systems: tuple[str, ...],
    problems: list[str],
) -> ServiceSpec | None:
    if not isinstance(entry, dict):
        problems.append(f"service #{index} is not a table")
        return None
    key = entry.get("key")
    if not isinstance(key, str) or not is_key(key):
        problems.append(f"service #{index} needs a key of lowercase letters, digits and _")
        return None
    where = f"service '{key}'"
    before = len(problems)
    for unknown in sorted(set(entry) - SERVICE_KEYS):
        problems.append(f"{where}: unknown key '{unknown}'")
    store = entry.get("store")
    if store is not None and store not in known_stores:
        problems.append(f"{where}: unknown store '{store}' (known: {', '.join(known_stores)})")
    lists = {}
    for name in ("purposes", "data_categories", "recipients"):
        value = entry.get(name)
        # A messaging service's channels may bring all its data and recipients themselves.
        may_be_empty = "messages" in entry and name != "purposes"
        if (
            not isinstance(value, list)
            or (not value and not may_be_empty)
            or not all(isinstance(item, str) and item.strip() for item in value)
        ):
            problems.append(f"{where}: '{name}' must be a non-empty list of names")
            value = []
        lists[name] = tuple(item.strip() for item in value)
    retention = entry.get("retention_days")
    if isinstance(retention, bool) or not isinstance(retention, int) or retention <= 0:
        problems.append(f"{where}: 'retention_days' must be a positive number of days")
        retention = 0
    minimum_age = entry.get("minimum_age")
    if minimum_age is not None and (
        isinstance(minimum_age, bool)
        or not isinstance(minimum_age, int)
        or not 0 < minimum_age <= 25
    ):
        problems.append(f"{where}: 'minimum_age' must be an age in years")
    systems = entry.get("systems", [])
    if not isinstance(systems, list) or not all(isinstance(item, str) for item in systems):
        problems.append(f"{where}: 'systems' must be a list of system keys")
        systems = []
    for unknown in [item for item in systems if item not in known_systems]:
        problems.append(f"{where}: unknown system '{unknown}' (declare it as a [[system]])")
    if len(set(systems)) != len(systems):
        problems.append(f"{where}: a system is named twice in 'systems'")
    messages, words, child_words, entry = _parse_messaging(entry, key, known_systems, problems)
    notices = _parse_notices(entry.get("notice"), where, enabled_locales, problems)
    child_notices = _parse_child_notices(
        entry,
        where,
        minimum_age=minimum_age,
        jurisdiction=jurisdiction,
        enabled_locales=enabled_locales,
        problems=problems,
    )
    _check_channel_terms(messages, lists, where, problems)
    if len(problems) > before:
        return None
    terms = Terms(
        purposes=lists["purposes"],
        data_categories=lists["data_categories"],
        recipients=lists["recipients"],
        retention_days=retention,
    )
    return ServiceSpec(
        key=key,
        store=store,
        terms=terms,
        notices=notices,
        minimum_age=minimum_age,
        systems=tuple(systems),
        child_notices=child_notices,
        messages=messages,
        message_words={code: words[code] for code in notices if code in words},
        child_message_words={
            code: child_words[code] for code in child_notices if code in child_words
        },
    )


def _check_channel_terms(
    messages: MessagesSpec | None,
    lists: dict[str, tuple[str, ...]],
    where: str,
    problems: list[str],
) -> None:
    """Every message choice's terms name some data and some recipient."""
    for channel in messages.channels if messages else ():
        data, recipients = messages.channel_terms.get(channel, ((), ())) if messages else ((), ())
        if not (lists["data_categories"] or data) or not (lists["recipients"] or recipients):
            problems.append(
                f"{where}: channel '{channel}' has no data categories or no recipients "
                "(give them for the service or in messages.channel_terms)"
            )


def _parse_messaging(
    entry: dict[str, Any], key: str, known_systems: tuple[str, ...], problems: list[str]
) -> tuple[MessagesSpec | None, dict[str, MessageWords], dict[str, MessageWords], dict[str, Any]]:
    """A messaging service's [service.messages], its notices' own lines, and the entry with
    those lines taken out of its notices (for the checks every notice passes)."""
    if "messages" not in entry:
        return None, {}, {}, entry
    if PAIR_SEPARATOR in key:
        problems.append(f"service '{key}': a messaging service's key cannot contain '__'")
    messages = _parse_messages(entry["messages"], key, known_systems, problems)
    entry = dict(entry)
    where = f"service '{key}'"
    words, entry["notice"] = _split_message_words(
        entry.get("notice"), where, "notice", messages, problems
    )
    child_words: dict[str, MessageWords] = {}
    if "child_notice" in entry:
        child_words, entry["child_notice"] = _split_message_words(
            entry["child_notice"], where, "child_notice", messages, problems
        )
    return messages, words, child_words, entry


def _names(value: Any) -> list[str] | None:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return None
    return value


def _parse_messages(
    raw: Any, key: str, known_systems: tuple[str, ...], problems: list[str]
) -> MessagesSpec | None:
    """[service.messages]: the kinds of message a messaging service sends and its channels;
    each kind by each channel is published as its own choice."""
    where = f"service '{key}'"
    if not isinstance(raw, dict):
        problems.append(f"{where}: 'messages' must be a table")
        return None
    before = len(problems)
    for unknown in sorted(set(raw) - MESSAGES_KEYS):
        problems.append(f"{where}: messages: unknown key '{unknown}'")
    channels = _names(raw.get("channels"))
    if not channels or len(set(channels)) != len(channels) or set(channels) - set(CHANNELS):
        problems.append(
            f"{where}: messages.channels must name each channel once, of {', '.join(CHANNELS)}"
        )
        channels = []
    channel_systems = _parse_channel_systems(
        raw.get("channel_systems", {}), where, channels, known_systems, problems
    )
    channel_terms = _parse_channel_terms(raw.get("channel_terms", {}), where, channels, problems)
    kinds = _parse_kinds(raw.get("kind"), key, channels, problems)
    carry_over = _parse_carry_over(raw.get("carry_over", []), where, channels, kinds, problems)
    if len(problems) > before:
        return None
    return MessagesSpec(tuple(channels), kinds, channel_systems, carry_over, channel_terms)


def _parse_channel_terms(
    raw: Any, where: str, channels: list[str], problems: list[str]
) -> dict[str, tuple[tuple[str, ...], tuple[str, ...]]]:
    """[service.messages.channel_terms.<channel>]: the data and recipients a channel adds."""
    if not isinstance(raw, dict):
        problems.append(f"{where}: messages.channel_terms must be a table per channel")
        return {}
    found = {}
    for channel, terms in raw.items():
        if channel not in channels or not isinstance(terms, dict):
            problems.append(f"{where}: messages.channel_terms.{channel} is not a channel's table")
            continue
        for unknown in sorted(set(terms) - CHANNEL_TERMS_KEYS):
            problems.append(f"{where}: messages.channel_terms.{channel}: unknown key '{unknown}'")
        lists = []
        for name in ("data_categories", "recipients"):
            names = _names(terms.get(name, []))
            if names is None or not all(item.strip() for item in names):
                problems.append(f"{where}: messages.channel_terms.{channel}.{name}: names")
                names = []
            lists.append(tuple(item.strip() for item in names))
        found[channel] = (lists[0], lists[1])
    return found


def _parse_channel_systems(
    raw: Any,
    where: str,
    channels: list[str],
    known_systems: tuple[str, ...],
    problems: list[str],
) -> dict[str, tuple[str, ...]]:
    if not isinstance(raw, dict):
        problems.append(f"{where}: messages.channel_systems must be a table of channel = [keys]")
        return {}
    found: dict[str, tuple[str, ...]] = {}
    for channel, systems in raw.items():
        names = _names(systems)
        if channel not in channels or names is None:
            problems.append(f"{where}: messages.channel_systems.{channel} is not a channel's list")
            continue
        for unknown in [name for name in names if name not in known_systems]:
            problems.append(f"{where}: messages.channel_systems: unknown system '{unknown}'")
        found[channel] = tuple(names)
    return found


def _parse_kinds(
    raw: Any, key: str, channels: list[str], problems: list[str]
) -> tuple[MessageKindSpec, ...]:
    where = f"service '{key}'"
    if not isinstance(raw, list) or not raw:
        problems.append(f"{where}: messages needs at least one [[service.messages.kind]]")
        return ()
    longest_channel = max((len(channel) for channel in channels), default=0)
    kinds: list[MessageKindSpec] = []
    for index, kind in enumerate(raw, start=1):
        if not isinstance(kind, dict) or not isinstance(kind.get("key"), str):
            problems.append(f"{where}: message kind #{index} needs a key")
            continue
        name = f"{where}: message kind '{kind['key']}'"
        if not is_key(kind["key"]) or PAIR_SEPARATOR in kind["key"]:
            problems.append(f"{name} needs a key of lowercase letters, digits and single _")
            continue
        # Each kind by each channel is published as "<service>__<kind>__<channel>".
        if len(pair_key(key, kind["key"], "x" * longest_channel)) > KEY_LENGTH:
            problems.append(f"{name}: with the service's key and a channel, over 40 characters")
        for unknown in sorted(set(kind) - KIND_KEYS):
            problems.append(f"{name}: unknown key '{unknown}'")
        ils_name = kind.get("ils_name")
        if not isinstance(ils_name, str) or not ils_name.strip() or len(ils_name) > 60:
            problems.append(f"{name} needs ils_name, the library system's name for it")
        contains = _names(kind.get("contains", []))
        if contains is None or set(contains) - set(MESSAGE_CONTENTS):
            problems.append(
                f"{name}: contains may name only {', '.join(MESSAGE_CONTENTS)} "
                "(titles are the patron's own choice)"
            )
            contains = []
        purposes = _names(kind.get("purposes", []))
        if purposes is None or not all(item.strip() for item in purposes):
            problems.append(f"{name}: purposes must be a list of names")
            purposes = []
        if any(known.key == kind["key"] for known in kinds):
            problems.append(f"{name} is defined twice")
        kinds.append(
            MessageKindSpec(
                kind["key"],
                str(ils_name).strip(),
                tuple(contains),
                tuple(item.strip() for item in purposes),
            )
        )
    return tuple(kinds)


def _parse_carry_over(
    raw: Any,
    where: str,
    channels: list[str],
    kinds: tuple[MessageKindSpec, ...],
    problems: list[str],
) -> tuple[CarryOver, ...]:
    if not isinstance(raw, list):
        problems.append(f"{where}: messages.carry_over must be a list of tables")
        return ()
    kind_keys = {kind.key for kind in kinds}
    carried: list[CarryOver] = []
    for index, moved in enumerate(raw, start=1):
        if not isinstance(moved, dict) or set(moved) - CARRY_OVER_KEYS:
            problems.append(f"{where}: carry_over #{index} takes service, channel and kinds")
            continue
        service, channel = moved.get("service"), moved.get("channel")
        moved_kinds = _names(moved.get("kinds"))
        if not isinstance(service, str) or not is_key(service):
            problems.append(f"{where}: carry_over #{index} needs the key of the service replaced")
        elif channel not in channels:
            problems.append(f"{where}: carry_over '{service}': channel is not one of channels")
        elif not moved_kinds or set(moved_kinds) - kind_keys:
            problems.append(
                f"{where}: carry_over '{service}': kinds must be this service's kinds, "
                "those the replaced notice named"
            )
        else:
            carried.append(CarryOver(service, str(channel), tuple(moved_kinds)))
    return tuple(carried)


def _split_message_words(
    raw: Any, where: str, table: str, messages: MessagesSpec | None, problems: list[str]
) -> tuple[dict[str, MessageWords], Any]:
    """A messaging notice's tables carry, beside the usual fields, `titles` (the line about
    titles in messages) and `kinds` (per kind: {title, says}). Returns those per locale, and
    the tables without them for the usual checks."""
    if not isinstance(raw, dict) or messages is None:
        return {}, raw
    words: dict[str, MessageWords] = {}
    rest: dict[str, Any] = {}
    for code, texts in raw.items():
        if not isinstance(texts, dict):
            rest[code] = texts
            continue
        rest[code] = {
            name: value for name, value in texts.items() if name not in MESSAGE_NOTICE_KEYS
        }
        titles = _title_and_says(texts.get("titles"))
        kinds = texts.get("kinds")
        local_problems = []
        if titles is None:
            local_problems.append(
                f"{where}: {table}.{code}.titles needs title, says (titles in messages)"
            )
        if not isinstance(kinds, dict):
            kinds = {}
        found: dict[str, tuple[str, str]] = {}
        for kind in messages.kinds:
            said = _title_and_says(kinds.get(kind.key))
            if said is None:
                local_problems.append(f"{where}: {table}.{code}.kinds.{kind.key} needs title, says")
                continue
            found[kind.key] = said
        for unknown in sorted(set(kinds) - {kind.key for kind in messages.kinds}):
            local_problems.append(f"{where}: {table}.{code}.kinds has unknown kind '{unknown}'")
        problems.extend(local_problems)
        if not local_problems and titles is not None:
            words[code] = MessageWords(found, titles)
    return words, rest


def _title_and_says(raw: Any) -> tuple[str, str] | None:
    """{title = "…", says = "…"}: a message choice's own title and line."""
    if (
        not isinstance(raw, dict)
        or set(raw) != {"title", "says"}
        or not all(isinstance(value, str) and value.strip() for value in raw.values())
    ):
        return None
    return raw["title"].strip(), raw["says"].strip()


def _check_carry_over(services: list[ServiceSpec], problems: list[str]) -> None:
    """A replaced service must be gone from the catalog and replaced once."""
    keys = {spec.key for spec in services}
    replaced: set[str] = set()
    for spec in services:
        for moved in spec.messages.carry_over if spec.messages else ():
            if moved.service in keys:
                problems.append(
                    f"service '{spec.key}': carry_over '{moved.service}' is still in the "
                    "catalog; remove it there"
                )
            if moved.service in replaced:
                problems.append(f"service '{moved.service}' is carried over twice")
            replaced.add(moved.service)


def _parse_child_notices(
    entry: dict[str, Any],
    where: str,
    *,
    minimum_age: Any,
    jurisdiction: JurisdictionPolicy,
    enabled_locales: tuple[str, ...],
    problems: list[str],
) -> dict[str, NoticeText]:
    """Required when a child below the guardian-consent age can meet the service; allowed
    (and published) otherwise."""
    raw = entry.get("child_notice")
    age = minimum_age if isinstance(minimum_age, int) else None
    if raw is None and not offered_below_consent_age(age, jurisdiction):
        return {}
    return _parse_notices(
        raw,
        where,
        enabled_locales,
        problems,
        table="child_notice",
        absent=(
            "offered below the guardian-consent age, so it needs a child's version of its "
            "notice ([service.child_notice.<locale>]) in every enabled locale"
        ),
    )


def _parse_notices(
    raw: Any,
    where: str,
    enabled_locales: tuple[str, ...],
    problems: list[str],
    *,
    table: str = "notice",
    absent: str = "no notice texts ([service.notice.<locale>])",
) -> dict[str, NoticeText]:
    if not isinstance(raw, dict):
        problems.append(f"{where}: {absent}")
        return {}
    raw = _renamed_locales(raw, f"{where}: notice", problems)
    notices: dict[str, NoticeText] = {}
    # A regional variant (zh_Hant_HK) may have its own texts; without, its readers read its
    # language's, which are then published even where the language itself is not enabled.
    missing = [code for code in enabled_locales if not any(c in raw for c in fallbacks(code))]
    if missing:
        problems.append(f"{where}: {table} missing in locale(s) {', '.join(missing)}")
    publishable = {fallback for code in enabled_locales for fallback in fallbacks(code)}
    for code, texts in raw.items():
        if code not in publishable:
            continue  # texts for a locale the library has not enabled are kept out of publishing
        if not isinstance(texts, dict):
            problems.append(f"{where}: {table}.{code} is not a table")
            continue
        for unknown in sorted(set(texts) - set(NOTICE_FIELDS)):
            problems.append(f"{where}: {table}.{code} has unknown field '{unknown}'")
        empty = [
            name
            for name in NOTICE_FIELDS
            if not isinstance(texts.get(name), str) or not texts[name].strip()
        ]
        if empty:
            problems.append(f"{where}: {table}.{code} is missing {', '.join(empty)}")
            continue
        notices[code] = NoticeText(**{name: texts[name].strip() for name in NOTICE_FIELDS})
    return notices
