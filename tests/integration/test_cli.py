"""The operator's `portal` command, run as a real process against a real database."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from portal.consent.policy import Decision
from tests.delivery import delivery_catalog
from tests.factories import decides, demo_system_secrets, make_patron, now, publish

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
    assert re.search(r"\n[\w-]{40,}\n", portal_command("api-client", "ils"))
    assert "client_exists" in portal_command("api-client", "ils", expect=2)
    assert re.search(r"setup code: ", portal_command("reset-pin", stdin="2000 1000 2000\n"))


def test_bad_catalog_is_refused_with_named_problems(portal_command, tmp_path: Path) -> None:
    broken = tmp_path / "catalog.toml"
    broken.write_text(
        CATALOG.read_text(encoding="utf-8").replace("retention_days = 30\n", "", 1),
        encoding="utf-8",
    )
    output = portal_command("publish", str(broken), expect=2)
    assert "Nothing was published" in output
    assert "service 'sms_notices': 'retention_days' must be a positive number of days" in output


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


def test_a_connected_system_needs_its_signing_secret_before_publishing(
    portal_command, tmp_path: Path
) -> None:
    portal_command("migrate")
    catalog = tmp_path / "with-ils.toml"
    catalog.write_text(delivery_catalog("https://ils.library.example/hooks"), encoding="utf-8")
    (tmp_path / "none.toml").write_text("", encoding="utf-8")
    english = {"PORTAL_LOCALES": "en", "PORTAL_SYSTEM_SECRETS_FILE": str(tmp_path / "none.toml")}
    refused = portal_command("publish", str(catalog), expect=2, env=english)
    assert "Nothing was published: no signing secret for connected system(s) ils" in refused
    secret_line = portal_command("system-secret", "ils")
    assert re.match(r'ils = "whsec_[A-Za-z0-9+/=]{40,}"', secret_line)
    (tmp_path / "ils.toml").write_text(secret_line, encoding="utf-8")
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
