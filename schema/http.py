"""GraphQL over HTTP and over WebSocket (`graphql-transport-ws`): authenticate first, then strawberry.

Requests and WebSocket handshakes are authenticated from the Authorization header: a bad token gets 401 with
the reason, or the handshake is refused (4401). Browsers cannot set headers on a WebSocket, so a client may
instead send its token in `connection_init` (`{"authorization": "Bearer <jwt>"}`); a bad one there closes
the socket with 4403 and the reason."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import ConnectionInitMessage
from strawberry.types import ExecutionResult

from hub.auth import MALFORMED, AuthError, KeyStore, authenticate, principal_from_claims
from hub.principal import Principal
from schema.api import schema
from schema.context import Context
from schema.errors import typed_error
from schema.live.streaming import SocketContext

# graphql-transport-ws: 4403 Forbidden rejects a connection_init; the close reason is at most 123 bytes.
CLOSE_FORBIDDEN = 4403
CLOSE_UNAUTHORIZED = 4401
MAX_CLOSE_REASON_BYTES = 123
INIT_TOKEN_KEYS = ("authorization", "Authorization")


async def principal_from_init_payload(payload: dict[str, Any], keystore: KeyStore) -> Principal | None:
    """The caller named by a `connection_init` payload's token; None when it carries none; AuthError when
    the token cannot be accepted."""
    value = next((payload[key] for key in INIT_TOKEN_KEYS if key in payload), None)
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ") if isinstance(value, str) else ("", "", "")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise AuthError(MALFORMED, 'expected connection_init payload {"authorization": "Bearer <token>"}')
    await keystore.refresh_if_stale()
    return principal_from_claims(await keystore.verify_async(token))


def _close_reason(text: str) -> str:
    return text.encode()[:MAX_CLOSE_REASON_BYTES].decode(errors="ignore")


class _TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        payload = message.get("payload")
        context = self.context
        # A repeated init or a malformed payload is strawberry's to refuse (4429, 4400), before any token counts.
        if not self.connection_init_received and isinstance(payload, dict) and isinstance(context, SocketContext):
            try:
                principal = await principal_from_init_payload(payload, context.request.app.state.keystore)
            except AuthError as error:
                await self.websocket.close(CLOSE_FORBIDDEN, _close_reason(f"invalid_token: {error.description}"))
                return
            if principal is not None:
                context.principal = principal
        await super().handle_connection_init(message)


class _StrawberryApp(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = _TransportWSHandler

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> Context:
        state = request.app.state
        principal: Principal = request.scope["parkhub.principal"]
        if isinstance(request, WebSocket):
            return SocketContext(request=request, principal=principal, db=state.db, settings=state.settings)
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
        self.strawberry = _StrawberryApp(
            schema,
            graphql_ide=None if production else "graphiql",
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL,),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            connection = HTTPConnection(scope)
            try:
                scope["parkhub.principal"] = await authenticate(connection, scope["app"].state.keystore)
            except AuthError as error:
                if scope["type"] == "websocket":
                    reason = _close_reason(f"invalid_token: {error.description}")
                    await send({"type": "websocket.close", "code": CLOSE_UNAUTHORIZED, "reason": reason})
                    return
                await error.response()(scope, receive, send)
                return
        await self.strawberry(scope, receive, send)
