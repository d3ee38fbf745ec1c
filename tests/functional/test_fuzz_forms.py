"""Property-based: any form posted to any page gets a clear answer (never a 5xx), and a
refused decision writes nothing; every route of the app, as a caller who reaches it, answers
any path parameter, query, form, JSON body or Basic header without a server error."""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Route

from portal.app import create_app
from portal.ledger.models import ConsentEvent
from portal.settings import Settings
from tests.factories import make_patron, publish, standard_catalog, system_table
from tests.functional.test_route_access import ACCESS, ANONYMOUS, EVERYONE, ROLES, _headers, _people
from tests.support import portal_client
from tests.web import sign_in

ROUTES = [
    "/signin",
    "/setup-pin",
    "/language",
    "/services/reading_history/decision",
    "/services/no_such_service/decision",
    "/saved-lists",
    "/saved-lists/items",
    "/saved-lists/delete",
    "/guardian/link",
    "/guardian/unlink",
    "/guardian/services/reading_history/decision",
    "/privacy/sharing",
]
FIELDS = ["card", "pin", "pin_again", "code", "decision", "revision", "notice_version", "link",
          "list_id", "title", "name", "label", "locale", "next", "share"]  # fmt: skip
values = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["yes", "no", "0", "1", "-1", "9" * 30, "2147483648", "//evil.example"]),
)
forms = st.dictionaries(st.sampled_from(FIELDS), values, max_size=6)


@pytest.fixture
async def signed_in(portal):
    await publish(standard_catalog())
    patron = await make_patron()
    await sign_in(portal.client, patron)
    return portal, patron


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(route=st.sampled_from(ROUTES), form=forms)
async def test_any_form_gets_a_clear_answer_and_a_refusal_writes_nothing(
    signed_in, route: str, form: dict[str, str]
) -> None:
    portal, patron = signed_in
    before = await ConsentEvent.filter(patron_id=patron.id).count()
    answer = await portal.client.post(route, data=form)
    assert answer.status_code < 500, (route, form, answer.text[:300])
    if answer.status_code >= 400 and route.endswith("/decision"):
        assert await ConsentEvent.filter(patron_id=patron.id).count() == before


# --- every route, as a caller who reaches it -----------------------------------------------

EVERY_FIELD = sorted({*FIELDS, "body_name", "born_on", "catalog", "catalog_text", "child_card",
    "client_id", "client_secret", "entry", "grant_type", "guardian_card", "guardian_label",
    "instrument", "password", "password_again", "reason", "receipt", "received_on", "ref",
    "reference", "request", "requesting_body", "scope", "service", "token", "username",
    "purpose", "confirm"})  # fmt: skip
QUERY_KEYS = ["before", "action", "since", "until", "year", "for", "done", "system", "status",
              "after", "limit", "code", "state", "next"]  # fmt: skip
hostile = st.one_of(
    values,
    st.sampled_from(
        [
            "²",
            "₀₁₂",
            "٣",
            "9" * 4400,
            str(2**63),
            "\x85",
            "\u2028",
            "a\r\nb",
            "é" * 50,
            "².x.y",
            "1.0.0.-.p.9.é",
        ]
    ),
)
path_values = st.one_of(
    st.sampled_from(["saved_lists", "newsletter", "en", "1", "0" * 24, "msg_unknown"]),
    st.text(min_size=1, max_size=60).filter(lambda text: "/" not in text and text not in ".."),
    st.sampled_from(["n" * 41, str(2**31), str(2**63), "\u00e9" * 24, "4111111111111111" * 3]),
)
json_bodies = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
basic_headers = st.binary(max_size=40).map(
    lambda raw: {"authorization": "Basic " + base64.b64encode(raw).decode()}
)


@pytest.fixture
async def callers(portal):
    await publish(standard_catalog() + system_table("ils", "https://ils.library.example/hooks"))
    people = await _people(portal.client)
    routes = [route for route in portal.app.routes if isinstance(route, Route)]
    return (
        portal,
        people,
        [
            (route, method)
            for route in routes
            for method in sorted(route.methods or ())
            if method != "HEAD"
        ],
    )


@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_every_route_answers_any_input_without_a_server_error(callers, data) -> None:
    portal, people, routes = callers
    route, method = data.draw(st.sampled_from(routes), label="route")
    reaching = ACCESS[route.name]
    role = next((r for r in ROLES if r in reaching and reaching is not EVERYONE), ANONYMOUS)
    params = {name: data.draw(path_values, label=name) for name in route.param_convertors}
    path = re.sub(
        r"\{(\w+)(:\w+)?\}", lambda m: quote(str(params[m.group(1)]), safe=""), route.path
    )
    query = data.draw(
        st.dictionaries(st.sampled_from(QUERY_KEYS), hostile, max_size=3), label="query"
    )
    headers = await _headers(people, role)
    if route.path.startswith("/oauth/"):
        headers.update(data.draw(basic_headers | st.just({}), label="authorization"))
    async with portal_client(portal.app, **headers) as client:
        if route.path.startswith("/api/") and method == "POST":
            body = json.dumps(data.draw(json_bodies, label="json"))
            answer = await client.post(path, params=query, content=body)
        elif method == "POST":
            form = data.draw(
                st.dictionaries(st.sampled_from(EVERY_FIELD), hostile, max_size=6), label="form"
            )
            answer = await client.post(path, params=query, data=form)
        else:
            answer = await client.request(method, path, params=query)
    # 503: a page that says plainly a part is not set up (receipt keys in production).
    assert answer.status_code < 500 or answer.status_code == 503, (
        route.name,
        path,
        answer.text[:300],
    )


# --- every page form, a few hundred cases each ---------------------------------------------

PAGE_FORMS = sorted(
    route.name
    for route in create_app(Settings(dev_mode=True, secret_key="f" * 32)).routes  # no database
    if isinstance(route, Route)
    and "POST" in (route.methods or ())
    and not route.path.startswith(("/api/", "/oauth/"))
)


@pytest.mark.parametrize("form_route", PAGE_FORMS)
@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_each_page_form_answers_a_few_hundred_forms_without_a_server_error(
    callers, engine: str, form_route: str, data
) -> None:
    if engine != "sqlite":
        pytest.skip("a few hundred cases per form on one engine; every route on both above")
    portal, people, routes = callers
    route = next(route for route, method in routes if route.name == form_route)
    reaching = ACCESS[route.name]
    role = next((r for r in ROLES if r in reaching and reaching is not EVERYONE), ANONYMOUS)
    params = {name: data.draw(path_values, label=name) for name in route.param_convertors}
    path = re.sub(
        r"\{(\w+)(:\w+)?\}", lambda m: quote(str(params[m.group(1)]), safe=""), route.path
    )
    form = data.draw(st.dictionaries(st.sampled_from(EVERY_FIELD), hostile, max_size=6))
    async with portal_client(portal.app, **await _headers(people, role)) as client:
        answer = await client.post(path, data=form)
    assert answer.status_code < 500 or answer.status_code == 503, (path, answer.text[:300])
