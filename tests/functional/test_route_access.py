"""Every route, walked as each kind of caller, against the table below: who may reach it.
A new route fails this test until it is declared here. Desk staff reach no patron page and
no patron data; a staff session counts for nothing on patron routes, a patron session for
nothing at the desk, and nobody reaches a handed-over screen without its own cookie."""

from __future__ import annotations

from dataclasses import dataclass, replace

import httpx2 as httpx
import pytest
from starlette.routing import Route

from portal.consent.policy import Decision
from portal.minors.services import link_at_desk
from portal.patrons.services import start_session
from portal.settings import Settings
from portal.staff.policy import Role
from portal.staff.services import start_session as start_staff_session
from portal.stores.saved_lists import services as saved_lists
from tests.api import make_client, token_from_endpoint
from tests.desk import make_staff
from tests.factories import (
    SECRET,
    aged,
    decides,
    make_patron,
    now,
    publish,
    standard_catalog,
    system_table,
)
from tests.support import portal_client

ANONYMOUS, PATRON, OTHER_PATRON, GUARDIAN = "anonymous", "patron", "other patron", "guardian"
DESK, OFFICER, API_CLIENT = "desk staff", "privacy officer", "API client"
ROLES = (ANONYMOUS, PATRON, OTHER_PATRON, GUARDIAN, DESK, OFFICER, API_CLIENT)
EVERYONE = frozenset(ROLES)
PATRONS = frozenset({PATRON, OTHER_PATRON, GUARDIAN})
NOBODY: frozenset[str] = frozenset()

# Route name -> who gets past its access check. EVERYONE marks public pages.
ACCESS: dict[str, frozenset[str]] = {
    "health.live": EVERYONE,
    "health.ready": EVERYONE,
    "consent.home": EVERYONE,
    "patrons.signin_form": EVERYONE,
    "patrons.signin": EVERYONE,
    "patrons.signout": EVERYONE,
    "patrons.setup_form": EVERYONE,
    "patrons.setup": EVERYONE,
    "patrons.language": EVERYONE,
    "staff.signin_form": EVERYONE,
    "staff.signin": EVERYONE,
    "staff.signout": EVERYONE,
    "staff.setup_form": EVERYONE,
    "staff.setup": EVERYONE,
    "staff.provider_start": EVERYONE,
    "staff.provider_callback": EVERYONE,
    "handover.cleared": EVERYONE,
    # Receipts are checked by anyone; the keys that sign them and the notices as published are
    # the library's public record.
    "rights.verify_form": EVERYONE,
    "rights.verify": EVERYONE,
    "rights.jwks": EVERYONE,
    "rights.checkpoints": EVERYONE,
    "rights.checkpoint": EVERYONE,
    "rights.notices": EVERYONE,
    "rights.notice_history": EVERYONE,
    "rights.notice_version": EVERYONE,
    "consent.privacy": PATRONS,
    "patrons.dismiss_pin_reset": PATRONS,
    "consent.record": PATRONS,
    "consent.notice": PATRONS,
    # A patron's own copy and receipts (a guardian's holds none of the child's library use).
    "rights.export": PATRONS,
    "rights.export_download": PATRONS,
    "rights.receipt": PATRONS,
    "rights.receipt_download": PATRONS,
    "rights.receipt_proof": PATRONS,
    "decisions.decide": PATRONS,
    "decisions.all_off": PATRONS,
    "decisions.messages": PATRONS,
    "decisions.choose_messages": PATRONS,
    "stores.reading_history": PATRONS,
    "stores.reading_history.demo_loan": PATRONS,
    "stores.saved_lists": PATRONS,
    "stores.saved_lists.create": PATRONS,
    "stores.saved_lists.add": PATRONS,
    "stores.saved_lists.delete": PATRONS,
    "minors.guardian_home": PATRONS,
    "minors.redeem_code": PATRONS,
    "minors.end_link": PATRONS,
    # A minor's own pages (a link code to give a parent, sharing choices with them): none of
    # the adults above reaches them.
    "minors.link_code": NOBODY,
    "minors.guardian_notice": PATRONS,
    "minors.guardian_decide": PATRONS,
    "minors.guardian_messages": PATRONS,
    "minors.guardian_choose_messages": PATRONS,
    "minors.sharing": NOBODY,
    "minors.child_end_link": NOBODY,
    # The integration API: a library system's OAuth access token, nothing else. The token
    # endpoint checks client credentials itself, and the API's description is public.
    "api.consent_check": frozenset({API_CLIENT}),
    "api.loans": frozenset({API_CLIENT}),
    "api.openapi": EVERYONE,
    "oauth.token": EVERYONE,
    "api.deletions": frozenset({API_CLIENT}),
    "api.deletions_ack": frozenset({API_CLIENT}),
    "api.message_preferences": frozenset({API_CLIENT}),
    "api.message_preferences_batch": frozenset({API_CLIENT}),
    "desk.home": frozenset({DESK}),
    "desk.new_card": frozenset({DESK}),
    "desk.handover": frozenset({DESK}),
    "desk.setup_slip": frozenset({DESK}),
    "desk.lookup_form": frozenset({DESK}),
    "desk.lookup": frozenset({DESK}),
    "desk.unlock": frozenset({DESK}),
    "desk.unlock_network": frozenset({DESK}),
    "desk.reset_pin": frozenset({DESK}),
    "desk.links_form": frozenset({DESK}),
    "desk.link": frozenset({DESK}),
    "desk.unlink": frozenset({DESK}),
    "desk.welcome": frozenset({DESK}),
    "staff.trail": frozenset({OFFICER}),
    "officer.report": frozenset({OFFICER}),
    "officer.promises": frozenset({OFFICER}),
    "officer.catalog": frozenset({OFFICER}),
    "officer.catalog_preview": frozenset({OFFICER}),
    "officer.catalog_publish": frozenset({OFFICER}),
    "officer.requests": frozenset({OFFICER}),
    "officer.record_request": frozenset({OFFICER}),
    "officer.decide_request": frozenset({OFFICER}),
    "officer.transparency": frozenset({OFFICER}),
    "officer.transparency_csv": frozenset({OFFICER}),
    "officer.inventory": frozenset({OFFICER}),
    # Only the browser a screen was handed to, by its hand-over cookie: none of the above.
    "handover.screen": NOBODY,
    "handover.pin": NOBODY,
    "handover.decide": NOBODY,
    "handover.messages": NOBODY,
    "handover.later": NOBODY,
    "handover.more_time": NOBODY,
    "handover.back": EVERYONE,  # handing back an unknown screen only leads to staff sign-in
}
PATH_PARAMS = {
    "key": "saved_lists",
    "group": "messages",
    "locale": "en",
    "id": "msg_unknown",
    "reference": "0" * 24,
    "revision": 1,
    "size": 1,
}
MARKER = "Marker-of-patron-A"


@pytest.fixture
def portal_settings(settings: Settings) -> Settings:
    return replace(settings, dev_mode=True)


def _refused(response: httpx.Response) -> bool:
    if response.status_code in (401, 403, 410):
        return True
    location = response.headers.get("location", "")
    return response.is_redirect and location in ("/signin", "/staff/signin")


@dataclass(frozen=True)
class People:
    patron: int
    other: int
    guardian: int
    desk: int
    officer: int
    api_token: str


async def _people(client: httpx.AsyncClient) -> People:
    """Patron A (with a saved list), another patron, a guardian of a linked child, desk
    staff, a privacy officer and a library system's API client (with an access token from
    the token endpoint, holding every scope)."""
    patron = await make_patron()
    await decides(patron.id, "saved_lists", Decision.YES)
    await saved_lists.create_list(patron.id, MARKER, now=now())
    other = await make_patron()
    guardian = await make_patron()
    child = await make_patron(born_on=aged(8))
    await link_at_desk(SECRET, guardian.card, child.card, "Kid", now=now(), timezone="UTC")
    desk = await make_staff(Role.DESK)
    officer = await make_staff(Role.PRIVACY_OFFICER)
    token = await token_from_endpoint(client, await make_client(system="ils"))
    return People(patron.id, other.id, guardian.id, desk.staff_id, officer.staff_id, token)


async def _headers(people: People, role: str) -> dict[str, str]:
    """A fresh session for every request: a sign-out must not spoil the next one."""
    patrons = {PATRON: people.patron, OTHER_PATRON: people.other, GUARDIAN: people.guardian}
    staff = {DESK: (people.desk, Role.DESK), OFFICER: (people.officer, Role.PRIVACY_OFFICER)}
    if role in patrons:
        token = await start_session(SECRET, patrons[role], now=now(), minutes=30, hours=1)
        return {"cookie": f"portal_session={token}"}
    if role in staff:
        staff_id, staff_role = staff[role]
        token = await start_staff_session(
            SECRET, staff_id, frozenset({staff_role}), now=now(), minutes=10, hours=1
        )
        return {"cookie": f"portal_staff={token}"}
    if role == API_CLIENT:
        return {"authorization": f"Bearer {people.api_token}"}
    return {}


async def test_every_route_is_reached_only_by_those_the_table_names(portal) -> None:
    # The API client speaks for a connected system, as a client reading deletions must.
    await publish(standard_catalog() + system_table("ils", "https://ils.library.example/hooks"))
    people = await _people(portal.client)
    routes = [route for route in portal.app.routes if isinstance(route, Route)]
    assert {route.name for route in routes} == set(ACCESS), "declare each route in ACCESS"
    outside_the_table = []
    for route in routes:
        path = portal.app.url_path_for(
            route.name, **{k: v for k, v in PATH_PARAMS.items() if k in route.param_convertors}
        )
        for method in sorted((route.methods or set()) - {"HEAD"}):
            for role in ROLES:
                async with portal_client(portal.app, **await _headers(people, role)) as client:
                    response = await client.request(method, path)
                assert response.status_code < 500, (route.name, role, response.text[:300])
                if ACCESS[route.name] is not EVERYONE:
                    reached = not _refused(response)
                    if reached != (role in ACCESS[route.name]):
                        outside_the_table.append((route.name, method, role, response.status_code))
                if role != PATRON:
                    assert MARKER not in response.text, (route.name, role)
    assert outside_the_table == [], "\n".join(map(str, outside_the_table))
