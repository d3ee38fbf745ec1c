"""The OpenAPI 3.1 document of the integration API, served at /api/v1/openapi.json: every
endpoint, body and error, written by hand next to the code it describes. A test keeps its
paths equal to the app's routes under /api/ and /oauth/, and a schemathesis run against a
live portal checks every answer against it (tests/system/test_api_schema.py)."""

from __future__ import annotations

import functools
from typing import Any

from portal.api.policy import ACCESS_TOKEN_SECONDS, MAX_LOANS, MAX_PATRONS, Scope
from portal.catalog.policy import CHANNELS, MESSAGE_CONTENTS
from portal.outbox.policy import DeliveryState

SCOPE_MEANINGS = {
    Scope.CONSENT_READ: "Ask whether a patron's consent for a service is in force.",
    Scope.LOANS_WRITE: "Hand over loans to keep in a patron's reading history.",
    Scope.DELETIONS_READ: "Read the deletions connected systems must carry out.",
    Scope.DELETIONS_ACK: "Confirm that a deletion was carried out.",
    Scope.PREFERENCES_READ: "Read which kinds of message each patron agreed to, by which channel.",
    Scope.CONTACTS_READ: "With preferences:read, also read the phone number or email address "
    "each channel's messages go to.",
}
# What a library system is told about one patron and one service: only whether it may use
# the service now, never why or since when.
CHECK_STATUSES = ["on", "off", "never_asked", "paused", "not_offered"]
MAX_CHECKS = 100
# The examples use the demo card, which exists only in development mode (`portal demo-patron`).
DEMO_CARD = "2000 0000 0001"

_REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _json(schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": schema}},
        **extra,
    }


def _error(description: str, **extra: Any) -> dict[str, Any]:
    return _json(_ref("Error"), description, **extra)


_CHALLENGE = {
    "WWW-Authenticate": {
        "description": 'RFC 6750 challenge: `Bearer realm="portal"`, with `error="invalid_token"` '
        "when a token was sent.",
        "required": True,
        "schema": {"type": "string"},
    }
}
_NO_STORE = {
    "Cache-Control": {"schema": {"type": "string", "const": "no-store"}, "required": True},
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "description": "Every error: a stable code, and what it means in words.",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string", "description": "Stable error code."},
            "message": {"type": "string", "description": "The code's meaning, for people."},
        },
    },
    "InsufficientScope": {
        "description": "The token is valid but lacks the scope the endpoint needs; it names it.",
        "allOf": [
            _ref("Error"),
            {
                "type": "object",
                "required": ["scope"],
                "properties": {
                    "error": {"const": "insufficient_scope"},
                    "scope": {"type": "string", "enum": [scope.value for scope in Scope]},
                },
            },
        ],
    },
    "SystemRefusal": {
        "description": "The token lacks the scope (and names it), or deletion requests are "
        "not this client's to see: they are shown to, and confirmed by, only the client of the "
        "connected system they were sent to.",
        "allOf": [
            _ref("Error"),
            {
                "type": "object",
                "properties": {
                    "error": {
                        "enum": ["insufficient_scope", "system_required", "system_not_yours"]
                    },
                    "scope": {"type": "string", "enum": [scope.value for scope in Scope]},
                },
            },
        ],
    },
    "TokenRequest": {
        "type": "object",
        "description": "RFC 6749 §4.4.2. Authenticate with HTTP Basic (`client_secret_basic`) "
        "or with client_id and client_secret in the form (`client_secret_post`), not both.",
        "required": ["grant_type"],
        "properties": {
            "grant_type": {"type": "string", "const": "client_credentials"},
            "scope": {
                "type": "string",
                "description": "Space-separated; omitted: every scope the client holds.",
            },
            "client_id": {"type": "string"},
            "client_secret": {"type": "string"},
        },
    },
    "Token": {
        "type": "object",
        "required": ["access_token", "token_type", "expires_in", "scope"],
        "properties": {
            "access_token": {"type": "string", "description": "A signed JWT (RFC 9068)."},
            "token_type": {"type": "string", "const": "Bearer"},
            "expires_in": {"type": "integer", "const": ACCESS_TOKEN_SECONDS},
            "scope": {"type": "string"},
        },
    },
    "ConsentCheck": {
        "type": "object",
        "required": ["card_number", "service"],
        "properties": {
            "card_number": {"type": "string"},
            "service": {"type": "string", "description": "A service key from the catalog."},
        },
    },
    "ConsentCheckBatch": {
        "type": "object",
        "required": ["checks"],
        "properties": {
            "checks": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_CHECKS,
                "items": _ref("ConsentCheck"),
            }
        },
    },
    "ConsentAnswer": {
        "type": "object",
        "required": ["service", "status"],
        "properties": {
            "service": {"type": "string"},
            "status": {
                "type": "string",
                "enum": CHECK_STATUSES,
                "description": "`paused`: on, but waiting for the patron to confirm a changed "
                "privacy notice; `not_offered`: not offered at the patron's age.",
            },
        },
    },
    "ConsentCheckRefused": {
        "type": "object",
        "description": "One check of a batch that could not be answered (unknown card or "
        "service, malformed card number).",
        "required": ["service", "error"],
        "properties": {"service": {"type": "string"}, "error": {"type": "string"}},
    },
    "ConsentBatchAnswer": {
        "type": "object",
        "required": ["results"],
        "properties": {
            "results": {
                "type": "array",
                "description": "One result per check, in the order asked.",
                "items": {"anyOf": [_ref("ConsentAnswer"), _ref("ConsentCheckRefused")]},
            }
        },
    },
    "Loans": {
        "type": "object",
        "required": ["card_number", "loans"],
        "properties": {
            "card_number": {"type": "string"},
            "loans": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_LOANS,
                "items": {
                    "type": "object",
                    "required": ["title", "borrowed_on"],
                    "properties": {
                        "title": {"type": "string", "minLength": 1, "maxLength": 500},
                        "author": {"type": "string", "maxLength": 300},
                        "borrowed_on": {"type": "string", "format": "date"},
                    },
                },
            },
        },
    },
    "LoansRecorded": {
        "type": "object",
        "required": ["recorded"],
        "properties": {"recorded": {"type": "integer", "minimum": 1}},
    },
    "PatronAsked": {
        "description": "One patron: by their reference (what connected systems are sent), or "
        "by card number.",
        "oneOf": [
            {
                "type": "object",
                "required": ["patron"],
                "additionalProperties": False,
                "properties": {"patron": _ref("PatronReference")},
            },
            {
                "type": "object",
                "required": ["card_number"],
                "additionalProperties": False,
                "properties": {"card_number": {"type": "string"}},
            },
        ],
    },
    "PatronReference": {
        "type": "string",
        "pattern": "^[0-9a-f]{64}$",
        "description": "The patron as connected systems know them: the HMAC-SHA256 of the "
        "normalised card under the patron reference key, in hex.",
    },
    "MessagePreferencesBatch": {
        "type": "object",
        "required": ["patrons"],
        "properties": {
            "patrons": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_PATRONS,
                "items": _ref("PatronAsked"),
            }
        },
    },
    "MessageOn": {
        "type": "object",
        "description": "One kind of message by one channel the patron agreed to and may be "
        "sent now. Anything not listed must not be sent.",
        "required": ["group", "kind", "channel", "contains", "titles"],
        "properties": {
            "group": {"type": "string", "description": "The messaging service's key."},
            "kind": {
                "type": "string",
                "description": "The library system's own name for it (Koha: Hold_Filled).",
            },
            "channel": {"type": "string", "enum": list(CHANNELS)},
            "contains": {
                "type": "array",
                "description": "What the message may carry besides its kind.",
                "items": {"type": "string", "enum": list(MESSAGE_CONTENTS)},
            },
            "titles": {
                "type": "boolean",
                "description": "Whether it may name the title and author: the patron's own "
                "choice, off unless they turned it on.",
            },
        },
    },
    "MessagePreferences": {
        "type": "object",
        "required": ["patron", "messages"],
        "properties": {
            "patron": _ref("PatronReference"),
            "messages": {
                "type": "array",
                "description": "Only what is on: agreed, under the current notice, not paused, "
                "and offered at the patron's age.",
                "items": _ref("MessageOn"),
            },
            "contacts": {
                "type": "object",
                "description": "Only with the contacts:read scope: the detail each channel "
                "of a message that is on goes to (E.164 for sms and phone).",
                "propertyNames": {"enum": list(CHANNELS)},
                "additionalProperties": {"type": "string"},
            },
        },
    },
    "MessagePreferencesRefused": {
        "type": "object",
        "description": "One patron of a batch the portal does not know (patron_unknown, "
        "card_unknown) or whose card number cannot be one (card_format). A reference asked is "
        "named; a card number is not sent back.",
        "required": ["error"],
        "properties": {"patron": _ref("PatronReference"), "error": {"type": "string"}},
    },
    "MessagePreferencesBatchAnswer": {
        "type": "object",
        "required": ["results"],
        "properties": {
            "results": {
                "type": "array",
                "description": "One result per patron, in the order asked.",
                "items": {"anyOf": [_ref("MessagePreferences"), _ref("MessagePreferencesRefused")]},
            }
        },
    },
    "Deletion": {
        "type": "object",
        "required": [
            "id",
            "system",
            "service",
            "patron",
            "reason",
            "before",
            "requested_at",
            "status",
            "confirmed_at",
        ],
        "properties": {
            "id": {"type": "string", "description": "The webhook-id every delivery carried."},
            "system": {"type": "string"},
            "service": {"type": "string"},
            "patron": {
                "type": ["string", "null"],
                "description": "The patron's keyed card reference; null for a retention "
                "sweep, which covers every patron's entries dated before `before`.",
            },
            "reason": {
                "type": "string",
                "enum": ["withdrawn", "expired", "came_of_age", "retention"],
            },
            "before": {"type": ["string", "null"], "format": "date"},
            "requested_at": {"type": "string", "format": "date-time"},
            "status": {"type": "string", "enum": [state.value for state in DeliveryState]},
            "confirmed_at": {"type": ["string", "null"], "format": "date-time"},
        },
    },
    "Deletions": {
        "type": "object",
        "required": ["deletions", "next"],
        "properties": {
            "deletions": {"type": "array", "items": _ref("Deletion")},
            "next": {
                "type": ["string", "null"],
                "description": "Pass as `after` for the next page; null on the last page.",
            },
        },
    },
}

RESPONSES: dict[str, Any] = {
    "BadRequest": _error(
        "The body is not valid JSON, or misses or mangles a field (invalid_json, "
        "card_number_required, card_format, loans_invalid, checks_invalid, patrons_invalid)."
    ),
    "Unauthorised": _error(
        "No access token, or one that is not valid, has expired, or belongs to a revoked or "
        "rotated client (unauthorised).",
        headers=_CHALLENGE,
    ),
    "InsufficientScope": _json(
        _ref("InsufficientScope"),
        "The token does not grant the scope this endpoint needs (insufficient_scope).",
        headers=_CHALLENGE,
    ),
    "TooLarge": _error("The body is larger than the API accepts (body_too_large)."),
    "ForSystemsOnly": _json(
        _ref("SystemRefusal"),
        "The token lacks the scope (insufficient_scope), its client speaks for no connected "
        "system (system_required), or the query names another system (system_not_yours).",
        headers=_CHALLENGE,
    ),
}


def _api(
    scope: Scope,
    summary: str,
    responses: dict[str, Any],
    *,
    forbidden: str = "InsufficientScope",
    **operation: Any,
) -> dict[str, Any]:
    """An API operation: it needs `scope`, and refuses as every API operation does."""
    return {
        "summary": summary,
        "security": [{"oauth2": [scope.value]}],
        **operation,
        "responses": {
            **responses,
            "401": {"$ref": "#/components/responses/Unauthorised"},
            "403": {"$ref": f"#/components/responses/{forbidden}"},
        },
    }


def _body(schema: dict[str, Any], **examples: Any) -> dict[str, Any]:
    described = {
        "schema": schema,
        "examples": {name: {"value": value} for name, value in examples.items()},
    }
    return {"required": True, "content": {"application/json": described}}


PATHS: dict[str, Any] = {
    "/oauth/token": {
        "post": {
            "summary": "An access token for a library system (client credentials grant).",
            "security": [{"clientSecretBasic": []}, {}],
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-www-form-urlencoded": {
                        "schema": _ref("TokenRequest"),
                        "examples": {
                            "narrower": {
                                "value": {
                                    "grant_type": "client_credentials",
                                    "scope": "consent:read",
                                }
                            }
                        },
                    }
                },
            },
            "responses": {
                "200": _json(_ref("Token"), "Issued.", headers=_NO_STORE),
                "400": _error(
                    "invalid_request, invalid_scope or unsupported_grant_type (RFC 6749 §5.2)."
                ),
                "401": _error(
                    "Unknown client or wrong secret (invalid_client).",
                    headers={"WWW-Authenticate": {"required": True, "schema": {"type": "string"}}},
                ),
                "413": {"$ref": "#/components/responses/TooLarge"},
                "429": _error(
                    "Too many failed client authentications from this client id or network "
                    "(too_many_requests).",
                    headers={"Retry-After": {"required": True, "schema": {"type": "integer"}}},
                ),
            },
        }
    },
    "/api/v1/openapi.json": {
        "get": {
            "summary": "This document.",
            "security": [],
            "responses": {"200": _json({"type": "object"}, "The OpenAPI 3.1 document.")},
        }
    },
    "/api/v1/consent-check": {
        "post": _api(
            Scope.CONSENT_READ,
            "Whether patrons' consents are in force: one card and service, or up to "
            f"{MAX_CHECKS} at once.",
            {
                "200": _json(
                    {"anyOf": [_ref("ConsentAnswer"), _ref("ConsentBatchAnswer")]},
                    "The answer; for a batch, one result per check in order.",
                ),
                "400": {"$ref": "#/components/responses/BadRequest"},
                "404": _error("A single check's card or service is unknown."),
                "413": {"$ref": "#/components/responses/TooLarge"},
            },
            requestBody=_body(
                {"anyOf": [_ref("ConsentCheck"), _ref("ConsentCheckBatch")]},
                one={"card_number": DEMO_CARD, "service": "reading_history"},
                batch={
                    "checks": [
                        {"card_number": DEMO_CARD, "service": "reading_history"},
                        {"card_number": DEMO_CARD, "service": "newsletter"},
                    ]
                },
            ),
        )
    },
    "/api/v1/loans": {
        "post": _api(
            Scope.LOANS_WRITE,
            "Hand over a patron's loans, kept only with a current consent to reading history.",
            {
                "201": _json(
                    _ref("LoansRecorded"), "Kept; the portal records which client sent them."
                ),
                "400": {"$ref": "#/components/responses/BadRequest"},
                "404": _error("Unknown card (card_unknown)."),
                "409": _error(
                    "No current consent to reading history: nothing was kept (no_current_consent)."
                ),
                "413": {"$ref": "#/components/responses/TooLarge"},
            },
            requestBody=_body(
                _ref("Loans"),
                loan={
                    "card_number": DEMO_CARD,
                    "loans": [
                        {
                            "title": "Kindred",
                            "author": "Octavia E. Butler",
                            "borrowed_on": "2026-05-05",
                        }
                    ],
                },
            ),
        )
    },
    "/api/v1/message-preferences": {
        "get": _api(
            Scope.PREFERENCES_READ,
            "Which messages one patron agreed to, by kind and channel; their contact details "
            "too with contacts:read.",
            {
                "200": _json(_ref("MessagePreferences"), "The patron's messages that are on."),
                "400": _error(
                    "No patron reference, more than one, or something else (a card number "
                    "never goes in an address) (query_invalid)."
                ),
                "404": _error("No patron has that reference (patron_unknown)."),
            },
            parameters=[
                {
                    "name": "patron",
                    "in": "query",
                    "required": True,
                    "description": "The patron's reference.",
                    "schema": _ref("PatronReference"),
                    "examples": {"reference": {"value": "0" * 64}},
                }
            ],
        ),
        "post": _api(
            Scope.PREFERENCES_READ,
            f"Which messages up to {MAX_PATRONS} patrons agreed to, in one round trip; their "
            "contact details too with contacts:read.",
            {
                "200": _json(
                    _ref("MessagePreferencesBatchAnswer"),
                    "One result per patron, in the order asked.",
                ),
                "400": {"$ref": "#/components/responses/BadRequest"},
                "413": {"$ref": "#/components/responses/TooLarge"},
            },
            requestBody=_body(
                _ref("MessagePreferencesBatch"),
                cards={"patrons": [{"card_number": DEMO_CARD}]},
                mixed={"patrons": [{"card_number": DEMO_CARD}, {"patron": "0" * 64}]},
            ),
        ),
    },
    "/api/v1/deletions": {
        "get": _api(
            Scope.DELETIONS_READ,
            "Deletions the client's connected system must carry out, oldest first.",
            {
                "200": _json(_ref("Deletions"), "A page of deletions."),
                "400": _error("A query parameter is not valid (query_invalid)."),
            },
            forbidden="ForSystemsOnly",
            parameters=[
                {
                    "name": "system",
                    "in": "query",
                    "description": "The connected system the client speaks for (the default); "
                    "another system's requests are refused.",
                    "schema": {"type": "string", "pattern": "^[a-z][a-z0-9_]{1,39}$"},
                },
                {
                    "name": "status",
                    "in": "query",
                    "description": "`unconfirmed` (the default) or `all`.",
                    "schema": {"type": "string", "enum": ["unconfirmed", "all"]},
                },
                {
                    "name": "after",
                    "in": "query",
                    "description": "The `next` of the previous page.",
                    "schema": {"type": "string", "pattern": "^[0-9]{1,18}$"},
                },
                {
                    "name": "limit",
                    "in": "query",
                    "description": "At most this many (default 100).",
                    "schema": {"type": "string", "pattern": "^[0-9]{1,3}$"},
                },
            ],
        )
    },
    "/api/v1/deletions/{id}/ack": {
        "post": _api(
            Scope.DELETIONS_ACK,
            "Confirm that a deletion was carried out; confirming again changes nothing.",
            {
                "200": _json(_ref("Deletion"), "The request, now confirmed."),
                "404": _error("No such deletion sent to this client's system (deletion_unknown)."),
                "413": {"$ref": "#/components/responses/TooLarge"},
            },
            forbidden="ForSystemsOnly",
            parameters=[
                {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
        )
    },
}


@functools.cache
def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Library privacy portal: integration API",
            "version": "1",
            "description": "For library systems (the ILS, a discovery layer). Card numbers "
            "travel only in request bodies. Every error is a JSON object with `error`, a stable "
            "code, and `message`, what it means; an address that is no endpoint answers 404 "
            "(no_endpoint) and a method an endpoint does not take 405 (method_not_allowed, with "
            "`Allow`) with the same body. Access tokens last "
            f"{ACCESS_TOKEN_SECONDS // 60} minutes; ask for a new one when one expires.",
        },
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "responses": RESPONSES,
            "securitySchemes": {
                "oauth2": {
                    "type": "oauth2",
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": "/oauth/token",
                            "scopes": {
                                scope.value: meaning for scope, meaning in SCOPE_MEANINGS.items()
                            },
                        }
                    },
                },
                "clientSecretBasic": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "The client id and secret from `portal api-client add`.",
                },
            },
        },
    }
