"""The data inventory: every table and column the portal stores, with its purpose and how
long it is kept (docs/PROMISES.md promise 7). The README's "What the portal itself keeps" is
rendered from it (`python -m portal.officer.inventory`), the privacy officer's page shows
it, and a test compares it with the migrated schema on SQLite and PostgreSQL. Pure data."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

# Bookkeeping of the database engine and the migration tool, not the portal's data.
NOT_PORTAL_DATA = frozenset({"tortoise_migrations", "sqlite_sequence"})


@dataclass(frozen=True)
class Table:
    name: str
    purpose: str
    kept: str
    columns: dict[str, str]  # column -> what it holds


WHILE_ACCOUNT = "while the account exists"
ID = "row number"

INVENTORY: tuple[Table, ...] = (
    Table(
        "patron",
        "a patron's account: sign-in, age rules, language",
        WHILE_ACCOUNT,
        {
            "id": ID,
            "card_lookup": "keyed hash of the card number (never the number)",
            "pin_hash": "Argon2 hash of the PIN the patron chose",
            "locale": "preferred language",
            "born_on": "date of birth, optional: the age rules for minors",
            "jurisdiction": "the patron's own age-rule preset, when not the library's",
            "shares_with_guardians": "a teenager lets their guardians see their choices",
            "came_of_age_at": "when the patron reached majority (guardian links ended)",
            "consent_version": "a counter of changes to the patron's consents (page cache)",
            "created_at": "when the account was made",
        },
    ),
    Table(
        "pin_setup_code",
        "letting a patron choose their own PIN",
        "until used or expired (`portal purge-sessions`)",
        {
            "id": ID,
            "patron_id": "whose code",
            "code_lookup": "keyed hash of the code",
            "expires_at": "end of validity",
        },
    ),
    Table(
        "portal_session",
        "a patron staying signed in",
        "until sign-out, `PORTAL_SESSION_MINUTES` idle or `PORTAL_SESSION_HOURS`",
        {
            "id": ID,
            "patron_id": "whose session",
            "token_lookup": "keyed hash of the session token",
            "expires_at": "idle timeout",
            "ends_at": "absolute end",
        },
    ),
    Table(
        "signin_counter",
        "limiting PIN, password and link-code guesses",
        "`PORTAL_SIGNIN_WINDOW_SECONDS` (`portal purge-sessions`)",
        {
            "id": ID,
            "key_lookup": "keyed hash of a card, account or client network",
            "window_started_ms": "start of the counting window",
            "attempts": "failed attempts in the window",
        },
    ),
    Table(
        "guardian_link",
        "letting a guardian review privacy notices and consent for a child",
        "ended, never deleted: the record of who could act",
        {
            "id": ID,
            "guardian_id": "the guardian's account",
            "child_id": "the child's account",
            "label": "how the guardian recognises the child (a first name or nickname)",
            "method": "how the link was made (in person, or with a code)",
            "linked_at": "when it was made",
            "ended_at": "when it ended",
            "end_reason": "why it ended",
        },
    ),
    Table(
        "link_code",
        "a minor's one-time code for a guardian",
        "until used or expired (`portal purge-sessions`)",
        {
            "id": ID,
            "child_id": "whose code",
            "code_lookup": "keyed hash of the code",
            "expires_at": "end of validity",
        },
    ),
    Table(
        "service",
        "the published services",
        "while published (never removed)",
        {
            "id": ID,
            "key": "the service's key in the catalog",
            "store": "the portal's store of its retained data",
            "revision": "grows with every published change",
            "terms_revision": "grows with every material change",
            "terms": "purposes, data categories, recipients, retention",
            "minimum_age": "not offered below this age",
            "systems": "connected systems holding its data",
            "position": "order on the pages",
            "published_at": "last publication",
        },
    ),
    Table(
        "notice_version",
        "the exact privacy notice a consent points at",
        "never deleted",
        {
            "id": ID,
            "service_id": "the service",
            "locale": "language",
            "revision": "the service's revision",
            "terms_revision": "the service's terms revision",
            "terms": "the terms this version stated",
            "texts": "the privacy notice's texts",
            "content_hash": "SHA-256 of locale, terms and texts",
            "child_texts": "the child's version of the privacy notice, in plain words",
            "child_hash": "SHA-256 of the child's version",
            "published_at": "when published",
        },
    ),
    Table(
        "publication",
        "each publication of the catalog",
        "never deleted",
        {
            "id": ID,
            "library_name": "the library's name",
            "library_names": "the library's name in other languages, where the catalog gives one",
            "jurisdiction": "the library's age rules",
            "source_hash": "SHA-256 of the catalog file",
            "published_at": "when",
            "changed_services": "what changed, per service",
        },
    ),
    Table(
        "connected_system",
        "sending signed deletion requests to systems holding services' data",
        "while published (never removed); signing secrets only in `PORTAL_SYSTEM_SECRETS_FILE`",
        {
            "id": ID,
            "key": "the system's key in the catalog",
            "name": "its name, shown to patrons",
            "endpoint": "where its requests go",
            "position": "order on the pages",
        },
    ),
    Table(
        "consent_state",
        "each patron's current choice per service",
        WHILE_ACCOUNT,
        {
            "id": ID,
            "patron_id": "the patron",
            "service_id": "the service",
            "granted": "on or off",
            "last_kind": "the latest ledger event",
            "notice_version_id": "the privacy notice agreed to",
            "terms_revision": "the terms agreed to",
            "granted_by": "patron or guardian",
            "suspended_at": "paused since (material change, coming of age)",
            "suspension_reason": "why paused",
            "revision": "proof a form saw the latest state",
            "updated_at": "last change",
        },
    ),
    Table(
        "consent_event",
        "the ledger: proof of each choice (ISO/IEC TS 27560 fields); append-only",
        "for the life of the account",
        {
            "id": ID,
            "patron_id": "the patron",
            "service_id": "the service",
            "kind": "given, refused, withdrawn, erased, …",
            "notice_version_id": "the privacy notice shown",
            "notice_hash": "its content hash",
            "locale": "the language shown",
            "purposes": "the purposes concerned",
            "occurred_at": "when",
            "method": "online, desk hand-over, guardian, system",
            "actor": "patron, guardian or system",
            "channel": "web, desk, command line, API",
            "acting_guardian_id": "the guardian who acted",
            "detail": "rows deleted, reasons, requests to connected systems",
            "witnessed_by": "pseudonym of the staff member who witnessed it at the desk",
            "notice_audience": "which text was shown: the full privacy notice or the child's",
        },
    ),
    Table(
        "history_entry",
        "reading history, for patrons who turned it on",
        "until withdrawn, or the service's `retention_days` (`portal apply-retention`)",
        {
            "id": ID,
            "patron_id": "the patron",
            "title": "title borrowed",
            "author": "its author",
            "borrowed_on": "loan date",
            "recorded_at": "when recorded",
            "recorded_by_client": "the API client that handed the loan over",
        },
    ),
    Table(
        "saved_list",
        "saved lists, for patrons who turned them on",
        "until withdrawn, or the service's `retention_days` since the last change",
        {
            "id": ID,
            "patron_id": "the patron",
            "name": "the list's name",
            "created_at": "when made",
        },
    ),
    Table(
        "saved_list_item",
        "the titles on a saved list",
        "as its list",
        {
            "id": ID,
            "saved_list_id": "the list",
            "title": "title",
            "added_at": "when added",
        },
    ),
    Table(
        "api_client",
        "library systems using the API; knowing which system sent what",
        "never deleted, as the record of who sent what",
        {
            "id": ID,
            "name": "the client's name",
            "client_id": "OAuth client id",
            "secret_lookup": "keyed hash of the secret",
            "secret_generation": "which secret is current",
            "scopes": "what it may do",
            "created_at": "when created",
            "rotated_at": "last new secret",
            "revoked_at": "when revoked",
            "last_token_at": "last access token given",
            "system": "the connected system it speaks for (sees only its deletion requests)",
        },
    ),
    Table(
        "outbox_message",
        "getting a patron's data deleted where it lives, and proving it was",
        "until confirmed, then 30 days (`portal purge-sessions`)",
        {
            "id": ID,
            "message_id": "the request's id (the same on every retry)",
            "system": "the connected system",
            "kind": "deletion requested, consent given",
            "patron_id": "the patron (sent only as a keyed hash)",
            "service_id": "the service",
            "body": "the signed request body",
            "once_key": "one retention request per system and day",
            "created_at": "when requested",
            "give_up_at": "when retrying stops",
            "state": "pending, accepted, confirmed, given up",
            "attempts": "delivery attempts",
            "due_ms": "next attempt",
            "lease_until_ms": "a worker's hold on it",
            "claim": "which worker holds it",
            "last_attempt_at": "last attempt",
            "last_status": "last HTTP status",
            "last_error": "last error",
            "accepted_at": "answered 202",
            "confirmed_at": "confirmed",
            "confirmed_via": "by answer or acknowledgement",
        },
    ),
    Table(
        "staff_member",
        "staff sign-in; the audit trail; the witness of desk events",
        "while the account exists",
        {
            "id": ID,
            "subject_lookup": "keyed hash of the username or the provider's subject",
            "username": "local account's username",
            "display_name": "name shown in the audit trail",
            "pseudonym": "shown in patrons' records",
            "roles": "desk, privacy officer",
            "source": "local, identity provider, command line",
            "password_hash": "Argon2 hash of a local account's password",
            "created_at": "when created",
        },
    ),
    Table(
        "staff_setup_code",
        "a staff member choosing their own password",
        "until used or expired",
        {
            "id": ID,
            "staff_id": "whose code",
            "code_lookup": "keyed hash of the code",
            "expires_at": "end of validity",
        },
    ),
    Table(
        "staff_session",
        "a staff member signed in at a desk",
        "until sign-out, hand-over, `PORTAL_STAFF_SESSION_MINUTES` idle or "
        "`PORTAL_STAFF_SESSION_HOURS`",
        {
            "id": ID,
            "staff_id": "whose session",
            "token_lookup": "keyed hash of the session token",
            "roles": "roles in this session",
            "expires_at": "idle timeout",
            "ends_at": "absolute end",
        },
    ),
    Table(
        "staff_signin_state",
        "finishing one identity-provider sign-in (state, nonce, PKCE verifier)",
        "used once, or 10 minutes",
        {
            "id": ID,
            "token_lookup": "keyed hash of the state",
            "data": "nonce and PKCE verifier",
            "expires_at": "end of validity",
        },
    ),
    Table(
        "staff_audit_event",
        "accountability for every staff action; append-only",
        "for the life of the database",
        {
            "id": ID,
            "staff_id": "the staff member",
            "staff_name": "their name then",
            "action": "what they did",
            "patron_key": "keyed hash of the patron",
            "reason": "the reason given",
            "detail": "what else the action needs said (never a card or a choice)",
            "occurred_at": "when",
        },
    ),
    Table(
        "desk_handover",
        "carrying a desk visit from step to step (no choice, no PIN)",
        "deleted when staff see the result, or after a day (`portal purge-sessions`)",
        {
            "id": ID,
            "token_lookup": "keyed hash of the hand-over cookie",
            "purpose": "new card or PIN reset",
            "patron_id": "the patron",
            "guardian_id": "the guardian present",
            "staff_id": "the staff member",
            "pin_set": "whether the PIN was set",
            "guardian_needs_pin": "whether the guardian's PIN is still to set",
            "guardian_decides": "whether the guardian answers the privacy notices",
            "service_keys": "the services to show, in order",
            "position": "how far the patron got",
            "started_at": "when started",
            "expires_at": "when the screen clears",
            "finished_at": "when handed back",
        },
    ),
    Table(
        "job_run",
        "showing the privacy officer that the scheduled jobs ran",
        "400 days after the run ended (`portal purge-sessions`)",
        {
            "id": ID,
            "job": "which job",
            "started_at": "when it started",
            "finished_at": "when it ended",
            "alive_at": "a long-running worker's last sign of life",
            "outcome": "running, succeeded, failed",
            "counts": "what it did (rows, requests)",
            "failure": "why it failed",
        },
    ),
    Table(
        "outside_request",
        "the register of requests from law enforcement, courts and other agencies",
        "for the life of the database",
        {
            "id": ID,
            "received_on": "date received",
            "requesting_body": "kind of body",
            "body_name": "which body",
            "instrument": "legal instrument",
            "reference": "its reference",
            "asked": "what was asked",
            "decision": "the library's decision",
            "disclosed": "what was disclosed, if anything",
            "patron_key": "keyed hash of the patron the instrument names, if any",
            "handled_by_id": "the staff member who handled it",
            "handled_by_name": "their name then",
            "recorded_at": "when recorded",
            "entry_key": "hash of the form's random key and what was sent with it, so that "
            "the same form sent twice records one request",
        },
    ),
)


def columns() -> dict[str, set[str]]:
    return {table.name: set(table.columns) for table in INVENTORY}


def differences(schema: dict[str, set[str]]) -> list[str]:
    """What the inventory and a migrated schema disagree on, one line each."""
    listed = columns()
    found = {name: cols for name, cols in schema.items() if name not in NOT_PORTAL_DATA}
    problems = [
        f"table {name} is stored but not in the inventory"
        for name in sorted(set(found) - set(listed))
    ]
    problems += [
        f"table {name} is in the inventory but not stored"
        for name in sorted(set(listed) - set(found))
    ]
    for name in sorted(set(found) & set(listed)):
        problems += [
            f"column {name}.{column} is stored but not in the inventory"
            for column in sorted(found[name] - listed[name])
        ]
        problems += [
            f"column {name}.{column} is in the inventory but not stored"
            for column in sorted(listed[name] - found[name])
        ]
    return problems


START = "<!-- inventory: generated by `python -m portal.officer.inventory`; do not edit -->"
END = "<!-- inventory: end -->"


def markdown() -> str:
    lines = [START, "", "| table | what it holds | purpose | kept |", "|---|---|---|---|"]
    for table in INVENTORY:
        held = "; ".join(
            f"`{column}`: {what}" for column, what in table.columns.items() if column != "id"
        )
        lines.append(f"| `{table.name}` | {held} | {table.purpose} | {table.kept} |")
    lines += ["", END]
    return "\n".join(lines)


def rendered_readme(readme: str) -> str:
    """The README with its generated section replaced by the current inventory."""
    pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.DOTALL)
    return pattern.sub(lambda _: markdown(), readme)


if __name__ == "__main__":
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "README.md")
    path.write_text(rendered_readme(path.read_text(encoding="utf-8")), encoding="utf-8")
