"""Parsing the saved-list forms: a list's name, a title to add, which list."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import FormData

from portal.errors import StoreCode
from portal.stores.base import StoreError
from portal.web.requests import field, number_field


@dataclass(frozen=True)
class NewItem:
    list_id: int
    title: str


def parse_list_name(form: FormData) -> str:
    name = field(form, "name")
    if not name:
        raise StoreError(StoreCode.LIST_NAME_MISSING)
    return name


def parse_new_item(form: FormData) -> NewItem:
    title = field(form, "title")
    if not title:
        raise StoreError(StoreCode.TITLE_MISSING)
    # A missing or malformed list id names no list: refused as not found by the use case.
    return NewItem(number_field(form, "list_id") or 0, title)


def parse_list_id(form: FormData) -> int:
    return number_field(form, "list_id") or 0
