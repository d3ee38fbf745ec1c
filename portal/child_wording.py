"""The pages a signed-in child reads, in the child's register.

A child below the guardian-consent age reads every page in the "child" register
(portal.i18n.use_register, set per request in portal.web.visit): each message is looked up
in the "child" context first and falls back to its plain translation. This module only
lists, for extraction (`pybabel extract -k Cp_:1c,2`), the messages of those pages (My
privacy, My consent record, the stores' pages, My data and receipts, the layout and the
error page) whose wording for a child differs in at least one language: tú, tu, em, 你, ты,
해요체, «mo/ka» without «po». A message missing here is shown in the adult register, never
in English.
"""

# ruff: noqa: E501 - each message on one line, exactly as the templates write it

from __future__ import annotations

from portal.i18n import Cnp_, Cp_

MESSAGES: tuple[str, ...] = (
    Cp_(
        "child",
        "This portal uses no tracking, no advertising and nothing from other websites. It keeps only what each service you turn on needs.",
    ),
    Cp_("child", "A parent or guardian said yes"),
    Cp_("child", "A parent or guardian said no"),
    Cp_("child", "You said yes"),
    Cp_("child", "You said no"),
    Cp_("child", "You turned it off"),
    Cp_("child", "You said yes to the new privacy notice"),
    Cp_("child", "Paused until you confirm it yourself"),
    Cp_("child", "A parent or guardian was linked to your account"),
    Cp_("child", "A parent or guardian link ended"),
    Cp_("child", "We asked %(name)s to delete your data"),
    Cp_("child", "%(name)s confirmed your data was deleted"),
    Cp_(
        "child",
        "Each service below is optional. It stays off until you read its privacy notice and say yes. Saying no never limits your borrowing.",
    ),
    Cp_(
        "child",
        "Some services need a parent or guardian to read the privacy notice and agree before they can be turned on. You can always say no or turn a service off yourself.",
    ),
    Cp_("child", "Get a code for a parent or guardian"),
    Cp_("child", "Your guardians can see your choices (not what you borrow)."),
    Cp_("child", "Not offered at your age"),
    Cp_("child", "Waiting for a parent or guardian to agree."),
    Cp_("child", "Your data"),
    Cp_(
        "child",
        "A file with everything this portal keeps about you: your details, your choices, your consent record and what each service kept.",
    ),
    Cp_(
        "child",
        "Every choice about your data, with the privacy notice you saw. This record cannot be changed.",
    ),
    Cp_("child", "What library staff did on your account"),
    Cp_("child", "Library staff created your card on %(day)s"),
    Cp_("child", "Library staff handed you the library's screen to choose your PIN on %(day)s"),
    Cp_("child", "Library staff reset your PIN on %(day)s"),
    Cp_("child", "Library staff printed a PIN setup slip for you on %(day)s"),
    Cp_("child", "Library staff linked a parent or guardian, checked in person, on %(day)s"),
    Cp_("child", "Library staff ended a parent or guardian link on %(day)s"),
    Cp_("child", "Library staff unlocked your sign-in on %(day)s"),
    Cp_("child", "Library staff looked up your card on %(day)s"),
    Cp_("child", "Nothing was changed. Your choices are safe."),
    Cp_("child", "Through a parent or guardian"),
    Cp_(
        "child",
        "Everything this portal keeps about you. Download it as a file, or print this page.",
    ),
    Cp_("child", "Parents or guardians linked to you"),
    Cp_("child", "Children you are linked to"),
    Cp_("child", "Your choices"),
    Cp_(
        "child",
        "A signed copy of one decision in your consent record. Anyone can check it on the library's receipt check page.",
    ),
    Cp_(
        "child",
        "Receipts cannot be made or checked right now. Please try again later or ask library staff.",
    ),
    Cp_(
        "child",
        "Only you can see this list. Library staff, other patrons and family members cannot.",
    ),
    Cp_("child", "Nothing here yet. Titles you borrow from now on will appear here."),
    Cp_(
        "child",
        "Demonstration only: pretend to borrow a book, as the library system would report it.",
    ),
    Cp_("child", "You have no lists yet."),
    Cp_(
        "child",
        "Paste a receipt, or choose a receipt file, to check that the library signed it and that nothing in it was changed.",
    ),
    # What the pages above say when something goes wrong (portal.web.problems).
    Cp_(
        "child",
        "The library updated this privacy notice while you were reading. Please read the new version and choose again.",
    ),
    Cp_(
        "child",
        "Your choices changed in another window. Nothing was changed here; please check the current state below.",
    ),
    Cp_("child", "Please read the privacy notice and choose from it."),
    Cp_("child", "This privacy notice is not available in your language yet."),
    Cp_(
        "child",
        "A parent or guardian needs to read this privacy notice and agree before this service can be turned on.",
    ),
    Cp_("child", "Please give your list a name."),
    Cp_("child", "Please enter a title."),
    Cp_("child", "End this link"),
    Cp_(
        "child",
        "A link checked in person at the library is ended by library staff: ask at the desk.",
    ),
    Cp_("child", "Library staff reset your PIN"),
    Cp_("child", "Library staff reset your PIN on %(moment)s. Since then, only the new PIN works."),
    Cp_(
        "child",
        "If you did not ask for this, tell the library: ask at the desk of %(library)s or call them, and say that your PIN was reset without your asking. Staff will check who did it and help you choose a new PIN.",
    ),
    Cp_("child", "See what library staff did on your account"),
    Cp_("child", "I asked for this: hide this message"),
    Cp_("child", "Sign-in with your card"),
    Cp_(
        "child",
        "Sign-in with your card was put on hold on %(day)s after too many wrong PINs. If that was not you, someone may have tried to guess your PIN: choose a new one with a setup code from the library.",
    ),
    Cp_("child", "Library staff reset your PIN on %(day)s"),
)

PLURALS: tuple[tuple[str, str], ...] = (
    Cnp_(
        "child",
        "You have %(number)s parent or guardian linked.",
        "You have %(number)s parents or guardians linked.",
    ),
)
