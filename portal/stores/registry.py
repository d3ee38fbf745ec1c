"""The registry of stores of retained data: which stores exist, and through their `Store`
declarations their models and use cases. Data only: a new store is one package under
portal/stores/ (models, services declaring `STORE`, views), one line here, and its pages'
line in portal.stores.views (the registry imports no web code). The catalog accepts
`store = "…"` only for a key listed here; Tortoise finds the models through
portal.stores.models."""

from __future__ import annotations

from portal.stores.base import Store
from portal.stores.reading_history import services as reading_history
from portal.stores.saved_lists import services as saved_lists

STORES: dict[str, Store] = {
    store.key: store
    for store in (
        reading_history.STORE,
        saved_lists.STORE,
    )
}

KEYS = tuple(STORES)
PAGES = {key: store.page for key, store in STORES.items()}
TABLES = [model._meta.db_table for store in STORES.values() for model in store.models]
