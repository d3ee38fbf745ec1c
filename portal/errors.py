"""Every stable error code, one enum per domain, and the one base of the errors that carry
them. Services raise a `DomainError` and never put it into words (docs/ARCHITECTURE.md,
"Errors"); what a code means to a person, its HTTP status and message, is one line in
portal.web.problems.
"""

from __future__ import annotations

from enum import StrEnum


class PatronCode(StrEnum):
    SIGNIN_MISSING = "signin_missing"
    SIGNIN_FAILED = "signin_failed"
    SIGNIN_THROTTLED = "signin_throttled"
    SIGNIN_DAY_SPENT = "signin_day_spent"
    SIGNIN_HELD = "signin_held"
    SETUP_MISSING = "setup_missing"
    PIN_MISMATCH = "pin_mismatch"
    PIN_FORMAT = "pin_format"
    PIN_GUESSABLE = "pin_guessable"
    CARD_FORMAT = "card_format"
    CARD_EXISTS = "card_exists"
    CARD_UNKNOWN = "card_unknown"
    SETUP_CODE_INVALID = "setup_code_invalid"
    ILS_UNAVAILABLE = "ils_unavailable"
    PIN_AT_LIBRARY_SYSTEM = "pin_at_library_system"
    SIGNIN_DURING_HANDOVER = "signin_during_handover"
    SIGNIN_AT_STAFF_SCREEN = "signin_at_staff_screen"


class ConsentCode(StrEnum):
    UNKNOWN_SERVICE = "unknown_service"
    STALE_NOTICE = "stale_notice"
    STALE_FORM = "stale_form"
    NOTICE_REQUIRED = "notice_required"
    NOTICE_LOCALE = "notice_locale"
    NO_CURRENT_CONSENT = "no_current_consent"
    GUARDIAN_REQUIRED = "guardian_required"
    NOT_OFFERED = "not_offered"
    NOT_GUARDIANS_CHOICE = "not_guardians_choice"


class StoreCode(StrEnum):
    LIST_NAME_MISSING = "list_name_missing"
    TITLE_MISSING = "title_missing"
    NOT_FOUND = "not_found"


class MessagesCode(StrEnum):
    CONTACT_REQUIRED = "contact_required"
    CONTACT_INVALID = "contact_invalid"
    NOT_A_MOBILE = "not_a_mobile"
    CONTACT_UNUSED = "contact_unused"


class MinorsCode(StrEnum):
    NOT_LINKED = "not_linked"
    NOT_A_MINOR = "not_a_minor"
    GUARDIAN_NOT_ADULT = "guardian_not_adult"
    ALREADY_LINKED = "already_linked"
    LINK_CODE_INVALID = "link_code_invalid"
    LINK_CODE_THROTTLED = "link_code_throttled"
    NOT_VERIFIED = "guardian_not_verified"
    TOO_MANY_GUARDIANS = "too_many_guardians"


class CatalogCode(StrEnum):
    INVALID = "catalog_invalid"


class ApiCode(StrEnum):
    UNAUTHORISED = "unauthorised"
    INVALID_JSON = "invalid_json"
    CARD_NUMBER_REQUIRED = "card_number_required"
    LOANS_INVALID = "loans_invalid"
    CLIENT_EXISTS = "client_exists"
    CHECKS_INVALID = "checks_invalid"
    BODY_TOO_LARGE = "body_too_large"
    CLIENT_UNKNOWN = "client_unknown"
    CLIENT_NAME_INVALID = "client_name_invalid"
    SCOPES_REQUIRED = "scopes_required"
    INSUFFICIENT_SCOPE = "insufficient_scope"
    # The token endpoint's errors carry RFC 6749 §5.2's codes.
    OAUTH_INVALID_REQUEST = "invalid_request"
    OAUTH_INVALID_CLIENT = "invalid_client"
    OAUTH_INVALID_SCOPE = "invalid_scope"
    OAUTH_UNSUPPORTED_GRANT_TYPE = "unsupported_grant_type"
    OAUTH_THROTTLED = "too_many_requests"
    DELETION_UNKNOWN = "deletion_unknown"
    QUERY_INVALID = "query_invalid"
    SYSTEM_REQUIRED = "system_required"
    SYSTEM_UNKNOWN = "system_unknown"
    SYSTEM_NOT_YOURS = "system_not_yours"
    PATRONS_INVALID = "patrons_invalid"
    PATRON_UNKNOWN = "patron_unknown"
    # An address under /api/ or /oauth/ that is no endpoint, or a method it does not take.
    NO_ENDPOINT = "no_endpoint"
    METHOD_NOT_ALLOWED = "method_not_allowed"


class StaffCode(StrEnum):
    SIGNIN_MISSING = "staff_signin_missing"
    SIGNIN_FAILED = "staff_signin_failed"
    SIGNIN_THROTTLED = "staff_signin_throttled"
    SETUP_CODE_INVALID = "staff_setup_code_invalid"
    PASSWORD_TOO_SHORT = "staff_password_too_short"  # noqa: S105 (an error code)
    PASSWORD_MISMATCH = "staff_password_mismatch"  # noqa: S105 (an error code)
    NOT_STAFF = "not_staff"
    PROVIDER_FAILED = "identity_provider_failed"
    ROLE_REQUIRED = "staff_role_required"
    USERNAME_TAKEN = "staff_username_taken"
    TRAIL_PAGE_INVALID = "trail_page_invalid"


class DeskCode(StrEnum):
    IDENTITY_NOT_CONFIRMED = "identity_not_confirmed"
    GUARDIAN_CARD_REQUIRED = "guardian_card_required"
    REASON_REQUIRED = "reason_required"
    BIRTH_DATE_INVALID = "birth_date_invalid"
    HANDOVER_ENDED = "handover_ended"
    SAME_CARD = "same_card"
    PIN_EXISTS = "pin_exists"
    CARD_NOT_IN_ILS = "card_not_in_ils"
    ILS_UNAVAILABLE = "desk_ils_unavailable"
    PIN_AT_LIBRARY_SYSTEM = "desk_pin_at_library_system"


class OfficerCode(StrEnum):
    PUBLISHED_MEANWHILE = "catalog_published_meanwhile"
    ALREADY_PUBLISHED = "catalog_already_published"
    PREVIEW_INVALID = "catalog_preview_invalid"
    CATALOG_FILE_MISSING = "catalog_file_missing"
    REQUEST_INCOMPLETE = "outside_request_incomplete"
    CARD_IN_TEXT = "outside_request_card_in_text"


# The type and the tuple name the same enums: mypy needs the union, the tests the tuple.
ErrorCode = (
    PatronCode
    | ConsentCode
    | StoreCode
    | MessagesCode
    | MinorsCode
    | CatalogCode
    | ApiCode
    | StaffCode
    | DeskCode
    | OfficerCode
)
ERROR_ENUMS: tuple[type[StrEnum], ...] = (
    PatronCode,
    ConsentCode,
    StoreCode,
    MessagesCode,
    MinorsCode,
    CatalogCode,
    ApiCode,
    StaffCode,
    DeskCode,
    OfficerCode,
)


class DomainError(Exception):
    """The one base of every error a use case raises on purpose."""

    def __init__(self, code: ErrorCode) -> None:
        super().__init__(code.value)
        self.code = code
