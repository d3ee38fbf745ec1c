"""Parsing a decision form: the decision, the notice version shown and the state revision."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.datastructures import FormData

from portal.catalog.policy import CHANNELS, is_key
from portal.consent.policy import ConsentError, Decision
from portal.decisions.services import MessageCell
from portal.errors import ConsentCode
from portal.web.requests import field, number_field


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


@dataclass(frozen=True)
class MessagesForm:
    cells: list[MessageCell]
    contacts: dict[str, str]  # by channel, as typed (empty: keep what is kept)
    all_off: bool


def parse_messages(form: FormData) -> MessagesForm:
    """A messaging grid: every cell shown carries its notice version and state revision
    ("version:<key>", "revision:<key>"); the ticked ones are named by "on"."""
    all_off = form.get("all_off") == "yes"
    ticked = {value for value in form.getlist("on") if isinstance(value, str)}
    cells = []
    for name in form:
        prefix, _, key = name.partition(":")
        if prefix != "version":
            continue
        revision = number_field(form, f"revision:{key}")
        if not is_key(key) or revision is None:
            raise ConsentError(ConsentCode.NOTICE_REQUIRED)
        cells.append(
            MessageCell(
                key=key,
                ticked=key in ticked and not all_off,
                notice_version_id=number_field(form, name),
                expected_revision=revision,
            )
        )
    if not cells or ticked - {cell.key for cell in cells}:
        raise ConsentError(ConsentCode.NOTICE_REQUIRED)  # a choice without its notice
    contacts = {
        channel: field(form, f"contact:{channel}")
        for channel in CHANNELS
        if f"contact:{channel}" in form
    }
    return MessagesForm(cells, {} if all_off else contacts, all_off)


def left_as(form: FormData) -> dict[str, Any]:
    """A refused grid comes back as it was left: the boxes ticked and the numbers or
    addresses typed (the page's `ticked` and `entered`)."""
    return {
        "ticked": {value for value in form.getlist("on") if isinstance(value, str)},
        "entered": {
            name.partition(":")[2]: value
            for name, value in form.items()
            if name.startswith("contact:") and isinstance(value, str)
        },
    }
