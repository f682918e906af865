"""The exception queue as agents' screens show it: one queue item per exception (everything a row of the screen
needs, read in one statement), and the changes of the queue as they travel between processes over Redis pub/sub.

A change is one JSON message on the tenant's channel `tenant:<id>:exceptions` (DESIGN's `tenant:<id>:<topic>`),
carrying the whole item after the change, so a subscriber renders it without reading anything back."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from hub.live.events import plain_uuid

QUEUE_TOPIC = "exceptions"
QUEUE_PATTERN = f"tenant:*:{QUEUE_TOPIC}"
# What happened to an exception: raised (by a lane or the barrier-held sweep), claimed (also taken over), released,
# updated (a corrected plate that did not settle it), resolved.
EVENT_ACTIONS = ("raised", "claimed", "released", "updated", "resolved")


def queue_channel(tenant_id: uuid.UUID) -> str:
    return f"tenant:{tenant_id}:{QUEUE_TOPIC}"


def _uuid(value: Any) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(str(value))


def _plain_ids(instance: Any, names: tuple[str, ...]) -> None:
    # Ids read by asyncpg are its own UUID subclass, which orjson cannot write: keep plain UUIDs.
    for name in names:
        value = getattr(instance, name)
        if value is not None:
            object.__setattr__(instance, name, plain_uuid(value))


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


@dataclass(frozen=True, slots=True)
class QueueSession:
    """The lot session an exception concerns, as far as the agent needs it."""

    id: uuid.UUID
    plate: str | None
    state: str
    entered_at: datetime
    exited_at: datetime | None
    price_fen: int | None
    paid_fen: int
    amount_due_fen: int | None  # what the lane last asked for (null: not known, e.g. not at an exit)

    def __post_init__(self) -> None:
        _plain_ids(self, ("id",))


@dataclass(frozen=True, slots=True)
class QueueItem:
    """One exception with its lane, facility, reads, passage and session summary."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    kind: str
    state: str
    facility_id: uuid.UUID
    facility_name: str
    lane_id: uuid.UUID | None
    lane_name: str | None
    lane_direction: str | None
    decision_id: uuid.UUID | None
    decision_reason: str | None  # why the lane held (the raising decision's reason)
    passed_at: datetime | None  # when the vehicle was at the barrier
    plate: str | None
    reads: list[dict[str, Any]]
    detail: dict[str, Any]
    session: QueueSession | None
    claimed_by: str | None
    claimed_at: datetime | None
    resolved_by: str | None
    resolved_at: datetime | None
    resolution: dict[str, Any] | None
    created_at: datetime

    def __post_init__(self) -> None:
        _plain_ids(self, ("id", "tenant_id", "facility_id", "lane_id", "decision_id"))
        if self.created_at.tzinfo is None:
            raise ValueError("created_at must be timezone-aware")

    @classmethod
    def of_row(cls, row: Mapping[str, Any]) -> QueueItem:
        """From a row of the queue statement (hub.queue.repository.ITEM_SQL) or its JSON form."""
        session = None
        if row["session_id"] is not None and row["session_state"] is not None:
            session = QueueSession(
                id=_uuid(row["session_id"]),  # type: ignore[arg-type]
                plate=row["session_plate"],
                state=row["session_state"],
                entered_at=_time(row["session_entered_at"]),  # type: ignore[arg-type]
                exited_at=_time(row["session_exited_at"]),
                price_fen=row["session_price_fen"],
                paid_fen=row["session_paid_fen"],
                amount_due_fen=row["amount_due_fen"],
            )
        return cls(
            id=_uuid(row["id"]),  # type: ignore[arg-type]
            tenant_id=_uuid(row["tenant_id"]),  # type: ignore[arg-type]
            kind=row["kind"],
            state=row["state"],
            facility_id=_uuid(row["facility_id"]),  # type: ignore[arg-type]
            facility_name=row["facility_name"],
            lane_id=_uuid(row["lane_id"]),
            lane_name=row["lane_name"],
            lane_direction=row["lane_direction"],
            decision_id=_uuid(row["decision_id"]),
            decision_reason=row["decision_reason"],
            passed_at=_time(row["passed_at"]),
            plate=row["plate"],
            reads=list(row["reads"] or []),
            detail=dict(row["detail"] or {}),
            session=session,
            claimed_by=row["claimed_by"],
            claimed_at=_time(row["claimed_at"]),
            resolved_by=row["resolved_by"],
            resolved_at=_time(row["resolved_at"]),
            resolution=None if row["resolution"] is None else dict(row["resolution"]),
            created_at=_time(row["created_at"]),  # type: ignore[arg-type]
        )

    def as_row(self) -> dict[str, Any]:
        """The flat form `of_row` reads (what travels as JSON)."""
        session = self.session
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "kind": self.kind,
            "state": self.state,
            "facility_id": self.facility_id,
            "facility_name": self.facility_name,
            "lane_id": self.lane_id,
            "lane_name": self.lane_name,
            "lane_direction": self.lane_direction,
            "decision_id": self.decision_id,
            "decision_reason": self.decision_reason,
            "passed_at": self.passed_at,
            "plate": self.plate,
            "reads": self.reads,
            "detail": self.detail,
            "session_id": None if session is None else session.id,
            "session_plate": None if session is None else session.plate,
            "session_state": None if session is None else session.state,
            "session_entered_at": None if session is None else session.entered_at,
            "session_exited_at": None if session is None else session.exited_at,
            "session_price_fen": None if session is None else session.price_fen,
            "session_paid_fen": None if session is None else session.paid_fen,
            "amount_due_fen": None if session is None else session.amount_due_fen,
            "claimed_by": self.claimed_by,
            "claimed_at": self.claimed_at,
            "resolved_by": self.resolved_by,
            "resolved_at": self.resolved_at,
            "resolution": self.resolution,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class QueueEvent:
    """A change of the queue, published after the transaction that made it commits. The database stays the truth:
    a subscriber that missed some reads `exceptionQueue` again rather than replaying messages."""

    action: str
    actor: str
    at: datetime
    item: QueueItem

    def __post_init__(self) -> None:
        if self.action not in EVENT_ACTIONS:
            raise ValueError(f"action must be one of {', '.join(EVENT_ACTIONS)}, got {self.action!r}")
        if self.at.tzinfo is None:
            raise ValueError("at must be timezone-aware")

    @property
    def tenant_id(self) -> uuid.UUID:
        return self.item.tenant_id

    def to_json(self) -> bytes:
        return orjson.dumps({"action": self.action, "actor": self.actor, "at": self.at, "item": self.item.as_row()})

    @classmethod
    def from_json(cls, data: bytes | str) -> QueueEvent:
        """The event in a message; ValueError for anything that is not one."""
        try:
            fields: Any = orjson.loads(data)
            return cls(
                action=fields["action"],
                actor=fields["actor"],
                at=datetime.fromisoformat(fields["at"]),
                item=QueueItem.of_row(fields["item"]),
            )
        except (KeyError, TypeError, AttributeError, orjson.JSONDecodeError) as exc:
            raise ValueError(f"not an exception queue event: {exc!r}") from exc
