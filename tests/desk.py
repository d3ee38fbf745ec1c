"""Helpers for the desk's tests: staff accounts made as `portal staff add` makes them, a
staff member signing in and handing the screen over through the pages, and a database that
refuses staff audit lines (a change must then fail with its audit line)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import httpx2 as httpx
from tortoise import Tortoise

from portal.staff.policy import Role
from portal.staff.services import add_local_staff, set_password_with_code
from tests.factories import SECRET, now
from tests.web import hidden

_numbers = itertools.count(1)
_cards = itertools.count(30_000_000)


@dataclass(frozen=True)
class FactoryStaff:
    staff_id: int
    username: str
    password: str


async def make_staff(*roles: Role) -> FactoryStaff:
    username = f"staff{next(_numbers)}"
    password = "correct horse battery"
    new = await add_local_staff(
        SECRET,
        username,
        f"Staff {username}",
        frozenset(roles or (Role.DESK,)),
        now=now(),
        setup_code_hours=1,
    )
    await set_password_with_code(SECRET, username, new.setup_code, password, now=now())
    return FactoryStaff(new.staff_id, username, password)


def new_card_number() -> str:
    return f"3{next(_cards):011d}"


async def staff_sign_in(client: httpx.AsyncClient, staff: FactoryStaff) -> httpx.Response:
    response = await client.post(
        "/staff/signin", data={"username": staff.username, "password": staff.password}
    )
    assert response.status_code == 303, response.text
    return response


async def create_card(client: httpx.AsyncClient, **fields: str) -> httpx.Response:
    return await client.post("/desk/cards", data=fields)


async def hand_over(client: httpx.AsyncClient, page: httpx.Response) -> httpx.Response:
    """Press "Hand the screen to the patron" on a desk page that offers it."""
    response = await client.post(
        "/desk/handover",
        data={"ref": hidden(page.text, "ref"), "purpose": hidden(page.text, "purpose")},
    )
    assert response.status_code == 303, response.text
    return response


async def answer_notice(client: httpx.AsyncClient, decision: str) -> httpx.Response:
    screen = await client.get("/handover")
    assert screen.status_code == 200, screen.text
    return await client.post(
        "/handover/decision",
        data={
            "decision": decision,
            "service": hidden(screen.text, "service"),
            "notice_version": hidden(screen.text, "notice_version"),
            "revision": hidden(screen.text, "revision"),
        },
    )


async def refuse_audit_lines(database_url: str) -> None:
    """From here on, writing a staff audit line fails: a change must fail with it."""
    connection = Tortoise.get_connection("default")
    if database_url.startswith("sqlite"):
        await connection.execute_script(
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON staff_audit_event "
            "BEGIN SELECT RAISE(ABORT, 'audit refused'); END;"
        )
        return
    await connection.execute_script(
        "CREATE FUNCTION refuse_audit() RETURNS trigger AS $$ BEGIN "
        "RAISE EXCEPTION 'audit refused'; END $$ LANGUAGE plpgsql; "
        "CREATE TRIGGER refuse_audit BEFORE INSERT ON staff_audit_event "
        "FOR EACH ROW EXECUTE FUNCTION refuse_audit();"
    )
