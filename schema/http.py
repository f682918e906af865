"""GraphQL over HTTP: authenticate first (401 with a reason for a bad token), then strawberry."""

from __future__ import annotations

import orjson
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.types import ExecutionResult

from hub.auth import AuthError, authenticate
from hub.principal import Principal
from schema.api import schema
from schema.context import Context
from schema.errors import typed_error


class _StrawberryApp(GraphQL[Context, None]):
    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        state = request.app.state
        principal: Principal = request.scope["parkhub.principal"]
        return Context(request=request, principal=principal, db=state.db, settings=state.settings)

    async def process_result(self, request: Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        # Parse errors end the operation before the schema's extensions see a result; type them here.
        if result.errors:
            result.errors = [typed_error(error) for error in result.errors]
        return await super().process_result(request, result)

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)


class GraphQLEndpoint:
    """The `/graphql` ASGI endpoint: resolves the caller from the bearer token before GraphQL runs."""

    def __init__(self, *, production: bool) -> None:
        self.strawberry = _StrawberryApp(schema, graphql_ide=None if production else "graphiql")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            connection = HTTPConnection(scope)
            try:
                scope["parkhub.principal"] = await authenticate(connection, scope["app"].state.keystore)
            except AuthError as error:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 4401, "reason": error.description})
                    return
                await error.response()(scope, receive, send)
                return
        await self.strawberry(scope, receive, send)
