"""A child below the guardian-consent age reads every page in the child's register (tú in
Spanish, tu in French), not only the child's version of a privacy notice; an adult reads
the same pages in the adult register (usted, vous)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date

import httpx2 as httpx
import pytest

from portal.minors import services as minors
from tests.factories import (
    SECRET,
    aged,
    catalog_text,
    make_patron,
    now,
    publish,
    service_table,
)
from tests.web import client_for, hidden, visible_text

LOCALES = ("en", "es", "fr")
PAGES = ("/privacy", "/privacy/record", "/reading-history", "/privacy/my-data")
FORMAL = {
    "es": re.compile(r"\b[Uu]sted\b| su | sus |\bSus? "),
    "fr": re.compile(r"\b[Vv]ous\b|\b[Vv]otre\b|\b[Vv]os\b"),
}


@pytest.fixture
def portal_settings(settings):
    return replace(settings, locales=LOCALES, timezone="UTC")


def catalog() -> str:
    return catalog_text(
        service_table("reading_history", store="reading_history", locales=LOCALES),
        service_table("newsletter", locales=LOCALES),
    )


async def decide(client: httpx.AsyncClient, page_path: str, post_path: str, decision: str) -> None:
    """Answer a service's privacy notice as its form does (a guardian's form names the link)."""
    page = await client.get(page_path)
    fields = ("notice_version", "revision", "link") if 'name="link"' in page.text else None
    data = {"decision": decision}
    for name in fields or ("notice_version", "revision"):
        data[name] = hidden(page.text, name)
    answer = await client.post(post_path, data=data)
    assert answer.status_code in (200, 303), answer.text


async def a_child_with_reading_history_on(portal, locale: str) -> httpx.AsyncClient:
    """A ten-year-old whose guardian (linked at the desk) turned reading history on, and who
    said no to the newsletter: every page below has something to say."""
    guardian = await make_patron(born_on=date(1984, 4, 4))
    child = await make_patron(born_on=aged(10))
    link = await minors.link_at_desk(
        SECRET, guardian.card, child.card, "Sam", now=now(), timezone="UTC"
    )
    grown_up = await client_for(portal.app, guardian, "en")
    await decide(
        grown_up,
        f"/guardian/services/reading_history?child={link.link_id}",
        "/guardian/services/reading_history/decision",
        "yes",
    )
    client = await client_for(portal.app, child, locale)
    await decide(client, "/services/newsletter", "/services/newsletter/decision", "no")
    return client


async def an_adult_with_reading_history_on(portal, locale: str) -> httpx.AsyncClient:
    client = await client_for(portal.app, await make_patron(born_on=date(1984, 4, 4)), locale)
    await decide(client, "/services/reading_history", "/services/reading_history/decision", "yes")
    await decide(client, "/services/newsletter", "/services/newsletter/decision", "no")
    return client


async def texts_of(client: httpx.AsyncClient) -> dict[str, str]:
    pages = {}
    for path in PAGES:
        answer = await client.get(path)
        assert answer.status_code == 200, path
        pages[path] = visible_text(answer.text)
    return pages


CHILD_WORDING = {
    "es": {
        "/privacy": [
            "Sigue desactivado hasta que leas el aviso de privacidad",
            "Tienes 1 padre, madre o tutor vinculado.",
            "Solo guarda lo que necesita cada servicio que activas.",
        ],
        "/privacy/record": [
            "Dijiste que no",
            "Tu padre, madre o tutor dijo que sí",
            "Cada decisión sobre tus datos, con el aviso de privacidad que viste.",
        ],
        "/reading-history": [
            "Solo tú puedes ver esta lista.",
            "Los títulos que saques prestados a partir de ahora aparecerán aquí.",
        ],
        "/privacy/my-data": ["Todo lo que este portal guarda sobre ti.", "Dijiste que no"],
    },
    "fr": {
        "/privacy": [
            "jusqu’à ce que tu lises son avis de confidentialité",
            "parent ou tuteur lié à ton compte.",
        ],
        "/privacy/record": [
            "Tu as dit non",
            "Ton parent ou tuteur a dit oui",
            "Chacun de tes choix sur tes données",
        ],
        "/reading-history": [
            "Tu es la seule personne à pouvoir voir cette liste.",
            "Les titres que tu emprunteras à partir de maintenant apparaîtront ici.",
        ],
        "/privacy/my-data": ["Tout ce que ce portail garde sur toi.", "Tu as dit non"],
    },
}
ADULT_WORDING = {
    "es": {
        "/privacy": ["hasta que usted lea su aviso de privacidad"],
        "/privacy/record": ["Usted dijo que no", "Usted dijo que sí"],
        "/reading-history": ["Solo usted puede ver esta lista."],
        "/privacy/my-data": ["Todo lo que este portal guarda sobre usted."],
    },
    "fr": {
        "/privacy": ["jusqu’à ce que vous lisiez son avis de confidentialité"],
        "/privacy/record": ["Vous avez dit non", "Vous avez dit oui"],
        "/reading-history": ["Vous êtes la seule personne à pouvoir voir cette liste."],
        "/privacy/my-data": ["Tout ce que ce portail conserve à votre sujet."],
    },
}


def formal_words(locale: str, text: str) -> list[str]:
    # The test catalog's own notice text ("... title es") says neither; anything found is
    # the portal's wording.
    return FORMAL[locale].findall(text)


@pytest.mark.parametrize("locale", ["es", "fr"])
async def test_a_child_reads_every_page_in_the_childs_register(portal, locale: str) -> None:
    await publish(catalog(), LOCALES)
    pages = await texts_of(await a_child_with_reading_history_on(portal, locale))
    for path, text in pages.items():
        for wording in CHILD_WORDING[locale][path]:
            assert wording in text, (path, wording)
        assert formal_words(locale, text) == [], (path, text)


@pytest.mark.parametrize("locale", ["es", "fr"])
async def test_an_adult_reads_the_same_pages_in_the_adult_register(portal, locale: str) -> None:
    await publish(catalog(), LOCALES)
    pages = await texts_of(await an_adult_with_reading_history_on(portal, locale))
    for path, text in pages.items():
        for wording in ADULT_WORDING[locale][path]:
            assert wording in text, (path, wording)
        for wordings in CHILD_WORDING[locale].values():
            for wording in wordings:
                assert wording not in text, (path, wording)


async def test_a_teenager_reads_the_adult_register(portal) -> None:
    # At 15 (above the US guardian-consent age of 13) the pages speak as to an adult.
    await publish(catalog(), LOCALES)
    client = await client_for(portal.app, await make_patron(born_on=aged(15)), "es")
    privacy = visible_text((await client.get("/privacy")).text)
    assert "hasta que usted lea su aviso de privacidad" in privacy


async def test_a_childs_error_messages_speak_the_childs_register(portal) -> None:
    await publish(catalog(), LOCALES)
    client = await client_for(portal.app, await make_patron(born_on=aged(10)), "es")
    page = await client.get("/services/newsletter")
    answer = await client.post(
        "/services/newsletter/decision",
        data={
            "decision": "no",
            "notice_version": hidden(page.text, "notice_version"),
            "revision": str(int(hidden(page.text, "revision")) + 1),  # changed elsewhere
        },
    )
    assert "Tus decisiones cambiaron en otra ventana." in visible_text(answer.text)
