"""Factories for tests: catalogs, patrons with a PIN, consents. Built through the real
services, so a factory never creates a state the portal itself could not reach."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from portal.catalog.parsing import parse_catalog
from portal.catalog.publishing import PublishReport
from portal.consent import reads
from portal.consent.policy import Decision
from portal.decisions import services as decisions
from portal.decisions.services import Outcome
from portal.officer.publishing import publish as publish_catalog
from portal.outbox.policy import new_secret
from portal.patrons.services import create_patron, set_pin_with_code
from portal.stores.registry import KEYS as STORE_KEYS

SECRET = "test-secret-key-that-is-long-enough"
ROOT = Path(__file__).resolve().parents[1]


# What a patron gives for a message choice's channel, in the tests.
TEST_CONTACTS = {"sms": "+12015550123", "phone": "+12015550123", "email": "reader@example.org"}


def notice_strings(table: dict[str, object]) -> list[tuple[str, str]]:
    """Every text of one notice table of the catalog as written, by field: a messaging
    service's `titles` and `kinds` ({title, says} each) included."""
    found: list[tuple[str, str]] = []
    for field, value in table.items():
        if isinstance(value, str):
            found.append((field, value))
        elif isinstance(value, dict):
            for name, inner in value.items():
                if isinstance(inner, str):
                    found.append((f"{field}.{name}", inner))
                elif isinstance(inner, dict):
                    found += [
                        (f"{field}.{name}.{k}", v) for k, v in inner.items() if isinstance(v, str)
                    ]
    return found


def now() -> datetime:
    return datetime.now(UTC)


def notice_table(key: str, locale: str, *, wording: str = "", table: str = "notice") -> str:
    """`table="child_notice"`: the child's version, its texts marked "for a child"."""
    marker = " for a child" if table == "child_notice" else ""
    return f"""
[service.{table}.{locale}]
title = "{key} title {locale}{marker}"
summary = "{key} summary {locale}{wording}{marker}"
data = "{key} data {locale}{marker}"
purpose = "{key} purpose {locale}{marker}"
recipients = "{key} recipients {locale}{marker}"
retention = "{key} retention {locale}{marker}"
withdraw = "{key} withdraw {locale}{marker}"
"""


def service_table(
    key: str,
    *,
    store: str | None = None,
    locales: tuple[str, ...] = ("en",),
    purposes: tuple[str, ...] = ("own_use",),
    data_categories: tuple[str, ...] = ("titles",),
    recipients: tuple[str, ...] = ("library",),
    retention_days: int = 365,
    wording: str = "",
    minimum_age: int | None = None,
    systems: tuple[str, ...] = (),
    child: bool = True,
    child_wording: str | None = None,
) -> str:
    """`child`: with a child's version of the notice in every locale (needed by every service
    a child below the guardian-consent age can meet). Its wording tells the terms, as a real
    child's version tells the same facts: a material change rewords it unless `child_wording`
    is given."""

    def toml_list(items: tuple[str, ...]) -> str:
        return "[" + ", ".join(f'"{item}"' for item in items) + "]"

    lines = [
        "[[service]]",
        f'key = "{key}"',
        *([f'store = "{store}"'] if store else []),
        f"purposes = {toml_list(purposes)}",
        f"data_categories = {toml_list(data_categories)}",
        f"recipients = {toml_list(recipients)}",
        f"retention_days = {retention_days}",
        *([f"minimum_age = {minimum_age}"] if minimum_age else []),
        *([f"systems = {toml_list(systems)}"] if systems else []),
    ]
    children = (
        "".join(
            notice_table(
                key,
                loc,
                wording=(
                    f"{wording} ({', '.join(purposes + data_categories + recipients)}; "
                    f"{retention_days} days)"
                    if child_wording is None
                    else child_wording
                ),
                table="child_notice",
            )
            for loc in locales
        )
        if child
        else ""
    )
    return (
        "\n".join(lines)
        + "".join(notice_table(key, loc, wording=wording) for loc in locales)
        + children
    )


def messages_table(
    key: str = "messages",
    *,
    kinds: tuple[str, ...] = ("hold_filled", "item_due"),
    channels: tuple[str, ...] = ("email", "sms"),
    locales: tuple[str, ...] = ("en",),
    systems: tuple[str, ...] = (),
    channel_systems: dict[str, tuple[str, ...]] | None = None,
    carry_over: tuple[tuple[str, str, tuple[str, ...]], ...] = (),
    purposes: tuple[str, ...] = ("notices",),
    recipients: tuple[str, ...] = ("library",),
    wording: str = "",
) -> str:
    """A messaging service: each kind by each channel is its own choice. `carry_over`:
    (service replaced, its channel, the kinds its notice named)."""

    def toml_list(items: tuple[str, ...]) -> str:
        return "[" + ", ".join(f'"{item}"' for item in items) + "]"

    table = service_table(
        key,
        locales=locales,
        purposes=purposes,
        data_categories=("contact_detail",),
        recipients=recipients,
        retention_days=30,
        systems=systems,
        wording=wording,
    )
    words = ""
    for locale in locales:
        for which in ("notice", "child_notice"):
            words += f"\n[service.{which}.{locale}.kinds]\n" + "".join(
                f'{kind} = {{ title = "{kind} {locale} {which}", says = "{kind} says {locale}" }}\n'
                for kind in kinds
            )
    # The kinds' words go inside each notice table: append them under a marker the
    # notice tables' fields are followed by, so TOML reads them as subtables.
    for locale in locales:
        for which in ("notice", "child_notice"):
            table = table.replace(
                f"[service.{which}.{locale}]\n",
                f"[service.{which}.{locale}]\n"
                f'titles = {{ title = "Titles {locale} {which}", says = "titles {locale}" }}\n',
            )
    spec = [f"\n[service.messages]\nchannels = {toml_list(channels)}"]
    if channel_systems:
        spec.append(
            "channel_systems = { "
            + ", ".join(f"{c} = {toml_list(s)}" for c, s in channel_systems.items())
            + " }"
        )
    for kind in kinds:
        spec.append(
            f'[[service.messages.kind]]\nkey = "{kind}"\nils_name = "{kind.title()}"\n'
            'contains = ["branch"]'
        )
    for service, channel, moved in carry_over:
        spec.append(
            f'[[service.messages.carry_over]]\nservice = "{service}"\nchannel = "{channel}"\n'
            f"kinds = {toml_list(moved)}"
        )
    return table + words + "\n".join(spec) + "\n"


def system_table(key: str, endpoint: str, *, name: str | None = None) -> str:
    """A connected system; its signing secret comes from `system_secrets`."""
    return f'[[system]]\nkey = "{key}"\nname = "{name or key.upper()}"\nendpoint = "{endpoint}"\n'


def system_secrets(path: Path, *keys: str) -> dict[str, str]:
    """A secrets file for the systems `keys` (as PORTAL_SYSTEM_SECRETS_FILE names); returns
    the secrets, for receivers that verify signatures."""
    found = {key: new_secret() for key in keys}
    path.write_text("".join(f'{key} = "{secret}"\n' for key, secret in found.items()))
    path.chmod(0o600)  # the portal refuses a key file others can read
    return found


def demo_system_secrets(path: Path) -> Path:
    """A secrets file for every connected system of the demo catalog (deploy/catalog.toml),
    for tests that publish it outside development mode."""
    demo = tomllib.loads((ROOT / "deploy" / "catalog.toml").read_text(encoding="utf-8"))
    system_secrets(path, *(system["key"] for system in demo["system"]))
    return path


def catalog_text(*services: str, library: str = "Test Library", preset: str = "US") -> str:
    header = f'[library]\nname = "{library}"\n\n[jurisdiction]\npreset = "{preset}"\n\n'
    return header + "\n".join(services)


def standard_catalog(locales: tuple[str, ...] = ("en",), **overrides: object) -> str:
    history: dict[str, object] = {"store": "reading_history", "locales": locales}
    history.update(overrides)
    return catalog_text(
        service_table("reading_history", **history),  # type: ignore[arg-type]
        service_table("saved_lists", store="saved_lists", locales=locales),
        service_table("newsletter", locales=locales, data_categories=("email",)),
    )


async def publish(text: str, locales: tuple[str, ...] = ("en",)) -> PublishReport:
    return await publish_catalog(parse_catalog(text, locales, STORE_KEYS), text, now=now())


@dataclass(frozen=True)
class FactoryPatron:
    id: int
    card: str
    pin: str


_counter = iter(range(10_000_000, 99_999_999))


async def make_patron(
    pin: str = "2580", *, born_on: date | None = None, jurisdiction: str | None = None
) -> FactoryPatron:
    card = f"2{next(_counter):011d}"
    new = await create_patron(
        SECRET,
        card,
        now=now(),
        setup_code_hours=1,
        born_on=born_on,
        jurisdiction=jurisdiction,
    )
    await set_pin_with_code(SECRET, card, new.setup_code, pin, now=now())
    return FactoryPatron(new.patron_id, card, pin)


def aged(years: int) -> date:
    """A birth date making a patron `years` old all through the current year (1 January)."""
    return date(now().year - years, 1, 1)


async def decides(
    patron_id: int,
    key: str,
    decision: Decision,
    *,
    at: datetime | None = None,
    timezone: str = "UTC",
    contact: str | None = None,
) -> Outcome:
    """The patron reads the service's current notice and answers it, as the web form does.
    A yes to a message choice gives a contact detail for its channel unless `contact` does."""
    if contact is None and decision is Decision.YES:
        contact = TEST_CONTACTS.get(key.rsplit("__", 1)[-1]) if "__" in key else None
    view = await reads.service_view(patron_id, key, "en")
    return await decisions.decide(
        patron_id,
        key,
        decision,
        notice_version_id=view.notice.id,
        expected_revision=view.revision,
        locale="en",
        now=at or now(),
        timezone=timezone,
        contact=contact,
    )
