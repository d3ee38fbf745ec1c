"""The operator's `portal` command, run as a real process against a real database."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from tortoise import Tortoise

from portal.consent.policy import Decision
from portal.credentials import throttle
from portal.credentials.models import SignInCounter
from portal.credentials.throttle import Guessing
from portal.db import tortoise_config
from portal.guardians.models import GuardianLink
from portal.ledger import checkpoints
from portal.ledger.models import ConsentEvent
from portal.minors import services as minors
from portal.officer.models import JobRun
from portal.officer.policy import JobName, RunOutcome
from portal.patrons.models import Patron, PortalSession
from portal.patrons.policy import guess_subject
from portal.patrons.services import hash_secret, start_session
from portal.rights.keys import load_keys
from portal.rights.policy import receipt_claims, receipt_reference
from portal.rights.services import receipt_facts, sign_receipt
from portal.settings import Settings
from portal.staff.models import StaffAuditEvent
from tests.delivery import delivery_catalog
from tests.desk import refuse_audit_lines
from tests.factories import (
    decides,
    demo_system_secrets,
    make_patron,
    now,
    publish,
    standard_catalog,
)
from tests.ledger import as_superuser

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "deploy" / "catalog.toml"


@pytest.fixture
def portal_command(database_url: str, tmp_path: Path):
    base = {
        **os.environ,
        # The demo catalog's connected systems, each with its signing secret.
        "PORTAL_SYSTEM_SECRETS_FILE": str(demo_system_secrets(tmp_path / "system-secrets.toml")),
        "PORTAL_DATABASE_URL": database_url,
        "PORTAL_DATA_DIR": str(tmp_path),
        "PORTAL_SECRET_KEY": "cli-test-secret-0123456789",
        "PORTAL_DEV_MODE": "false",
    }

    def run(*args: str, stdin: str = "", expect: int = 0, env: dict[str, str] | None = None) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "portal.cli", *args],
            env={**base, **(env or {})}, input=stdin, capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert done.returncode == expect, done.stdout + done.stderr
        return done.stdout + done.stderr

    return run


def test_operator_workflow(portal_command) -> None:
    assert "up to date" in portal_command("migrate")
    assert "reading_history: new" in portal_command("publish", str(CATALOG))
    assert "reading_history: unchanged" in portal_command("publish", str(CATALOG))
    created = portal_command("create-patron", "--born", "2016-04-04", stdin="2000 1000 2000\n")
    assert re.search(r"setup code: \d{4}-\d{4}-\d{4}", created)
    portal_command("create-patron", "--born", "1980-01-01", stdin="2000 1000 3000\n")
    duplicate = portal_command("create-patron", stdin="2000-1000-2000\n", expect=2)
    assert "card_exists" in duplicate
    linked = portal_command(
        "link-guardian", "--label", "Ada", stdin="2000 1000 3000\n2000 1000 2000\n"
    )
    assert "Linked" in linked
    assert "0 patron(s) came of age" in portal_command("coming-of-age")
    assert "0 unanswered consent(s)" in portal_command("expire-consents")
    assert "deleted" in portal_command("purge-sessions")
    assert "0 retained row(s)" in portal_command("apply-retention")
    assert re.search(r"setup code: ", portal_command("reset-pin", stdin="2000 1000 2000\n"))


def test_bad_catalog_is_refused_with_named_problems(portal_command, tmp_path: Path) -> None:
    broken = tmp_path / "catalog.toml"
    broken.write_text(
        CATALOG.read_text(encoding="utf-8").replace("retention_days = 30\n", "", 1),
        encoding="utf-8",
    )
    output = portal_command("publish", str(broken), expect=2)
    assert "Nothing was published" in output
    assert "service 'messages': 'retention_days' must be a positive number of days" in output


def test_card_numbers_are_never_taken_as_arguments(portal_command) -> None:
    output = portal_command("create-patron", "2000 1000 2000", expect=2)
    assert "unrecognized arguments" in output


def test_demo_patron_only_in_development_mode(portal_command) -> None:
    assert "only in development mode" in portal_command("demo-patron", expect=2)


def test_staff_accounts_from_the_command_line(portal_command) -> None:
    portal_command("migrate")
    added = portal_command("staff", "add", "dana", "--name", "Dana", "--role", "desk")
    assert re.search(r"password setup code: \d{4}-\d{4}-\d{4}-\d{4}", added)
    assert "staff_username_taken" in portal_command(
        "staff", "add", "Dana", "--role", "desk", expect=2
    )
    assert "setup code" in portal_command("staff", "reset-password", "dana")
    assert "No local staff account" in portal_command("staff", "reset-password", "nobody", expect=2)
    assert "development mode" in portal_command("demo-desk", expect=2)


def test_import_patrons_from_a_csv_file(portal_command, tmp_path: Path) -> None:
    portal_command("migrate")
    cards = tmp_path / "cards.csv"
    cards.write_bytes(
        "\ufeffCard number,Date of birth,Language\n"
        "2000 1000 2000,2016-04-04,en\n"
        "2000 1000 3000\n"
        "2000 1000 4000,2999-01-01\n"
        "2000-1000-2000\n".encode()
    )
    codes = tmp_path / "codes.csv"
    output = portal_command("import-patrons", str(cards), "--codes-file", str(codes), expect=1)
    assert "line 4: born_on_future" in output
    assert "2 created, 1 already known, 1 bad row(s) (see above)." in output
    assert "2000" not in output.replace(str(tmp_path), ""), "no card number on the terminal"
    assert codes.stat().st_mode & 0o777 == 0o600
    lines = codes.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "card number,setup code,valid until"
    assert sorted(line.split(",")[0] for line in lines[1:]) == ["200010002000", "200010003000"]
    _, code, valid_until = lines[1].split(",")
    assert re.fullmatch(r"\d{4}-\d{4}-\d{4}", code)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", valid_until)

    refused = portal_command("import-patrons", str(cards), "--codes-file", str(codes), expect=2)
    assert "already exists" in refused
    assert len(codes.read_text(encoding="utf-8").splitlines()) == 3, "left as it was"

    cards.write_text("2000 1000 2000\n2000 1000 5000\n", encoding="utf-8")
    again = portal_command("import-patrons", str(cards))
    assert "1 created, 1 already known, 0 bad row(s)." in again
    assert not (tmp_path / "none.csv").exists()
    portal_command("import-patrons", str(cards), "--codes-file", str(tmp_path / "none.csv"))
    assert not (tmp_path / "none.csv").exists(), "no codes issued, no file left behind"


def test_no_setup_codes_when_the_library_system_holds_the_pins(portal_command, tmp_path) -> None:
    portal_command("migrate")
    sip2 = {
        "PORTAL_IDENTITY_SOURCE": "sip2",
        "PORTAL_SIP2_HOST": "127.0.0.1",
        "PORTAL_SIP2_PLAIN_LOOPBACK": "true",
    }
    for verb in ("create-patron", "reset-pin"):
        refused = portal_command(verb, stdin="2000 1000 5000\n", expect=2, env=sip2)
        assert "no setup codes" in refused
    cards = tmp_path / "cards.csv"
    cards.write_text("Card number,Date of birth\n2000 1000 5000,2016-04-04\n", encoding="utf-8")
    codes = tmp_path / "codes.csv"
    portal_command("import-patrons", str(cards), "--codes-file", str(codes), expect=2, env=sip2)
    assert not codes.exists()
    # Accounts (with birth dates) before the first sign-in still come from an import.
    imported = portal_command("import-patrons", str(cards), env=sip2)
    assert "1 created" in imported


def test_command_line_actions_are_in_the_staff_audit_trail(portal_command, database_url) -> None:
    portal_command("migrate")
    portal_command("publish", str(CATALOG))
    portal_command("create-patron", stdin="2000 1000 4000\n")
    portal_command("unlock-signin", stdin="2000 1000 4000\n")

    async def trail() -> list[tuple[str, str]]:
        await Tortoise.init(config=tortoise_config(database_url))
        try:
            return [(event.action, event.staff_name) for event in await StaffAuditEvent.all()]
        finally:
            await Tortoise.close_connections()

    actions = asyncio.run(trail())
    assert [action for action, _ in actions] == ["card_created", "signin_unlocked"]
    assert all(name.endswith("(command line)") for _, name in actions)


def _shown(output: str) -> dict[str, str]:
    return dict(re.findall(r"^Client (id|secret): (\S+)$", output, flags=re.M))


def test_api_clients_from_the_command_line(portal_command) -> None:
    portal_command("migrate")
    added = _shown(
        portal_command(
            "api-client", "add", "ils", "--scope", "consent:read", "--scope", "loans:write"
        )
    )
    assert len(added["secret"]) >= 40
    assert "client_exists" in portal_command(
        "api-client", "add", "ils", "--scope", "consent:read", expect=2
    )
    assert "invalid choice" in portal_command(
        "api-client", "add", "ils2", "--scope", "patrons:everything", expect=2
    )
    assert "--scope" in portal_command("api-client", "add", "ils2", expect=2)
    assert "client_name_invalid" in portal_command(
        "api-client", "add", "the ILS", "--scope", "consent:read", expect=2
    )
    assert "invalid choice" in portal_command("api-client", "ils", expect=2)  # the old verb
    assert "system_unknown" in portal_command(
        "api-client", "add", "ils3", "--scope", "deletions:read", "--system", "nowhere", expect=2
    )
    listed = portal_command("api-client", "list")
    assert f"ils | {added['id']} | consent:read loans:write | " in listed
    assert added["secret"] not in listed

    rotated = _shown(portal_command("api-client", "rotate", "ils", "--scope", "consent:read"))
    assert rotated["id"] == added["id"]
    assert rotated["secret"] != added["secret"]
    assert f"ils | {added['id']} | consent:read | " in portal_command("api-client", "list")
    assert "client_unknown" in portal_command("api-client", "rotate", "nobody", expect=2)

    assert "Revoked ils" in portal_command("api-client", "revoke", "ils")
    [row] = [line for line in portal_command("api-client", "list").splitlines() if "ils |" in line]
    revoked = row.split(" | ")[6]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", revoked)
    assert "client_unknown" in portal_command("api-client", "revoke", "nobody", expect=2)


def test_a_connected_system_needs_its_signing_secret_before_publishing(
    portal_command, tmp_path: Path
) -> None:
    portal_command("migrate")
    catalog = tmp_path / "with-ils.toml"
    catalog.write_text(delivery_catalog("https://ils.library.example/hooks"), encoding="utf-8")
    (tmp_path / "none.toml").write_text("", encoding="utf-8")
    (tmp_path / "none.toml").chmod(0o600)  # a key file others can read is refused
    english = {"PORTAL_LOCALES": "en", "PORTAL_SYSTEM_SECRETS_FILE": str(tmp_path / "none.toml")}
    refused = portal_command("publish", str(catalog), expect=2, env=english)
    assert "Nothing was published: no signing secret for connected system(s) ils" in refused
    secret_line = portal_command("system-secret", "ils")
    assert re.match(r'ils = "whsec_[A-Za-z0-9+/=]{40,}"', secret_line)
    (tmp_path / "ils.toml").write_text(secret_line, encoding="utf-8")
    (tmp_path / "ils.toml").chmod(0o600)
    with_secret = {**english, "PORTAL_SYSTEM_SECRETS_FILE": str(tmp_path / "ils.toml")}
    assert "reading_history: new" in portal_command("publish", str(catalog), env=with_secret)
    assert "Not delivering" in portal_command("deliver", "--once", expect=2, env=english)
    sent = portal_command("deliver", "--once", env=with_secret)
    assert "0 request(s) to connected systems sent." in sent
    assert "No requests to connected systems." in portal_command("deletions")
    assert "0 deletion request(s) unconfirmed after 24 hours" in portal_command(
        "deletions", "--unconfirmed"
    )


async def test_the_privacy_officer_lists_deletions_unconfirmed_after_a_day(
    db: str, portal_command
) -> None:
    await publish(delivery_catalog("https://ils.library.example/hooks"))
    patron = await make_patron()
    two_days_ago = now() - timedelta(days=2)
    await decides(patron.id, "reading_history", Decision.YES, at=two_days_ago)
    await decides(patron.id, "reading_history", Decision.NO, at=two_days_ago)
    listed = portal_command("deletions", "--unconfirmed")
    assert "1 deletion request(s) unconfirmed after 24 hours." in listed
    assert re.search(r"msg_\S+  ils  reading_history  withdrawn  requested .* UTC  pending", listed)
    summary = portal_command("deletions")
    assert "ils  consent.given  pending: 1" in summary
    assert "ils  deletion.requested  pending: 1" in summary


def test_receipt_keys_are_made_rotated_and_a_receipt_checked_from_the_command_line(
    portal_command, tmp_path: Path
) -> None:
    keys = {"PORTAL_RECEIPT_KEYS_FILE": str(tmp_path / "receipt-keys.json")}
    assert "PORTAL_RECEIPT_KEYS_FILE" in portal_command("receipt-key", "rotate", expect=2)
    first = portal_command("receipt-key", "rotate", env=keys)
    second = portal_command("receipt-key", "rotate", env=keys)
    assert first.split()[6] != second.split()[6]  # "… signed with key <kid>; …"
    nonsense = tmp_path / "nonsense.jws"
    nonsense.write_text("eyJhbGciOiJFUzI1NiJ9.e30.AAAA")
    assert "NOT VALID" in portal_command("verify-receipt", str(nonsense), env=keys, expect=1)


async def test_scheduled_jobs_record_each_run(db: str, portal_command, tmp_path: Path) -> None:
    portal_command("publish", str(CATALOG))
    for verb in ("expire-consents", "apply-retention", "compact-erased", "purge-sessions"):
        portal_command(verb)
    portal_command("coming-of-age")
    keys = {"PORTAL_RECEIPT_KEYS_FILE": str(tmp_path / "receipt-keys.json")}
    portal_command("receipt-key", "rotate", env=keys)
    portal_command("checkpoint", env=keys)
    portal_command("deliver", "--once")
    runs = {run.job: run for run in await JobRun.all()}
    assert set(runs) == {job.value for job in JobName}
    assert all(run.outcome is RunOutcome.SUCCEEDED for run in runs.values())
    assert all(run.finished_at is not None for run in runs.values())
    assert runs["apply-retention"].counts == {"rows_deleted": 0}
    assert "sent" in runs["deliver"].counts


async def test_a_job_that_cannot_work_is_recorded_as_failed(
    db: str, portal_command, tmp_path: Path
) -> None:
    portal_command("publish", str(CATALOG))
    empty = tmp_path / "no-secrets.toml"
    empty.write_text("")
    empty.chmod(0o600)
    portal_command("deliver", "--once", expect=2, env={"PORTAL_SYSTEM_SECRETS_FILE": str(empty)})
    run = await JobRun.get(job="deliver")
    assert run.outcome is RunOutcome.FAILED
    assert run.failure


CLI_SECRET = "cli-test-secret-0123456789"  # the portal_command fixture's PORTAL_SECRET_KEY


async def test_the_reference_key_is_printed_for_connected_systems(db: str, portal_command) -> None:
    portal_command("migrate")
    portal_command("create-patron", stdin="2000 1000 7000\n")
    key = bytes.fromhex(portal_command("reference-key").split()[0])
    card = b"200010007000"  # as printed, upper case without spaces or dashes
    reference = hmac.new(key, card, hashlib.sha256).hexdigest()
    assert (await Patron.get()).reference == reference
    assert key != CLI_SECRET.encode()


async def test_the_ledger_is_checkpointed_and_a_rewrite_named_from_the_command_line(
    db: str, portal_command, tmp_path: Path
) -> None:
    keys = {"PORTAL_RECEIPT_KEYS_FILE": str(tmp_path / "receipt-keys.json")}
    portal_command("receipt-key", "rotate", env=keys)
    assert "No checkpoint" in portal_command("checkpoint", expect=2)  # no key, no signature
    await publish(standard_catalog())
    patron = await make_patron()
    await decides(patron.id, "newsletter", Decision.YES)
    await decides(patron.id, "newsletter", Decision.NO)
    assert "Checkpoint signed: 2 ledger event(s)" in portal_command("checkpoint", env=keys)
    assert "nothing to sign" in portal_command("checkpoint", env=keys)
    assert "OK: 2 ledger event(s); 1 checkpoint(s)" in portal_command("verify-ledger", env=keys)
    first = (await ConsentEvent.all().order_by("id").first()).id
    await as_superuser(f"UPDATE consent_event SET kind = 'refused' WHERE id = {first}")  # noqa: S608
    found = portal_command("verify-ledger", env=keys, expect=1)
    assert f"event {first} (leaf 0, checkpoint 2) was changed" in found
    refused = portal_command("checkpoint", env=keys, expect=1)
    assert f"event {first} (leaf 0, checkpoint 2) was changed" in refused
    run = await JobRun.filter(job="checkpoint").order_by("-id").first()
    assert run is not None
    assert run.outcome is RunOutcome.FAILED


async def test_a_receipts_proof_is_checked_from_the_command_line(
    db: str, portal_command, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "receipt-keys.json"
    keys = {"PORTAL_RECEIPT_KEYS_FILE": str(path)}
    portal_command("receipt-key", "rotate", env=keys)
    await publish(standard_catalog())
    patron = await make_patron()
    await decides(patron.id, "newsletter", Decision.YES)
    portal_command("checkpoint", env=keys)
    event = await ConsentEvent.get(patron_id=patron.id)
    facts = await receipt_facts(
        patron.id, receipt_reference(CLI_SECRET, event.id), secret=CLI_SECRET
    )
    assert facts is not None
    signing = load_keys(replace(settings, receipt_keys_file=path))
    receipt = tmp_path / "receipt.jws"
    receipt.write_text(sign_receipt(receipt_claims(facts, issued_at=now()), signing))
    inclusion = await checkpoints.inclusion(event.id)
    assert inclusion is not None
    proof = tmp_path / "proof.json"
    proof.write_text(json.dumps(inclusion.bundle()))
    checked = portal_command("verify-receipt", str(receipt), "--proof", str(proof), env=keys)
    assert "IN THE LEDGER: this decision is in the checkpoint of 1 event(s)" in checked
    proof.write_text(json.dumps(inclusion.bundle() | {"leaf_index": 1}))
    refused = portal_command(
        "verify-receipt", str(receipt), "--proof", str(proof), env=keys, expect=1
    )
    assert "PROOF NOT VALID" in refused


async def _audit_actions() -> list[str]:
    return [event.action for event in await StaffAuditEvent.all().order_by("id")]


async def test_a_pin_reset_from_the_command_line_is_the_desks(db: str, portal_command) -> None:
    portal_command("create-patron", stdin="2000 1000 6000\n")
    patron = await Patron.get()
    await Patron.filter(id=patron.id).update(pin_hash=await hash_secret("2580"))
    await start_session(CLI_SECRET, patron.id, now=now(), minutes=20, hours=8)
    await SignInCounter.create(
        key_lookup=throttle.subject_key(
            CLI_SECRET, Guessing.SIGNIN, guess_subject("2000 1000 6000")
        ),
        window_started_ms=0,
        attempts=5,
    )

    output = portal_command("reset-pin", stdin="2000 1000 6000\n")

    assert re.search(r"setup code: \d{4}-\d{4}-\d{4}", output)
    assert (await Patron.get(id=patron.id)).pin_hash is None, "the old PIN stops working"
    assert not await PortalSession.filter(patron_id=patron.id).exists(), "every session ends"
    assert not await SignInCounter.exists(), "sign-in is unlocked"
    assert await _audit_actions() == ["card_created", "pin_reset", "setup_slip_printed"]


async def test_a_link_made_from_the_command_line_is_undone_when_its_audit_line_fails(
    db: str, portal_command
) -> None:
    portal_command("create-patron", "--born", "2016-04-04", stdin="2000 1000 2000\n")
    portal_command("create-patron", "--born", "1980-01-01", stdin="2000 1000 3000\n")
    await refuse_audit_lines(db)
    portal_command(
        "link-guardian", "--label", "Ada", stdin="2000 1000 3000\n2000 1000 2000\n", expect=1
    )
    assert not await GuardianLink.exists()


async def test_a_link_ended_from_the_command_line_is_undone_when_its_audit_line_fails(
    db: str, portal_command
) -> None:
    portal_command("create-patron", "--born", "2016-04-04", stdin="2000 1000 2000\n")
    portal_command("create-patron", "--born", "1980-01-01", stdin="2000 1000 3000\n")
    portal_command("link-guardian", "--label", "Ada", stdin="2000 1000 3000\n2000 1000 2000\n")
    await refuse_audit_lines(db)
    portal_command(
        "unlink-guardian", "--reason", "moved", stdin="2000 1000 3000\n2000 1000 2000\n", expect=1
    )
    assert await GuardianLink.filter(ended_at=None).count() == 1


async def test_an_unlock_from_the_command_line_is_undone_when_its_audit_line_fails(
    db: str, portal_command
) -> None:
    portal_command("create-patron", stdin="2000 1000 4000\n")
    await SignInCounter.create(
        key_lookup=throttle.subject_key(
            CLI_SECRET, Guessing.SIGNIN, guess_subject("2000 1000 4000")
        ),
        window_started_ms=0,
        attempts=5,
    )
    await refuse_audit_lines(db)
    portal_command("unlock-signin", stdin="2000 1000 4000\n", expect=1)
    assert await SignInCounter.filter(attempts=5).exists()


async def test_a_pin_reset_from_the_command_line_is_undone_when_its_audit_line_fails(
    db: str, portal_command
) -> None:
    portal_command("create-patron", stdin="2000 1000 6000\n")
    await Patron.all().update(pin_hash=await hash_secret("2580"))
    await refuse_audit_lines(db)
    portal_command("reset-pin", stdin="2000 1000 6000\n", expect=1)
    assert (await Patron.get()).pin_hash is not None


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The umask most accounts have (022): files 0644 and folders 0755 unless the portal says
    otherwise. The processes the test starts inherit it."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("usual_umask")
def test_migrate_makes_the_data_folder_and_database_files_private(
    portal_command, tmp_path: Path
) -> None:
    data = tmp_path / "fresh" / "data"
    database = data / "portal.sqlite3"
    env = {"PORTAL_DATA_DIR": str(data), "PORTAL_DATABASE_URL": f"sqlite://{database}"}
    portal_command("migrate", env=env)
    portal_command("publish", str(CATALOG), env=env)  # writes, so the -wal file exists
    assert _mode(data) == 0o700
    files = [path for path in data.iterdir() if path.name.startswith("portal.sqlite3")]
    assert database in files
    assert {path.name: _mode(path) for path in files} == {path.name: 0o600 for path in files}


@pytest.mark.usefixtures("usual_umask")
def test_serve_refuses_a_database_other_users_can_read_and_migrate_tightens_it(
    portal_command, tmp_path: Path
) -> None:
    data = tmp_path / "old" / "data"
    database = data / "portal.sqlite3"
    env = {"PORTAL_DATA_DIR": str(data), "PORTAL_DATABASE_URL": f"sqlite://{database}"}
    portal_command("migrate", env=env)
    # As an installation from before the check left them.
    data.chmod(0o755)
    database.chmod(0o644)
    refused = portal_command("serve", "--port", "1", env=env, expect=2)
    assert f"{database} (0644)" in refused
    assert f"{data} (0755)" in refused
    assert "portal migrate" in refused
    tightened = portal_command("migrate", env=env)
    assert f"Made private (it was readable by other local users): {database}" in tightened
    assert (_mode(data), _mode(database)) == (0o700, 0o600)


def test_publish_refuses_an_endpoint_on_an_internal_address(portal_command, tmp_path) -> None:
    portal_command("migrate")
    for endpoint in (
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.5/hooks",
        "https://[fd00::1]/hooks",
        "https://localhost:5432/hooks",  # a name resolving to loopback
        "http://127.0.0.1:22/",
    ):
        catalog = tmp_path / "internal.toml"
        catalog.write_text(
            CATALOG.read_text(encoding="utf-8").replace(
                "https://ils.riverside.example/portal/deletions", endpoint
            ),
            encoding="utf-8",
        )
        refused = portal_command("publish", str(catalog), expect=2)
        assert "Nothing was published" in refused, endpoint
        assert "system 'ils': endpoint" in refused, endpoint
    # Named by the operator, the same internal endpoint is accepted.
    allowed = {"PORTAL_SYSTEM_ALLOWED_ADDRESSES": "127.0.0.1"}
    assert "reading_history: new" in portal_command("publish", str(catalog), env=allowed)


async def test_link_guardian_checks_in_person_a_link_made_with_the_childs_code(
    db: str, portal_command
) -> None:
    portal_command("create-patron", "--born", "2016-04-04", stdin="2000 1000 2000\n")
    portal_command("create-patron", "--born", "1980-01-01", stdin="2000 1000 3000\n")
    child, parent = await Patron.all().order_by("id")
    code, _ = await minors.issue_link_code(CLI_SECRET, child.id, now=now(), timezone="UTC")
    await minors.redeem_link_code(CLI_SECRET, parent.id, code, "Ada", now=now(), timezone="UTC")

    output = portal_command(
        "link-guardian", "--label", "Ada", stdin="2000 1000 3000\n2000 1000 2000\n"
    )

    assert "Linked" in output
    link = await GuardianLink.get()
    assert (link.method, link.ended_at) == ("desk_handover", None)
    entry = await ConsentEvent.filter(patron_id=child.id).order_by("-id").first()
    assert entry is not None
    assert (entry.kind, entry.method.value, entry.channel.value) == (
        "guardian_linked",
        "desk_handover",
        "cli",
    )
    assert await _audit_actions() == ["card_created", "card_created"] + ["guardian_linked"] * 2


async def test_a_pin_reset_from_the_command_line_is_told_to_the_patron(
    db: str, portal_command
) -> None:
    portal_command("create-patron", stdin="2000 1000 6000\n")
    assert (await Patron.get()).pin_reset_at is None
    portal_command("reset-pin", stdin="2000 1000 6000\n")
    assert (await Patron.get()).pin_reset_at is not None, "My privacy tells the patron"
