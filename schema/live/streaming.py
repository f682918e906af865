"""What GraphQL needs to run over a WebSocket: a context per operation, and typed errors in every result.

strawberry makes one context per WebSocket and hands it to every operation of the connection, which may run
concurrently and for hours. Our Context holds one read transaction, DataLoader caches and the request's
clock, all meant to last one operation; so the socket's context only carries the caller, and each operation
gets a fresh Context of its own, closed (its transaction released) when the operation ends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from strawberry.extensions import SchemaExtension
from strawberry.types import StreamExecutionResult

from schema.context import Context
from schema.errors import typed_error


class SocketContext(Context):
    """The context of one WebSocket connection: who is calling, and what they sent in `connection_init`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Set by strawberry from the `connection_init` payload (it looks for this attribute).
        self.connection_params: dict[str, Any] | None = None

    def for_operation(self) -> Context:
        return Context(request=self.request, principal=self.principal, db=self.db, settings=self.settings)


class ContextPerOperation(SchemaExtension):
    """Swaps a socket's shared context for a fresh one per operation; TypedErrors closes it at the end."""

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        if isinstance(context, SocketContext):
            self.execution_context.context = context.for_operation()
        yield


class TypedStreamErrors(SchemaExtension):
    """Types the errors of each streamed result (subscriptions) before it is sent, as TypedErrors does for
    a single result when the operation ends."""

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        errors = getattr(result, "errors", None)
        if errors:
            result.errors = [typed_error(error) for error in errors]
        yield
