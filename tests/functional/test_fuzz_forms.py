"""Property-based: any form posted to any page gets a clear answer (never a 5xx), and a
refused decision writes nothing."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.ledger.models import ConsentEvent
from tests.factories import make_patron, publish, standard_catalog
from tests.web import sign_in

ROUTES = [
    "/signin",
    "/setup-pin",
    "/language",
    "/services/reading_history/decision",
    "/services/no_such_service/decision",
    "/saved-lists",
    "/saved-lists/items",
    "/saved-lists/delete",
    "/guardian/link",
    "/guardian/unlink",
    "/guardian/services/reading_history/decision",
    "/privacy/sharing",
]
FIELDS = ["card", "pin", "pin_again", "code", "decision", "revision", "notice_version", "link",
          "list_id", "title", "name", "label", "locale", "next", "share"]  # fmt: skip
values = st.one_of(
    st.text(max_size=60),
    st.sampled_from(["yes", "no", "0", "1", "-1", "9" * 30, "2147483648", "//evil.example"]),
)
forms = st.dictionaries(st.sampled_from(FIELDS), values, max_size=6)


@pytest.fixture
async def signed_in(portal):
    await publish(standard_catalog())
    patron = await make_patron()
    await sign_in(portal.client, patron)
    return portal, patron


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(route=st.sampled_from(ROUTES), form=forms)
async def test_any_form_gets_a_clear_answer_and_a_refusal_writes_nothing(
    signed_in, route: str, form: dict[str, str]
) -> None:
    portal, patron = signed_in
    before = await ConsentEvent.filter(patron_id=patron.id).count()
    answer = await portal.client.post(route, data=form)
    assert answer.status_code < 500, (route, form, answer.text[:300])
    if answer.status_code >= 400 and route.endswith("/decision"):
        assert await ConsentEvent.filter(patron_id=patron.id).count() == before
