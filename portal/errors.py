"""The one base for domain errors: each carries a stable code that views translate into a
message (portal.messages) and services never put into words themselves."""

from __future__ import annotations


class DomainError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code
