"""What each kind of ledger event records beside it (its `detail`): one shape per kind, the
check every detail passes on its way into the ledger, and the stored JSON read back into its
kind's shape. Pure, like the vocabulary. The keys are kept as long as the ledger, exported in
the patron's copy of their data and shown on their record, so they never change."""

# Annotations are evaluated here, unlike elsewhere: TypedDict sees NotRequired only so.
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NotRequired, TypedDict, cast, get_type_hints, overload

from portal.ledger.vocabulary import EventKind


class NoDetail(TypedDict):
    """A decision (given, refused, withdrawn, renewed) or an expiry: the event says it all."""


class Suspended(TypedDict):
    reason: str  # a SuspensionReason of the consent domain: why the consent was paused
    terms_revision: int  # the service's terms when it was paused


class Erased(TypedDict):
    rows_deleted: int  # by the portal, from the service's store
    reason: NotRequired[str]  # "retention" when the retention period ran out
    # The channel whose contact detail was erased (its last message choice went off).
    contact: NotRequired[str]


class GuardianLinked(TypedDict):
    link: int  # the guardian link


class GuardianLinkEnded(TypedDict):
    link: int
    reason: str  # "guardian_ended", "ended_by_child", "ended_by_library" or "came_of_age"


class DeletionRequested(TypedDict):
    system: str  # the connected system's key
    system_name: str  # its name when asked, as the patron's record shows it
    request: str  # the request's webhook-id
    reason: str  # a DeletionReason of the outbox: why the data goes


class DeletionConfirmed(TypedDict):
    system: str
    system_name: str
    request: str  # the webhook-id of the request confirmed
    via: str  # "response" (its answer to the request) or "ack" (acknowledged later)
    client: NotRequired[int]  # the API client that acknowledged it


class CarriedOver(TypedDict):
    """On a message choice: the service its consent came from. On that service: the
    messaging service, channel and kinds (comma-separated) it went to."""

    from_service: NotRequired[str]
    to_service: NotRequired[str]
    channel: NotRequired[str]
    kinds: NotRequired[str]


EventDetail = (
    NoDetail
    | Suspended
    | Erased
    | GuardianLinked
    | GuardianLinkEnded
    | DeletionRequested
    | DeletionConfirmed
    | CarriedOver
)

SHAPES: dict[EventKind, type[EventDetail]] = {
    EventKind.GIVEN: NoDetail,
    EventKind.REFUSED: NoDetail,
    EventKind.WITHDRAWN: NoDetail,
    EventKind.RENEWED: NoDetail,
    EventKind.EXPIRED: NoDetail,
    EventKind.ERASED: Erased,
    EventKind.SUSPENDED: Suspended,
    EventKind.GUARDIAN_LINKED: GuardianLinked,
    EventKind.GUARDIAN_LINK_ENDED: GuardianLinkEnded,
    EventKind.DELETION_REQUESTED: DeletionRequested,
    EventKind.DELETION_CONFIRMED: DeletionConfirmed,
    EventKind.CARRIED_OVER: CarriedOver,
}


@dataclass(frozen=True)
class _Keys:
    required: frozenset[str]
    optional: frozenset[str]
    types: dict[str, type]  # NotRequired unwrapped


def _keys(shape: Any) -> _Keys:  # a TypedDict class: its keys are not typed for mypy
    return _Keys(shape.__required_keys__, shape.__optional_keys__, get_type_hints(shape))


_KEYS = {kind: _keys(shape) for kind, shape in SHAPES.items()}


class DetailError(ValueError):
    """A detail that is not its kind's shape: a programming error, never the patron's."""


def checked(kind: EventKind, detail: Mapping[str, object]) -> dict[str, object]:
    """The detail as the ledger stores it, its keys in the order given (so the JSON stays as
    it always was), once it is its kind's shape: every key it needs, none it does not know,
    each value of its type."""
    keys = _KEYS[kind]
    missing = keys.required - detail.keys()
    unknown = detail.keys() - keys.required - keys.optional
    if missing or unknown:
        raise DetailError(f"{kind}: missing {sorted(missing)}, unknown {sorted(unknown)}")
    for key, value in detail.items():
        # JSON tells an integer from a boolean; Python's bool is an int.
        if not isinstance(value, keys.types[key]) or isinstance(value, bool):
            raise DetailError(f"{kind}: {key} is not {keys.types[key].__name__}")
    return dict(detail)


NO_DETAIL_KINDS = Literal[
    EventKind.GIVEN, EventKind.REFUSED, EventKind.WITHDRAWN, EventKind.RENEWED, EventKind.EXPIRED
]


@overload
def read_detail(kind: NO_DETAIL_KINDS, stored: Mapping[str, object]) -> NoDetail: ...
@overload
def read_detail(kind: Literal[EventKind.ERASED], stored: Mapping[str, object]) -> Erased: ...
@overload
def read_detail(kind: Literal[EventKind.SUSPENDED], stored: Mapping[str, object]) -> Suspended: ...
@overload
def read_detail(
    kind: Literal[EventKind.GUARDIAN_LINKED], stored: Mapping[str, object]
) -> GuardianLinked: ...
@overload
def read_detail(
    kind: Literal[EventKind.GUARDIAN_LINK_ENDED], stored: Mapping[str, object]
) -> GuardianLinkEnded: ...
@overload
def read_detail(
    kind: Literal[EventKind.DELETION_REQUESTED], stored: Mapping[str, object]
) -> DeletionRequested: ...
@overload
def read_detail(
    kind: Literal[EventKind.DELETION_CONFIRMED], stored: Mapping[str, object]
) -> DeletionConfirmed: ...
@overload
def read_detail(
    kind: Literal[EventKind.CARRIED_OVER], stored: Mapping[str, object]
) -> CarriedOver: ...
@overload
def read_detail(kind: EventKind, stored: Mapping[str, object]) -> EventDetail: ...
def read_detail(kind: EventKind, stored: Mapping[str, object]) -> EventDetail:
    """A stored detail as its kind's shape. Strict on writing, forgiving on reading: the
    ledger is append-only, so a row written by a later version (a key this one does not
    know) must not stop a patron's record from showing; such keys are left out. A row
    missing a key its kind needs is refused (DetailError): nothing can be shown for it."""
    keys = _KEYS[kind]
    missing = keys.required - stored.keys()
    if missing:
        raise DetailError(f"{kind}: missing {sorted(missing)}")
    known = keys.required | keys.optional
    return cast(EventDetail, {key: value for key, value in stored.items() if key in known})
