"""One way to show a count: the `count` filter (Babel, in the page's locale). A number printed
raw reads "1095" on one page and "1,095" on the next; a plural message whose number is its
bare count does the same."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2 import nodes

from portal import i18n
from portal.web.rendering import TEMPLATES_DIR, build_environment

TEMPLATES = sorted(
    str(path.relative_to(TEMPLATES_DIR)) for path in Path(TEMPLATES_DIR).rglob("*.html")
)
PLURAL_CALLS = {"ngettext", "npgettext"}
# Expressions that are counts whatever they are called, and names that hold counts.
COUNTING_FILTERS = {"length"}
COUNT_SUFFIXES = ("days",)


def _is_counted(node: nodes.Expr) -> bool:
    return isinstance(node, nodes.Filter) and node.name == "count"


def _named_count(node: nodes.Node) -> bool:
    if isinstance(node, nodes.Or):
        return _named_count(node.left)
    name = getattr(node, "attr", None) or getattr(node, "name", None)
    return isinstance(node, nodes.Getattr | nodes.Name) and str(name).endswith(COUNT_SUFFIXES)


def raw_counts(template: str) -> list[str]:
    env = build_environment("UTC")
    source = (Path(TEMPLATES_DIR) / template).read_text(encoding="utf-8")
    tree = env.parse(source)
    problems = []
    for call in tree.find_all(nodes.Call):
        if not (isinstance(call.node, nodes.Name) and call.node.name in PLURAL_CALLS):
            continue
        singular = call.args[-3].value if len(call.args) >= 3 else ""
        bound = {keyword.key: keyword.value for keyword in call.kwargs}
        for keyword, value in bound.items():
            if f"%({keyword})s" in singular and not _is_counted(value):
                problems.append(f"line {call.lineno}: {keyword} is shown without |count")
        if "%(num)s" in singular and "num" not in bound:
            # {% trans num=… %}: Jinja passes the bare count as num.
            problems.append(f"line {call.lineno}: num is the bare count")
    for output in tree.find_all(nodes.Output):
        for node in output.nodes:
            if isinstance(node, nodes.Filter) and node.name in COUNTING_FILTERS:
                problems.append(f"line {node.lineno}: |{node.name} printed without |count")
            if _named_count(node):
                problems.append(f"line {node.lineno}: a number of days printed without |count")
    return problems


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_count_in_a_template_goes_through_the_count_filter(template: str) -> None:
    assert raw_counts(template) == []


@pytest.mark.parametrize(
    ("code", "expected"),
    [("en", "1,095"), ("es", "1095"), ("es", "10.950"), ("fr", "1\u202f095"), ("ar", "1,095")],
)
def test_the_count_filter_follows_cldr_for_the_locale(code: str, expected: str) -> None:
    """Spanish groups digits from five on (CLDR's minimumGroupingDigits 2): 1095, 10.950."""
    number = int(expected.replace(",", "").replace(".", "").replace("\u202f", ""))
    with i18n.use_locale(code):
        assert i18n.format_count(number) == expected
