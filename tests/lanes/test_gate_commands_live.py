"""An agent watching the exception queue live (exceptionQueueChanged over a real WebSocket) sees the gate's answer to
their remote open: the exception again, `updated` by `gate`, with its gate command acknowledged."""

from __future__ import annotations

import redis.asyncio as aioredis

from tests.api.conftest import Callers
from tests.lanes.conftest import ago, global_id
from tests.live.conftest import (  # noqa: F401  (pytest finds fixtures by name)
    LiveServer,
    graphql_socket,
    live_callers,
    live_http,
    live_server,
)
from tests.queue.conftest import (  # noqa: F401
    CLAIM,
    GATE_COMMAND_FIELDS,
    OPEN_GATE,
    Desk,
    _publishes_from_this_loop,
    agent,
    desk,
    raise_disagreement,
    subject,
)
from tests.queue.test_live import next_change, probe, wait_until_live

SUBSCRIPTION = f"""
subscription($facilityIds: [ID!]) {{
  exceptionQueueChanged(facilityIds: $facilityIds) {{
    action actor exception {{ id state detail gateCommand {{ {GATE_COMMAND_FIELDS} }} }}
  }}
}}
"""


async def test_the_gates_answer_reaches_the_agents_live_queue(
    desk: Desk,  # noqa: F811
    live_server: LiveServer,  # noqa: F811
    live_callers: Callers,  # noqa: F811
    redis: aioredis.Redis,
) -> None:
    lot = desk.lot
    answer = await raise_disagreement(lot, lot.exit_lane, ago(1))
    exception_id = global_id("LaneException", answer["exception_id"])
    await desk.alice.data(CLAIM, {"id": exception_id})
    watcher = agent(live_callers, lot.tenant_id, "dave")
    async with graphql_socket(live_server, token=watcher.token) as socket:
        operation = await socket.subscribe({"facilityIds": [lot.lot_id]}, query=SUBSCRIPTION)
        await wait_until_live(socket, operation, redis, probe(lot.tenant_id, lot.facility_uuid))

        opened = (await desk.alice.data(OPEN_GATE, {"id": exception_id, "reason": "intercom"}))["openGateRemotely"]
        command_id = opened["resolution"]["gate_command"]["id"]
        resolved = await next_change(socket, operation)
        assert (resolved["action"], resolved["actor"]) == ("RESOLVED", subject("alice", lot))
        assert (resolved["exception"]["gateCommand"]["id"], resolved["exception"]["gateCommand"]["status"]) == (
            command_id,
            "PENDING",
        )

        response = await lot.gate.post(
            lot.exit_lane, {"outcome": "failed", "detail": "jammed"}, f"commands/{command_id}/ack"
        )
        assert response.status_code == 200, response.text
        # The failed open raises a gate fault, and the resolved exception shows the gate's answer; in either order.
        changes = [await next_change(socket, operation), await next_change(socket, operation)]
        by_action = {change["action"]: change for change in changes}
        assert set(by_action) == {"RAISED", "UPDATED"}
        updated = by_action["UPDATED"]
        assert (updated["actor"], updated["exception"]["id"], updated["exception"]["state"]) == (
            "gate",
            exception_id,
            "RESOLVED",
        )
        shown = updated["exception"]["gateCommand"]
        assert (shown["status"], shown["outcome"], shown["outcomeDetail"]) == ("FAILED", "FAILED", "jammed")
        fault = by_action["RAISED"]["exception"]
        assert fault["id"] == shown["faultException"] and fault["detail"]["fault"] == "remote_open_failed"
        assert fault["gateCommand"] is None
