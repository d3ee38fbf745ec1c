"""The steps of the screen handed over at the desk, pure: which step follows what happened."""

from __future__ import annotations

import pytest

from portal.desk.policy import Purpose, Step, handover_step

# (patron's PIN set, a new guardian card still without a PIN, notices answered, notices) → step
STEPS = [
    ((False, False, 0, 0), Step.PIN),  # a PIN reset: only the PIN
    ((False, False, 0, 3), Step.PIN),  # a new card: the PIN comes before any notice
    ((False, True, 0, 3), Step.PIN),  # the patron's own PIN before the guardian's
    ((True, True, 0, 3), Step.GUARDIAN_PIN),
    ((True, True, 3, 3), Step.GUARDIAN_PIN),  # notices never skip the guardian's PIN
    ((True, False, 0, 3), Step.NOTICE),
    ((True, False, 2, 3), Step.NOTICE),  # the last notice
    ((True, False, 3, 3), Step.DONE),  # every notice answered, or left for later
    ((True, False, 0, 0), Step.DONE),  # nothing offered (a PIN reset, or a child alone)
]


@pytest.mark.parametrize(("happened", "step"), STEPS)
def test_the_handed_over_screen_moves_to_the_step_that_follows(
    happened: tuple[bool, bool, int, int], step: Step
) -> None:
    pin_set, guardian_needs_pin, position, notices = happened
    assert (
        handover_step(
            pin_set=pin_set,
            guardian_needs_pin=guardian_needs_pin,
            position=position,
            notices=notices,
        )
        is step
    )


def test_steps_and_purposes_keep_the_values_pages_and_stored_hand_overs_use() -> None:
    assert [step.value for step in Step] == ["pin", "guardian_pin", "notice", "done"]
    assert [purpose.value for purpose in Purpose] == ["new_card", "pin_reset"]
