"""Store pages through HTTP: each sits behind the notice of the service that owns the store,
whatever that service is called."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.factories import catalog_text, make_patron, publish, service_table
from tests.web import sign_in, visible_text


@pytest.fixture
def portal_settings(settings):
    return replace(settings, dev_mode=True)


async def test_a_store_owned_by_a_differently_named_service_shows_that_services_notice(
    portal,
) -> None:
    await publish(
        catalog_text(
            service_table("borrowing_history", store="reading_history"),
            service_table("my_lists", store="saved_lists"),
        )
    )
    await sign_in(portal.client, await make_patron())
    for path in ("/reading-history", "/saved-lists"):
        gate = await portal.client.get(path)
        assert gate.status_code == 200
        assert 'name="decision" value="yes"' in gate.text
    history_gate = await portal.client.get("/reading-history")
    assert "borrowing_history title en" in history_gate.text
    refused = await portal.client.post("/reading-history/demo-loan", data={"title": "Dune"})
    assert refused.status_code == 409
    assert "borrowing_history title en" in refused.text
    assert "This service is off. Turn it on first to use it." in visible_text(refused.text)
    list_refused = await portal.client.post("/saved-lists", data={"name": "Later"})
    assert list_refused.status_code == 409
    assert "my_lists title en" in list_refused.text
