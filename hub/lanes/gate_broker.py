"""Waking gates that wait for a command: a nudge over Redis pub/sub once a command is committed, and the
per-process broker that hands each nudge to the fetches waiting at that lane.

A nudge is one small JSON message `{"tenant_id", "lane_id", "command_id"}` on the tenant's channel
`tenant:<id>:gate_commands` (DESIGN's `tenant:<id>:<topic>`). It carries no command: a woken fetch reads the
database, which stays the truth, so a lost nudge delays a command (the fetch re-reads now and then, see
hub.lanes.gates) but never loses or forges one.

The broker is hub.live's (one pattern subscription per process, bounded per-subscriber queues, reconnection with
backoff), owned by lane: a waiting fetch subscribes for its lane only. The app starts one per process
(`app.state.gate_broker`)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import orjson
import redis.asyncio as aioredis

from hub.live import LiveBroker, after_commit
from hub.live.service import publish

logger = logging.getLogger("parkhub.lanes")

GATE_TOPIC = "gate_commands"
GATE_PATTERN = f"tenant:*:{GATE_TOPIC}"
# A waiting fetch needs one nudge to read again; a few queued are plenty.
QUEUE_SIZE = 8
# The after-commit kind under which new commands' nudges are staged (hub.live.after_commit).
GATE_NUDGES = "parkhub.lanes.gate_nudges"


def gate_channel(tenant_id: uuid.UUID) -> str:
    return f"tenant:{tenant_id}:{GATE_TOPIC}"


@dataclass(frozen=True, slots=True)
class GateNudge:
    """A command for the lane was committed: the lane's waiting fetches should read again."""

    tenant_id: uuid.UUID
    lane_id: uuid.UUID
    command_id: uuid.UUID

    def to_json(self) -> bytes:
        return orjson.dumps(
            {"tenant_id": str(self.tenant_id), "lane_id": str(self.lane_id), "command_id": str(self.command_id)}
        )

    @classmethod
    def from_json(cls, data: bytes | str) -> GateNudge:
        """The nudge in a message; ValueError for anything that is not one."""
        try:
            fields = orjson.loads(data)
            return cls(uuid.UUID(fields["tenant_id"]), uuid.UUID(fields["lane_id"]), uuid.UUID(fields["command_id"]))
        except (KeyError, TypeError, AttributeError, orjson.JSONDecodeError) as error:
            raise ValueError(f"not a gate command nudge: {error!r}") from error


async def publish_nudges(redis: aioredis.Redis, nudges: Sequence[GateNudge]) -> None:
    """Publish committed commands' nudges, each on its tenant's channel (never raises; see hub.live.publish)."""
    await publish(redis, [(gate_channel(n.tenant_id), n.to_json()) for n in nudges], "gate command nudge(s)")


after_commit.register(GATE_NUDGES, publish_nudges)


def route_nudge(channel: str, data: bytes | str) -> tuple[uuid.UUID, GateNudge] | None:
    """The nudge's lane (its owner: only that lane's fetches hear it), or None for a message to drop."""
    try:
        nudge = GateNudge.from_json(data)
    except ValueError as error:
        logger.warning("lanes: ignoring a message on %r that is not a gate command nudge: %s", channel, error)
        return None
    if channel != gate_channel(nudge.tenant_id):
        logger.warning("lanes: ignoring a nudge of tenant %s published on %r", nudge.tenant_id, channel)
        return None
    return nudge.lane_id, nudge


class GateCommandBroker(LiveBroker):
    """hub.live's broker on the gate command channels, owned by lane."""

    def __init__(self, redis: aioredis.Redis, *, queue_size: int = QUEUE_SIZE) -> None:
        super().__init__(redis, pattern=GATE_PATTERN, route=route_nudge, queue_size=queue_size)
