"""Typed domain errors. Each carries a stable machine-readable `code` that reaches clients as the
GraphQL `extensions.code` (or the `error` field of an HTTP JSON body), and a message a person can read."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code = "BAD_REQUEST"

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details

    def extensions(self) -> dict[str, Any]:
        return {"code": self.code, **self.details}


class NotFound(DomainError):
    code = "NOT_FOUND"


class Forbidden(DomainError):
    code = "FORBIDDEN"


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"


class Conflict(DomainError):
    code = "CONFLICT"


class InvalidInput(DomainError):
    code = "INVALID_INPUT"
