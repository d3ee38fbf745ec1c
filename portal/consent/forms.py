"""Parsing consent forms: the decision, the notice version shown and the state revision."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import FormData

from portal.consent.policy import Decision


@dataclass(frozen=True)
class DecisionForm:
    decision: Decision
    notice_version_id: int | None
    expected_revision: int


def _int(value: object) -> int | None:
    if isinstance(value, str) and value.isdigit() and len(value) < 12:
        return int(value)
    return None


def parse_decision(form: FormData) -> DecisionForm | None:
    raw = form.get("decision")
    if raw not in (Decision.YES.value, Decision.NO.value):
        return None
    expected = _int(form.get("revision"))
    if expected is None:
        return None
    return DecisionForm(
        decision=Decision(raw),
        notice_version_id=_int(form.get("notice_version")),
        expected_revision=expected,
    )
