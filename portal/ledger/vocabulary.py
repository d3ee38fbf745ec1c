"""The ledger's vocabulary: what happened, how, by whom, through which channel. Pure: every
domain and every pure rule may use it."""

from __future__ import annotations

from enum import StrEnum


class EventKind(StrEnum):
    GIVEN = "given"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"
    RENEWED = "renewed"
    EXPIRED = "expired"
    ERASED = "erased"
    SUSPENDED = "suspended"
    GUARDIAN_LINKED = "guardian_linked"
    GUARDIAN_LINK_ENDED = "guardian_link_ended"
    # One per connected system holding the service's data (detail: system, request id).
    DELETION_REQUESTED = "deletion_requested"
    DELETION_CONFIRMED = "deletion_confirmed"
    # A service a messaging service replaced: its consent became exactly the message choices
    # its notice had named (on the old service: to which; on each choice: from which).
    CARRIED_OVER = "carried_over"


class Method(StrEnum):
    ONLINE = "online"
    DESK_HANDOVER = "desk_handover"
    GUARDIAN = "guardian"
    SYSTEM = "system"


class Actor(StrEnum):
    PATRON = "patron"
    GUARDIAN = "guardian"
    SYSTEM = "system"


class Channel(StrEnum):
    WEB = "web"
    CLI = "cli"
    DESK = "desk"  # on the library's screen, handed over to the patron, staff witnessing
    API = "api"  # a connected library system: its answer to a request, or the integration API


class Audience(StrEnum):
    """Which text of a notice version was on screen."""

    ADULT = "adult"  # the full notice
    CHILD = "child"  # its child's version: the same facts, in a child's words
