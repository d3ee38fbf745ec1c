"""The OpenAPI document describes exactly the API the app serves: every route under /api/ and
/oauth/ and nothing else, every error with the one error body, every scope. (That each
answer matches it is checked against a live portal: tests/system/test_api_schema.py.)"""

from __future__ import annotations

import re
from typing import Any

from starlette.routing import Route

from portal.api.openapi import document
from portal.api.policy import Scope
from portal.errors import ApiCode

# Described here, built on the branch that adds the deletions outbox: when it is merged this
# set becomes empty and the test below holds the routes to the document as for every other.
MACHINE = ("/api/", "/oauth/")


def _served(app: Any) -> set[tuple[str, str]]:
    return {
        (method, re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path))
        for route in app.routes
        if isinstance(route, Route) and route.path.startswith(MACHINE)
        for method in (route.methods or set()) - {"HEAD"}
    }


def _described() -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in document()["paths"].items() for method in item}


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        *_, section, name = node["$ref"].split("/")
        node = document()["components"][section][name]
    return node


def _operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document()["paths"].items()
        for method, operation in item.items()
    ]


async def test_the_document_is_public_and_is_openapi_3_1(portal) -> None:
    answer = await portal.client.get("/api/v1/openapi.json")
    assert answer.status_code == 200
    assert answer.json()["openapi"] == "3.1.0"
    assert answer.json() == document()


async def test_every_api_route_is_described_and_every_description_is_served(portal) -> None:
    assert _served(portal.app) == _described()


def test_every_error_has_the_error_body() -> None:
    for method, path, operation in _operations():
        for status, response in operation["responses"].items():
            if int(status) < 400:
                continue
            schema = _resolve(_resolve(response)["content"]["application/json"]["schema"])
            required = set(schema.get("required", ()))
            for part in schema.get("allOf", ()):
                required |= set(_resolve(part).get("required", ()))
            assert {"error", "message"} <= required, (method, path, status)


def test_every_protected_operation_names_its_scope_and_its_refusals() -> None:
    offered = document()["components"]["securitySchemes"]["oauth2"]["flows"]
    assert set(offered["clientCredentials"]["scopes"]) == {scope.value for scope in Scope}
    assert offered["clientCredentials"]["tokenUrl"] == "/oauth/token"
    for method, path, operation in _operations():
        if not path.startswith("/api/") or path.endswith("openapi.json"):
            continue
        [requirement] = operation["security"]
        assert set(requirement["oauth2"]) <= {scope.value for scope in Scope}, (method, path)
        assert {"401", "403"} <= set(operation["responses"]), (method, path)


def test_the_token_endpoint_describes_rfc_6749_errors() -> None:
    responses = document()["paths"]["/oauth/token"]["post"]["responses"]
    described = " ".join(response.get("description", "") for response in responses.values())
    for code in (
        ApiCode.OAUTH_INVALID_REQUEST,
        ApiCode.OAUTH_INVALID_CLIENT,
        ApiCode.OAUTH_INVALID_SCOPE,
        ApiCode.OAUTH_UNSUPPORTED_GRANT_TYPE,
        ApiCode.OAUTH_THROTTLED,
    ):
        assert code.value in described


async def test_an_unknown_api_address_and_a_wrong_method_answer_the_error_body(portal) -> None:
    for method, path, status in (
        ("GET", "/api/v1/nothing-here", 404),
        ("POST", "/api/v2/consent-check", 404),
        ("GET", "/oauth/authorize", 404),
        ("GET", "/api/v1/loans", 405),
        ("DELETE", "/api/v1/deletions", 405),
        ("GET", "/oauth/token", 405),
    ):
        answer = await portal.client.request(method, path)
        assert answer.status_code == status, (method, path)
        body = answer.json()
        assert set(body) == {"error", "message"}, (method, path, body)
        assert body["message"]
        if status == 405:
            assert method not in answer.headers["allow"]


async def test_every_body_too_large_is_an_answer_the_document_gives(portal) -> None:
    too_large = {"content-length": str(2 * 1024 * 1024), "content-type": "application/json"}
    for method, path, operation in _operations():
        if method != "POST":
            continue
        served = path.replace("{id}", "msg_unknown")
        answer = await portal.client.request(method, served, headers=too_large, content=b"{}")
        assert answer.status_code == 413, (method, path)
        assert answer.json()["error"] == "body_too_large"
        assert "413" in operation["responses"], f"{method} {path} does not list its 413"
