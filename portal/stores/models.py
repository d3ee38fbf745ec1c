"""Every store's models, for Tortoise: portal.db names this one module, and the registry
says which stores exist, so a new store needs no line in the database layer."""

from __future__ import annotations

from portal.stores.registry import STORES

__models__ = [model for store in STORES.values() for model in store.models]
