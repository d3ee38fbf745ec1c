"""What a contact detail for messages may be: a phone number, read as the patron wrote it
(with or without the country code) and kept as E.164 (+15555550123); an email address
whose syntax the standards allow, kept as normalised. Validation is the field's own
libraries' (phonenumbers, email-validator), never a pattern of ours. Pure: no I/O (no DNS
look-up of the address's domain: that would tell a resolver whom the patron writes to)."""

from __future__ import annotations

from enum import StrEnum

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from portal.errors import DomainError, MessagesCode

# The most a patron may type in the field: longer than any number or address allows.
MAX_INPUT = 254


class ContactKind(StrEnum):
    PHONE = "phone"
    EMAIL = "email"


# What each channel needs: a text message and a phone call both a number.
CONTACT_OF_CHANNEL = {
    "email": ContactKind.EMAIL,
    "sms": ContactKind.PHONE,
    "phone": ContactKind.PHONE,
}


class ContactError(DomainError):
    """A MessagesCode: the contact detail given cannot be used."""


def is_phone_region(region: str) -> bool:
    return region in phonenumbers.SUPPORTED_REGIONS


def normalised(channel: str, raw: str, *, region: str) -> str:
    """The contact detail as kept, or ContactError naming what is wrong with it."""
    text = raw.strip()
    if not text:
        raise ContactError(MessagesCode.CONTACT_REQUIRED)
    if len(text) > MAX_INPUT:
        raise ContactError(MessagesCode.CONTACT_INVALID)
    kind = CONTACT_OF_CHANNEL[channel]
    if kind is ContactKind.EMAIL:
        try:
            # An address every library mail system can deliver to: no non-ASCII local
            # part; an internationalised domain kept in its ASCII (IDNA) form.
            checked = validate_email(text, check_deliverability=False, allow_smtputf8=False)
        except EmailNotValidError:
            raise ContactError(MessagesCode.CONTACT_INVALID) from None
        return checked.ascii_email or checked.normalized
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        raise ContactError(MessagesCode.CONTACT_INVALID) from None
    if not phonenumbers.is_valid_number(number) or number.extension:
        # An extension would be dropped from E.164 and the call reach a switchboard.
        raise ContactError(MessagesCode.CONTACT_INVALID)
    if channel == "sms" and phonenumbers.number_type(number) in (
        phonenumbers.PhoneNumberType.FIXED_LINE,
        phonenumbers.PhoneNumberType.PREMIUM_RATE,
        phonenumbers.PhoneNumberType.TOLL_FREE,
    ):
        raise ContactError(MessagesCode.NOT_A_MOBILE)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def shown(value: str) -> str:
    """How the patron sees the detail kept: a number in international format."""
    if value.startswith("+"):
        try:
            return phonenumbers.format_number(
                phonenumbers.parse(value), phonenumbers.PhoneNumberFormat.INTERNATIONAL
            )
        except phonenumbers.NumberParseException:
            return value
    return value
