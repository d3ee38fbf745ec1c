"""Patron-facing texts for the stable error codes services and forms raise."""

from __future__ import annotations

from portal.i18n import gettext as _

MESSAGES = {
    "signin_missing": lambda: _("Please enter your card number and your PIN."),
    "signin_failed": lambda: _("That card number and PIN do not match. Please try again."),
    "signin_throttled": lambda: _(
        "Too many tries. Please wait 15 minutes, or ask library staff for help."
    ),
    "setup_missing": lambda: _("Please fill in every field."),
    "pin_mismatch": lambda: _("The two PINs are not the same. Please type them again."),
    "pin_format": lambda: _("Your PIN must be 4 to 12 digits."),
    "pin_guessable": lambda: _(
        "That PIN is too easy to guess. Please avoid repeated or consecutive digits."
    ),
    "card_format": lambda: _("That does not look like a library card number."),
    "setup_code_invalid": lambda: _(
        "That setup code is not valid or has expired. Library staff can give you a new one."
    ),
    "unknown_service": lambda: _("We could not find that service."),
    "stale_notice": lambda: _(
        "The library updated this notice while you were reading. Please read the new version "
        "and choose again."
    ),
    "stale_form": lambda: _(
        "Your choices changed in another window. Nothing was changed here; please check the "
        "current state below."
    ),
    "notice_required": lambda: _("Please read the notice and choose from it."),
    "notice_locale": lambda: _("This notice is not available in your language yet."),
    "no_current_consent": lambda: _("This service is off. Turn it on first to use it."),
    "list_name_missing": lambda: _("Please give your list a name."),
    "title_missing": lambda: _("Please enter a title."),
    "not_found": lambda: _("We could not find that."),
    "guardian_required": lambda: _(
        "A parent or guardian needs to read this notice and agree before this service can be "
        "turned on."
    ),
    "not_offered": lambda: _("The library does not offer this service at your age."),
    "not_guardians_choice": lambda: _(
        "This choice belongs to your child. Between their age and adulthood they decide alone."
    ),
    "not_linked": lambda: _("You are not linked to that child."),
    "not_a_minor": lambda: _("Guardian links are only for patrons under the age of majority."),
    "guardian_not_adult": lambda: _("A guardian must be an adult."),
    "already_linked": lambda: _("You are already linked to this child."),
    "link_code_invalid": lambda: _(
        "That link code is not valid or has expired. Ask your child to make a new one."
    ),
}


def message_for(code: str) -> str:
    text = MESSAGES.get(code)
    return text() if text else _("Something went wrong. Nothing was changed.")
