"""Errors as clients see them: typed domain errors pass with `extensions.code`; anything unexpected is
masked (logged in full, shown as INTERNAL_SERVER_ERROR) so internals never leak."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from hub.errors import DomainError

logger = logging.getLogger("parkhub.graphql")


def typed_error(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if isinstance(original, DomainError):
        return GraphQLError(
            original.message, nodes=error.nodes, path=error.path, original_error=None, extensions=original.extensions()
        )
    if original is None and (error.extensions or {}).get("code"):
        return error
    if original is None:
        # Syntax and validation errors (and the security limits) are about the request itself.
        code = (error.extensions or {}).get("code") or (
            "GRAPHQL_PARSE_FAILED" if error.message.startswith("Syntax Error") else "GRAPHQL_VALIDATION_FAILED"
        )
        return GraphQLError(
            error.message, nodes=error.nodes, path=error.path, extensions={**(error.extensions or {}), "code": code}
        )
    if isinstance(original, GraphQLError):
        return typed_error(original)
    return GraphQLError(
        "Internal server error.", nodes=error.nodes, path=error.path, extensions={"code": "INTERNAL_SERVER_ERROR"}
    )


class TypedErrors(SchemaExtension):
    async def on_operation(self) -> AsyncIterator[None]:
        try:
            yield
        finally:
            context = self.execution_context.context
            if hasattr(context, "close"):
                await context.close()
        result = self.execution_context.result
        if result is not None and getattr(result, "errors", None):
            result.errors = [typed_error(error) for error in result.errors]
