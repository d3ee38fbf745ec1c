"""Property-based tests of every parser of outside input: whatever arrives, the answer is
a value or a clear DomainError, never another exception."""

from __future__ import annotations

import contextlib
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.datastructures import FormData

from portal.catalog.parsing import parse_catalog
from portal.catalog.policy import CatalogError
from portal.decisions.forms import parse_decision
from portal.errors import DomainError
from portal.patrons.views import parse_pin_setup, parse_signin
from portal.web.requests import MAX_ID, field, number_field, plain_text

ROOT = Path(__file__).resolve().parents[2]
DEMO = (ROOT / "deploy" / "catalog.toml").read_text(encoding="utf-8")
STORES = ("reading_history", "saved_lists")
FIELDS = ("card", "pin", "pin_again", "code", "decision", "revision", "notice_version", "x")
values = st.one_of(st.text(max_size=40), st.sampled_from(["yes", "no", "0", "-1", "9" * 30]))
forms = st.lists(st.tuples(st.sampled_from(FIELDS), values), max_size=8).map(FormData)


@given(forms)
def test_form_parsers_answer_a_value_or_a_clear_error(form: FormData) -> None:
    for parser in (parse_signin, parse_pin_setup, parse_decision):
        with contextlib.suppress(DomainError):
            parser(form)


@given(forms, st.sampled_from(FIELDS))
def test_fields_are_bounded_plain_text_and_ids_fit_their_columns(form: FormData, name: str) -> None:
    text = field(form, name)
    assert len(text) <= 200
    assert text == plain_text(text)
    number = number_field(form, name)
    assert number is None or 0 <= number <= MAX_ID


@st.composite
def damaged_catalogs(draw: st.DrawFn) -> str:
    """The demo catalog with lines dropped, repeated or replaced: near misses, the kind a
    privacy officer's typo makes."""
    lines = DEMO.splitlines()
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["drop", "repeat", "replace"]))
        if action == "drop":
            del lines[at]
        elif action == "repeat":
            lines.insert(at, lines[at])
        else:
            lines[at] = draw(st.text(max_size=30))
    return "\n".join(lines)


@settings(max_examples=60, deadline=None)
@given(st.one_of(damaged_catalogs(), st.text(max_size=200)))
def test_a_catalog_parses_or_names_its_problems(text: str) -> None:
    problems: list[str] = []
    try:
        catalog = parse_catalog(text, ("en",), STORES)
    except CatalogError as error:
        problems = error.problems
        assert problems, "a refused catalog names at least one problem"
    else:
        assert catalog.services
        assert all(service.notices.keys() == {"en"} for service in catalog.services)
    assert all(isinstance(problem, str) and problem for problem in problems)
