"""The garbage collector's full passes leave out what the app made at startup (modules,
routes, templates, the ORM's models): with them, each pass paused every request in flight
for 25-45 ms, a few times a minute under load (README, "Performance")."""

from __future__ import annotations

import gc


async def test_what_startup_made_is_left_out_of_full_collections(portal) -> None:
    # The `portal` fixture has run the app's lifespan, as a worker does before serving.
    assert gc.get_freeze_count() > 10_000
