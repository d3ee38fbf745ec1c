"""Parsing a decision form: the decision, the notice version shown and the state revision."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import FormData

from portal.consent.policy import ConsentError, Decision
from portal.errors import ConsentCode
from portal.web.requests import number_field


@dataclass(frozen=True)
class DecisionForm:
    decision: Decision
    notice_version_id: int | None
    expected_revision: int


def parse_decision(form: FormData) -> DecisionForm:
    raw = form.get("decision")
    expected = number_field(form, "revision")
    if raw not in (Decision.YES.value, Decision.NO.value) or expected is None:
        raise ConsentError(ConsentCode.NOTICE_REQUIRED)
    return DecisionForm(
        decision=Decision(raw),
        notice_version_id=number_field(form, "notice_version"),
        expected_revision=expected,
    )


def parse_onward(form: FormData, known: tuple[str, ...]) -> str | None:
    """The service page a decision leads on to: one of `known` route names, else none."""
    value = form.get("next")
    return value if isinstance(value, str) and value in known else None
