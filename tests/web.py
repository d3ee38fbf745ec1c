"""Helpers for functional tests: act as a person would, through forms."""

from __future__ import annotations

import html
import re

import httpx2 as httpx
from starlette.types import ASGIApp

from tests.factories import FactoryPatron
from tests.support import portal_client


async def sign_in(client: httpx.AsyncClient, patron: FactoryPatron) -> None:
    response = await client.post("/signin", data={"card": patron.card, "pin": patron.pin})
    assert response.status_code == 303, response.text


async def client_for(app: ASGIApp, patron: FactoryPatron, locale: str = "en") -> httpx.AsyncClient:
    """A browser of its own for `patron`: the language chosen first, then signed in."""
    client = portal_client(app)
    await client.post("/language", data={"locale": locale, "next": "/signin"})
    await sign_in(client, patron)
    return client


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert match, f"no hidden field {name}"
    return match.group(1)


async def choose(client: httpx.AsyncClient, key: str, decision: str) -> httpx.Response:
    """Open the service's notice, then press one of its buttons."""
    page = await client.get(f"/services/{key}")
    assert page.status_code == 200
    return await client.post(
        f"/services/{key}/decision",
        data={
            "decision": decision,
            "notice_version": hidden(page.text, "notice_version"),
            "revision": hidden(page.text, "revision"),
        },
    )


def visible_text(page: str) -> str:
    """What a reader sees: tags dropped, entities decoded, white space folded."""
    page = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", page, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


async def choose_messages(
    client: httpx.AsyncClient,
    group: str,
    on: list[str],
    contacts: dict[str, str] | None = None,
) -> httpx.Response:
    """Open a messaging service's page, tick exactly `on` (keys of its choices), give the
    `contacts` (by channel) and save, as a browser sends the grid."""
    page = await client.get(f"/messages/{group}")
    assert page.status_code == 200
    form: dict[str, object] = dict(
        re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text)
    )
    form["on"] = on
    for channel, value in (contacts or {}).items():
        form[f"contact:{channel}"] = value
    return await client.post(f"/messages/{group}", data=form)
