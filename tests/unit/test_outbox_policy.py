"""The outbox's pure rules: Standard Webhooks signatures (checked with the reference library,
not our own code), what a system is told, and the retry schedule."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from portal.outbox.policy import (
    MAX_DELAY,
    RETRY_FOR,
    DeletionReason,
    MessageKind,
    Result,
    body_of,
    consent_payload,
    deletion_payload,
    new_message_id,
    new_secret,
    next_attempt,
    result_of,
    retry_delay,
    secret_bytes,
    signed_headers,
)

NOW = datetime(2026, 5, 5, 12, 0, tzinfo=UTC)
REFERENCE = "9f" * 32  # a keyed hash of a card, as stored


def _signed(secret: str, body: bytes) -> dict[str, str]:
    timestamp = int(datetime.now(UTC).timestamp())
    return signed_headers(secret_bytes(secret), new_message_id(), timestamp, body)


def test_a_request_verifies_with_the_standard_webhooks_library() -> None:
    secret = new_secret()
    body = body_of(deletion_payload(
        service="sms_notices", patron=REFERENCE, reason=DeletionReason.WITHDRAWN, requested_at=NOW
    )).encode()  # fmt: skip
    received = Webhook(secret).verify(body, _signed(secret, body))
    assert received["data"]["patron"] == REFERENCE


def test_a_changed_body_or_another_secret_fails_verification() -> None:
    secret = new_secret()
    body = b'{"type":"deletion.requested"}'
    headers = _signed(secret, body)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"type":"consent.given"}', headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)


def test_every_attempt_has_the_same_id_and_body_and_a_fresh_signature() -> None:
    key = secret_bytes(new_secret())
    first = signed_headers(key, "msg_one", 1_800_000_000, b"{}")
    again = signed_headers(key, "msg_one", 1_800_000_060, b"{}")
    assert first["webhook-id"] == again["webhook-id"] == "msg_one"
    assert first["webhook-signature"] != again["webhook-signature"]
    assert first["webhook-signature"].startswith("v1,")


def test_a_deletion_names_the_service_the_reference_and_why_never_a_card_number() -> None:
    payload = deletion_payload(
        service="reading_history", patron=REFERENCE, reason=DeletionReason.EXPIRED, requested_at=NOW
    )
    assert payload == {
        "type": "deletion.requested",
        "timestamp": "2026-05-05T12:00:00Z",
        "data": {
            "service": "reading_history",
            "patron": REFERENCE,
            "reason": "expired",
            "before": None,
        },
    }
    assert body_of(payload) == body_of(json.loads(body_of(payload)))  # one serialisation


def test_retention_asks_about_every_patron_before_a_day() -> None:
    payload = deletion_payload(
        service="sms_notices",
        patron=None,
        reason=DeletionReason.RETENTION,
        requested_at=NOW,
        before=date(2026, 4, 5),
    )
    assert payload["data"] == {
        "service": "sms_notices", "patron": None, "reason": "retention", "before": "2026-04-05"
    }  # fmt: skip
    given = consent_payload(service="sms_notices", patron=REFERENCE, given_at=NOW)
    assert given["type"] == "consent.given"


@pytest.mark.parametrize("failures", range(1, 25))
def test_retries_wait_longer_each_time_up_to_six_hours_give_or_take_a_quarter(
    failures: int,
) -> None:
    expected = min(30 * 2 ** (failures - 1), MAX_DELAY.total_seconds())
    assert retry_delay(failures, 30, lambda: 0.0) == pytest.approx(expected * 0.75)
    assert retry_delay(failures, 30, lambda: 1.0) == pytest.approx(expected * 1.25)


def test_jitter_spreads_requests_that_failed_together() -> None:
    delays = {round(retry_delay(3, 30, lambda n=n: n / 10), 3) for n in range(10)}
    assert len(delays) == 10


def test_retries_go_on_for_three_days_the_last_on_the_deadline() -> None:
    give_up_at = NOW + RETRY_FOR
    at = NOW
    failures = 0
    while (following := next_attempt(failures + 1, now=at, give_up_at=give_up_at,
                                     first_seconds=30, rng=lambda: 0.5)) is not None:  # fmt: skip
        assert following > at
        at, failures = following, failures + 1
    assert at == give_up_at
    assert 15 < failures < 30  # about twenty tries over three days
    assert next_attempt(1, now=give_up_at + timedelta(seconds=1), give_up_at=give_up_at,
                        first_seconds=30) is None  # fmt: skip


@pytest.mark.parametrize(
    ("status", "kind", "result"),
    [
        (200, MessageKind.DELETION_REQUESTED, Result.CONFIRMED),
        (204, MessageKind.DELETION_REQUESTED, Result.CONFIRMED),
        (202, MessageKind.DELETION_REQUESTED, Result.ACCEPTED),
        (202, MessageKind.CONSENT_GIVEN, Result.CONFIRMED),
        (301, MessageKind.DELETION_REQUESTED, Result.FAILED),
        (400, MessageKind.DELETION_REQUESTED, Result.FAILED),
        (500, MessageKind.CONSENT_GIVEN, Result.FAILED),
        (None, MessageKind.DELETION_REQUESTED, Result.FAILED),
    ],
)
def test_what_an_answer_means(status: int | None, kind: MessageKind, result: Result) -> None:
    assert result_of(status, kind) is result


@pytest.mark.parametrize(
    "secret", ["", "ils-secret", "whsec_", "whsec_not base64!", "whsec_c2hvcnQ="]
)
def test_a_secret_that_is_not_a_whsec_of_enough_random_bytes_is_refused(secret: str) -> None:
    with pytest.raises(ValueError, match="signing secret"):
        secret_bytes(secret)
