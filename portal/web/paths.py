"""What a path parameter may hold, checked by the router before any endpoint runs: a service
key, a notice revision, a locale code, a receipt reference. A path that holds anything else
(a newline, card digits, a key longer than its column, a revision past a 32-bit integer)
matches no route and is answered 404 there, so it never reaches a use case, the database or a
log line. Registered with Starlette's convertors when this module is imported, which every
views module that names one does."""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor

# The id columns and revisions are 32-bit integers on PostgreSQL: nine digits always fit.
REVISION_DIGITS = 9


class _Text(Convertor[str]):
    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return str(value)


class CatalogKey(_Text):
    """A service's key as the catalog allows it (portal.catalog.parsing: 2 to 40 characters)."""

    regex = "[a-z][a-z0-9_]{1,39}"


class LocaleCode(_Text):
    """A locale's folder name: `en`, `fil`, `zh_Hans`, `zh_Hant_HK` (portal.i18n.KNOWN_LOCALES)."""

    regex = "[a-z]{2,3}(?:_[A-Za-z]{2,4}){0,2}"


class ReceiptReference(_Text):
    """A receipt's keyed reference (portal.rights.policy.receipt_reference): 24 hex digits."""

    regex = "[0-9a-f]{24}"


class Revision(Convertor[int]):
    regex = f"[0-9]{{1,{REVISION_DIGITS}}}"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return str(value)


register_url_convertor("catalog_key", CatalogKey())
register_url_convertor("locale", LocaleCode())
register_url_convertor("receipt_reference", ReceiptReference())
register_url_convertor("revision", Revision())

# The parameters as route templates write them: Route(f"/services/{KEY}", ...).
KEY = "{key:catalog_key}"
GROUP = "{group:catalog_key}"  # a messaging service's key
LOCALE = "{locale:locale}"
REFERENCE = "{reference:receipt_reference}"
REVISION = "{revision:revision}"
SIZE = "{size:revision}"  # a ledger checkpoint's tree size
