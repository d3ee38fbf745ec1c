"""What each error code means to a person: its HTTP status and its message, for pages and
the integration API alike. One line per code; a test fails when a code has none, or when its
message is not translated in every locale."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from starlette.responses import JSONResponse

from portal.errors import (
    ApiCode,
    CatalogCode,
    ConsentCode,
    DeskCode,
    ErrorCode,
    MessagesCode,
    MinorsCode,
    OfficerCode,
    PatronCode,
    StaffCode,
    StoreCode,
)
from portal.i18n import gettext as _
from portal.i18n import ngettext


def N_(message: str) -> str:
    """Marks a msgid for extraction (pybabel -k N_); it is translated when shown."""
    return message


def Np_(singular: str, plural: str) -> tuple[str, str]:
    """Marks a singular/plural msgid pair (pybabel -k Np_:1,2)."""
    return singular, plural


@dataclass(frozen=True)
class Problem:
    status: int
    message: str | tuple[str, str]  # a msgid, or a singular/plural pair counted by `num`


PROBLEMS: dict[ErrorCode, Problem] = {
    PatronCode.SIGNIN_MISSING: Problem(400, N_("Please enter your card number and your PIN.")),
    PatronCode.SIGNIN_FAILED: Problem(
        400, N_("That card number and PIN do not match. Please try again.")
    ),
    PatronCode.SIGNIN_DURING_HANDOVER: Problem(
        409,
        N_(
            "This screen is handed over at the library desk, so you cannot sign in to your"
            " own page on it now. Go back to the desk's screen to finish, or hand it back to"
            " staff; then sign in."
        ),
    ),
    PatronCode.SIGNIN_AT_STAFF_SCREEN: Problem(
        409,
        N_(
            "Library staff are signed in on this screen, so you cannot sign in to your own"
            " page on it now. Ask them to sign out first, or use another device."
        ),
    ),
    PatronCode.SIGNIN_THROTTLED: Problem(
        429,
        Np_(
            "Too many tries. Please wait %(num)s minute, or ask library staff for help.",
            "Too many tries. Please wait %(num)s minutes, or ask library staff for help.",
        ),
    ),
    PatronCode.SIGNIN_DAY_SPENT: Problem(
        429,
        N_(
            "Too many wrong PINs for this card today. Please try again tomorrow, or ask library "
            "staff for help."
        ),
    ),
    PatronCode.SIGNIN_HELD: Problem(
        429,
        N_(
            "Sign-in with this card is on hold after too many wrong PINs. Library staff can "
            "lift the hold once they have checked the card is yours; setting your PIN with a "
            "setup code from the library lifts it too."
        ),
    ),
    PatronCode.SETUP_MISSING: Problem(400, N_("Please fill in every field.")),
    PatronCode.PIN_MISMATCH: Problem(
        400, N_("The two PINs are not the same. Please type them again.")
    ),
    PatronCode.PIN_FORMAT: Problem(400, N_("Your PIN must be 4 to 12 digits.")),
    PatronCode.PIN_GUESSABLE: Problem(
        400, N_("That PIN is too easy to guess. Please avoid repeated or consecutive digits.")
    ),
    PatronCode.CARD_FORMAT: Problem(400, N_("That does not look like a library card number.")),
    PatronCode.CARD_EXISTS: Problem(409, N_("A patron with that library card already exists.")),
    PatronCode.CARD_UNKNOWN: Problem(404, N_("We could not find that library card.")),
    PatronCode.ILS_UNAVAILABLE: Problem(
        503,
        N_(
            "The library system cannot be reached just now, so your card and PIN cannot be "
            "checked. Nothing has changed. Please try again in a few minutes."
        ),
    ),
    PatronCode.PIN_AT_LIBRARY_SYSTEM: Problem(
        409,
        N_(
            "You sign in with the PIN your library already gave you. To change it, use the "
            "library's catalog or ask at the library desk."
        ),
    ),
    PatronCode.SETUP_CODE_INVALID: Problem(
        400,
        N_("That setup code is not valid or has expired. Library staff can give you a new one."),
    ),
    ConsentCode.UNKNOWN_SERVICE: Problem(404, N_("We could not find that service.")),
    ConsentCode.STALE_NOTICE: Problem(
        409,
        N_(
            "The library updated this privacy notice while you were reading. Please read the new "
            "version and choose again."
        ),
    ),
    ConsentCode.STALE_FORM: Problem(
        409,
        N_(
            "Your choices changed in another window. Nothing was changed here; please check the "
            "current state below."
        ),
    ),
    ConsentCode.NOTICE_REQUIRED: Problem(
        400, N_("Please read the privacy notice and choose from it.")
    ),
    ConsentCode.NOTICE_LOCALE: Problem(
        503, N_("This privacy notice is not available in your language yet.")
    ),
    ConsentCode.NO_CURRENT_CONSENT: Problem(
        409, N_("This service is off. Turn it on first to use it.")
    ),
    ConsentCode.GUARDIAN_REQUIRED: Problem(
        403,
        N_(
            "A parent or guardian needs to read this privacy notice and agree before this service "
            "can be turned on."
        ),
    ),
    ConsentCode.NOT_OFFERED: Problem(
        403, N_("The library does not offer this service at your age.")
    ),
    ConsentCode.NOT_GUARDIANS_CHOICE: Problem(
        403,
        N_("This choice belongs to your child. Between their age and adulthood they decide alone."),
    ),
    MessagesCode.CONTACT_REQUIRED: Problem(
        400, N_("Please give the number or address these messages should go to.")
    ),
    MessagesCode.CONTACT_INVALID: Problem(
        400,
        N_(
            "That does not look like a phone number or email address we can use. Please check "
            "it and try again. Nothing was changed."
        ),
    ),
    MessagesCode.NOT_A_MOBILE: Problem(
        400, N_("Text messages need a mobile phone number. Nothing was changed.")
    ),
    MessagesCode.CONTACT_UNUSED: Problem(
        409,
        N_(
            "No messages are on for that way of reaching you, so we do not keep a number or "
            "address for it."
        ),
    ),
    StoreCode.LIST_NAME_MISSING: Problem(400, N_("Please give your list a name.")),
    StoreCode.TITLE_MISSING: Problem(400, N_("Please enter a title.")),
    StoreCode.NOT_FOUND: Problem(404, N_("We could not find that.")),
    MinorsCode.NOT_LINKED: Problem(404, N_("You are not linked to that child.")),
    MinorsCode.NOT_A_MINOR: Problem(
        400, N_("Guardian links are only for patrons under the age of majority.")
    ),
    MinorsCode.GUARDIAN_NOT_ADULT: Problem(400, N_("A guardian must be an adult.")),
    MinorsCode.ALREADY_LINKED: Problem(409, N_("You are already linked to this child.")),
    MinorsCode.LINK_CODE_INVALID: Problem(
        400, N_("That link code is not valid or has expired. Ask your child to make a new one.")
    ),
    CatalogCode.INVALID: Problem(400, N_("The service catalog cannot be published as it is.")),
    MinorsCode.LINK_CODE_THROTTLED: Problem(
        429,
        Np_(
            "Too many tries. Please wait %(num)s minute, or ask library staff for help.",
            "Too many tries. Please wait %(num)s minutes, or ask library staff for help.",
        ),
    ),
    MinorsCode.NOT_VERIFIED: Problem(
        403,
        N_(
            "Only a parent or guardian whose link was checked in person at the library can "
            "decide for this child. You can read the privacy notices and see which services are "
            "on."
        ),
    ),
    MinorsCode.TOO_MANY_GUARDIANS: Problem(
        409,
        N_(
            "This child already has as many parents or guardians linked as the library allows. "
            "Library staff can help."
        ),
    ),
    ApiCode.UNAUTHORISED: Problem(401, N_("A valid access token is required.")),
    ApiCode.INVALID_JSON: Problem(400, N_("The request body is not valid JSON.")),
    ApiCode.CARD_NUMBER_REQUIRED: Problem(400, N_("The request needs a card number.")),
    ApiCode.LOANS_INVALID: Problem(400, N_("The loans are missing or not valid.")),
    ApiCode.CLIENT_EXISTS: Problem(409, N_("A client with that name already exists.")),
    ApiCode.CHECKS_INVALID: Problem(
        400, N_("Each check needs a card number and a service, and at most 100 at once.")
    ),
    ApiCode.BODY_TOO_LARGE: Problem(413, N_("The request body is too large.")),
    ApiCode.CLIENT_UNKNOWN: Problem(404, N_("There is no client with that name.")),
    ApiCode.CLIENT_NAME_INVALID: Problem(
        400, N_("A client name uses only letters, digits, dots, dashes and underscores.")
    ),
    ApiCode.SCOPES_REQUIRED: Problem(400, N_("A client needs at least one scope.")),
    ApiCode.INSUFFICIENT_SCOPE: Problem(
        403, N_("The access token does not grant the scope this request needs.")
    ),
    ApiCode.OAUTH_INVALID_REQUEST: Problem(
        400,
        N_(
            "The token request must be a form with grant_type, each parameter once, and one "
            "way of client authentication."
        ),
    ),
    ApiCode.OAUTH_INVALID_CLIENT: Problem(401, N_("The client id or secret is not valid.")),
    ApiCode.OAUTH_INVALID_SCOPE: Problem(
        400, N_("The scope asked for is unknown or not granted to this client.")
    ),
    ApiCode.OAUTH_UNSUPPORTED_GRANT_TYPE: Problem(
        400, N_("Only the client_credentials grant type is supported.")
    ),
    ApiCode.OAUTH_THROTTLED: Problem(
        429, N_("Too many failed client authentications. Please try again later.")
    ),
    ApiCode.DELETION_UNKNOWN: Problem(404, N_("We could not find that deletion request.")),
    ApiCode.QUERY_INVALID: Problem(400, N_("The query parameters are not valid.")),
    ApiCode.SYSTEM_REQUIRED: Problem(
        403, N_("Deletion requests are shown only to a client that speaks for a connected system.")
    ),
    ApiCode.SYSTEM_UNKNOWN: Problem(400, N_("No connected system in the catalog has that key.")),
    ApiCode.SYSTEM_NOT_YOURS: Problem(403, N_("This client speaks for another connected system.")),
    ApiCode.PATRONS_INVALID: Problem(
        400,
        N_("Each patron needs a patron reference or a card number, and at most 100 at once."),
    ),
    ApiCode.PATRON_UNKNOWN: Problem(404, N_("We could not find that patron.")),
    ApiCode.NO_ENDPOINT: Problem(404, N_("There is no endpoint at this address.")),
    ApiCode.METHOD_NOT_ALLOWED: Problem(
        405, N_("This endpoint does not accept that method; the Allow header lists those it does.")
    ),
    StaffCode.SIGNIN_MISSING: Problem(400, N_("Please fill in every field.")),
    StaffCode.TRAIL_PAGE_INVALID: Problem(
        400, N_("That link to a page of the trail is not valid. Please start from the first page.")
    ),
    StaffCode.SIGNIN_FAILED: Problem(
        400, N_("That username and password do not match. Please try again.")
    ),
    StaffCode.SIGNIN_THROTTLED: Problem(
        429,
        Np_(
            "Too many tries. Please wait %(num)s minute, or ask library staff for help.",
            "Too many tries. Please wait %(num)s minutes, or ask library staff for help.",
        ),
    ),
    StaffCode.SETUP_CODE_INVALID: Problem(
        400, N_("That setup code is not valid or has expired. Ask for a new one.")
    ),
    StaffCode.PASSWORD_TOO_SHORT: Problem(
        400, N_("Please choose a password of at least 12 characters that is not repetitive.")
    ),
    StaffCode.PASSWORD_MISMATCH: Problem(
        400, N_("The two passwords are not the same. Please type them again.")
    ),
    StaffCode.NOT_STAFF: Problem(
        403,
        N_(
            "You signed in, but your account is in no library staff group that may use the "
            "desk. Ask your library's administrator to add you."
        ),
    ),
    StaffCode.PROVIDER_FAILED: Problem(
        400,
        N_("Sign-in with the library's account service did not complete. Please try again."),
    ),
    StaffCode.ROLE_REQUIRED: Problem(403, N_("Your staff role does not include this page.")),
    StaffCode.USERNAME_TAKEN: Problem(409, N_("A staff account with that username exists.")),
    DeskCode.IDENTITY_NOT_CONFIRMED: Problem(
        400,
        N_("Please confirm that you checked the identity of both people and their relationship."),
    ),
    DeskCode.GUARDIAN_CARD_REQUIRED: Problem(
        400,
        N_(
            "This child is below the age at which they can agree alone: scan the card of the "
            "parent or guardian who is here, or make one now."
        ),
    ),
    DeskCode.REASON_REQUIRED: Problem(400, N_("Please say why, as the patron told you.")),
    DeskCode.BIRTH_DATE_INVALID: Problem(
        400, N_("That date of birth is not valid. Please use the form YYYY-MM-DD.")
    ),
    DeskCode.HANDOVER_ENDED: Problem(
        409, N_("This page is out of date. Please start again from the desk.")
    ),
    DeskCode.PIN_EXISTS: Problem(
        409,
        N_("This card already has a PIN. If the patron forgot it, reset the PIN first."),
    ),
    DeskCode.CARD_NOT_IN_ILS: Problem(
        409,
        N_(
            "The library system does not know this card, or it is not valid there. Check the "
            "number, or register the card in the library system first."
        ),
    ),
    DeskCode.ILS_UNAVAILABLE: Problem(
        503,
        N_(
            "The library system cannot be reached just now, so the card cannot be checked. "
            "Nothing was created. Please try again in a few minutes."
        ),
    ),
    DeskCode.PIN_AT_LIBRARY_SYSTEM: Problem(
        409,
        N_("Patrons sign in with the PIN the library system holds: reset it there, not here."),
    ),
    DeskCode.SAME_CARD: Problem(
        400, N_("The guardian's card must be a different card from the child's.")
    ),
    OfficerCode.PUBLISHED_MEANWHILE: Problem(
        409,
        N_(
            "The catalog was published by someone else since this preview. Nothing was "
            "published: upload your file again to see what would change now."
        ),
    ),
    OfficerCode.ALREADY_PUBLISHED: Problem(
        409, N_("This catalog is already published. Nothing was published again.")
    ),
    OfficerCode.PREVIEW_INVALID: Problem(
        400, N_("This preview does not match the file. Please upload the file again.")
    ),
    OfficerCode.CATALOG_FILE_MISSING: Problem(400, N_("Please choose a catalog file (TOML).")),
    OfficerCode.REQUEST_INCOMPLETE: Problem(
        400, N_("Please fill in every required field, with a valid date.")
    ),
    OfficerCode.CARD_IN_TEXT: Problem(
        400,
        N_(
            "The text names a patron's library card. Please put the card number in its own "
            "field, where it is kept only as a coded reference."
        ),
    ),
}


def http_status(code: ErrorCode) -> int:
    return PROBLEMS[code].status


def message_for(code: ErrorCode, *, num: int = 1) -> str:
    """The message in the current language; `num` counts what a plural message counts."""
    message = PROBLEMS[code].message
    if isinstance(message, tuple):
        return ngettext(*message, num)
    return _(message)


def json_error(
    code: ErrorCode,
    *,
    extra: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """The integration API's error body: the stable code and what it means, and what else
    the code needs said (the scope a token lacks)."""
    return JSONResponse(
        {"error": code.value, "message": message_for(code), **(extra or {})},
        status_code=http_status(code),
        headers=headers,
    )
