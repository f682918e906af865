"""The gate command channel end to end: an agent opens a barrier remotely through GraphQL, the lane's gate controller
fetches the command (`GET /lanes/{id}/commands`, long-polling) and acknowledges it (`POST .../ack`), and the agent's
queue shows what the barrier did. Through the real endpoints, as the application role."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from connectors import signatures
from hub.db import Database, Scope
from hub.lanes import gates
from tests.api.conftest import Callers
from tests.lanes.conftest import Gate, Lot, MakeLot, ago, global_id, row_id
from tests.live.conftest import (  # noqa: F401  (a running server, for the gate's long poll)
    PROBE_EVERY_SECONDS,
    WAIT_SECONDS,
    LiveServer,
    live_http,
    live_server,
)
from tests.queue.conftest import (  # noqa: F401  (pytest finds fixtures by name)
    CLAIM,
    OPEN_GATE,
    WAIVE,
    Desk,
    _publishes_from_this_loop,
    agent,
    desk,
    gate_command_of,
    queue_of,
    raise_disagreement,
    subject,
)


async def fetch(
    gate: Gate, lane_id: str, wait: float | str | None = None, http: httpx.AsyncClient | None = None
) -> httpx.Response:
    """The gate's `GET /lanes/{id}/commands`, signed over its empty body as the gate would."""
    params = {} if wait is None else {"wait": str(wait)}
    client = http or gate.client
    return await client.get(f"/lanes/{row_id(lane_id)}/commands", params=params, headers=gate.headers(b""))


async def commands(gate: Gate, lane_id: str, wait: float = 0) -> list[dict[str, Any]]:
    response = await fetch(gate, lane_id, wait)
    assert response.status_code == 200, response.text
    return response.json()["commands"]


async def ack(gate: Gate, lane_id: str, command_id: str, outcome: str, detail: Any = None) -> httpx.Response:
    return await gate.post(lane_id, {"outcome": outcome, "detail": detail}, f"commands/{command_id}/ack")


async def held_at_exit(desk: Desk) -> str:  # noqa: F811
    """A passage held at the exit lane (the cameras disagree), claimed by alice: the exception's global id."""
    answer = await raise_disagreement(desk.lot, desk.lot.exit_lane, ago(1))
    exception_id = global_id("LaneException", answer["exception_id"])
    await desk.alice.data(CLAIM, {"id": exception_id})
    return exception_id


async def open_remotely(desk: Desk, reason: str = "driver waiting, intercom") -> tuple[str, dict[str, Any]]:  # noqa: F811
    """Alice opens the exit barrier of a held passage: the exception's id and the resolution's command reference."""
    exception_id = await held_at_exit(desk)
    opened = (await desk.alice.data(OPEN_GATE, {"id": exception_id, "reason": reason}))["openGateRemotely"]
    return exception_id, opened["resolution"]["gate_command"]


async def expire(owner_db: Database, command_id: str) -> None:
    """Two minutes pass for the command (its clock, not the test's)."""
    async with owner_db.engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE gate_commands SET requested_at = requested_at - interval '2 minutes', "
                "expires_at = expires_at - interval '2 minutes' WHERE id = :id"
            ),
            {"id": uuid.UUID(command_id)},
        )


async def until(condition: Callable[[], bool]) -> None:
    """Wait for something that is expected to happen (bounded generously: this measures nothing)."""
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            if condition():
                return
            await asyncio.sleep(PROBE_EVERY_SECONDS)


# ---------------------------------------------------------------------------------------------- the flow


async def test_a_remote_open_reaches_the_gate_already_waiting_and_its_answer_shows_in_the_queue(
    desk: Desk,  # noqa: F811
    live_server: LiveServer,  # noqa: F811
    live_http: httpx.AsyncClient,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The gate waits on the running server; the agent acts through another app instance: only the nudge through
    Redis can wake the waiting fetch before its wait is over (its periodic re-read is turned off here)."""
    lot = desk.lot
    monkeypatch.setattr(gates, "RECHECK_SECONDS", 3600.0)
    broker = live_server.app.state.gate_broker
    exception_id = await held_at_exit(desk)
    await until(lambda: broker.subscribed)  # the server listens to Redis for nudges
    waiting_before = broker.subscriber_count

    waiting = asyncio.create_task(fetch(lot.gate, lot.exit_lane, 25, http=live_http))
    await until(lambda: broker.subscriber_count > waiting_before or waiting.done())
    assert not waiting.done(), waiting.result().text  # the gate's fetch is waiting at the server

    reason = "driver waiting, intercom"
    opened = (await desk.alice.data(OPEN_GATE, {"id": exception_id, "reason": reason}))["openGateRemotely"]
    sent = opened["resolution"]["gate_command"]
    # Answered on the nudge, well before the 25 seconds the gate offered to wait.
    async with asyncio.timeout(WAIT_SECONDS):
        response = await waiting
    assert response.status_code == 200, response.text
    [command] = response.json()["commands"]
    assert command == {
        "id": sent["id"],
        "command": "open",
        "reason": reason,
        "requested_at": command["requested_at"],
        "expires_at": command["expires_at"],
    }
    assert datetime.fromisoformat(command["expires_at"]) - datetime.fromisoformat(command["requested_at"]) == (
        timedelta(seconds=60)
    )
    shown = await gate_command_of(desk.bob, exception_id)
    assert shown is not None
    assert (shown["id"], shown["status"], shown["deliveries"], shown["lane"]) == (
        sent["id"],
        "DELIVERED",
        1,
        lot.exit_lane,
    )
    assert shown["deliveredAt"] is not None and shown["acknowledgedAt"] is None

    answer = await ack(lot.gate, lot.exit_lane, command["id"], "opened", {"barrier": "up"})
    assert answer.status_code == 200, answer.text
    assert answer.json() | {"acknowledged_at": None} == {
        "id": sent["id"],
        "status": "acknowledged",
        "outcome": "opened",
        "acknowledged_at": None,
        "fault_exception_id": None,
        "repeated": False,
    }
    shown = await gate_command_of(desk.bob, exception_id)
    assert shown is not None
    assert (shown["status"], shown["outcome"], shown["outcomeDetail"], shown["faultException"]) == (
        "ACKNOWLEDGED",
        "OPENED",
        {"barrier": "up"},
        None,
    )
    assert datetime.fromisoformat(shown["acknowledgedAt"]) == datetime.fromisoformat(answer.json()["acknowledged_at"])
    # Acknowledged: never delivered again.
    assert await commands(lot.gate, lot.exit_lane) == []


async def test_a_fetch_that_waits_in_vain_answers_an_empty_list(desk: Desk) -> None:  # noqa: F811
    lot = desk.lot
    response = await fetch(lot.gate, lot.entry_lane, 0.5)
    assert (response.status_code, response.json()) == (200, {"commands": []})


async def test_waiving_with_open_gate_sends_a_command_to_the_exceptions_lane_only(desk: Desk) -> None:  # noqa: F811
    lot = desk.lot
    exception_id = await held_at_exit(desk)
    waived = (await desk.alice.data(WAIVE, {"id": exception_id, "reason": "fire brigade", "openGate": True}))[
        "waiveException"
    ]
    command_id = waived["resolution"]["gate_command"]["id"]
    assert await commands(lot.gate, lot.entry_lane) == []
    assert [command["id"] for command in await commands(lot.gate, lot.exit_lane)] == [command_id]


# -------------------------------------------------------------------------------------------------- expiry


async def test_a_command_not_fetched_before_it_expires_is_never_delivered_and_reads_expired(
    desk: Desk,  # noqa: F811
    owner_db: Database,
) -> None:
    lot = desk.lot
    exception_id, sent = await open_remotely(desk)
    await expire(owner_db, sent["id"])

    assert await commands(lot.gate, lot.exit_lane) == []
    shown = await gate_command_of(desk.alice, exception_id)
    assert shown is not None
    assert (shown["status"], shown["deliveredAt"], shown["deliveries"]) == ("EXPIRED", None, 0)


async def test_a_delivered_command_left_unanswered_expires_and_a_late_answer_is_still_recorded(
    desk: Desk,  # noqa: F811
    owner_db: Database,
) -> None:
    lot = desk.lot
    exception_id, sent = await open_remotely(desk)
    assert [command["id"] for command in await commands(lot.gate, lot.exit_lane)] == [sent["id"]]
    await expire(owner_db, sent["id"])
    assert await commands(lot.gate, lot.exit_lane) == []
    shown = await gate_command_of(desk.alice, exception_id)
    assert shown is not None and (shown["status"], shown["deliveries"]) == ("EXPIRED", 1)

    # The barrier did open (the gate's answer was delayed): that is what happened, whenever it is said.
    late = await ack(lot.gate, lot.exit_lane, sent["id"], "opened")
    assert late.status_code == 200 and late.json()["status"] == "acknowledged", late.text
    shown = await gate_command_of(desk.alice, exception_id)
    assert shown is not None and (shown["status"], shown["outcome"]) == ("ACKNOWLEDGED", "OPENED")


# ---------------------------------------------------------------------------------------------- redelivery


async def test_a_delivered_command_is_delivered_again_until_acknowledged(desk: Desk) -> None:  # noqa: F811
    lot = desk.lot
    exception_id, sent = await open_remotely(desk)
    [first] = await commands(lot.gate, lot.exit_lane)
    shown = await gate_command_of(desk.alice, exception_id)
    assert shown is not None
    first_delivered = shown["deliveredAt"]

    # The gate lost the answer and asks again: the same command, by the same id.
    [again] = await commands(lot.gate, lot.exit_lane, wait=5)
    assert again == first and again["id"] == sent["id"]
    shown = await gate_command_of(desk.alice, exception_id)
    assert shown is not None
    assert (shown["status"], shown["deliveries"], shown["deliveredAt"]) == ("DELIVERED", 2, first_delivered)

    assert (await ack(lot.gate, lot.exit_lane, sent["id"], "opened")).status_code == 200
    assert await commands(lot.gate, lot.exit_lane) == []


# ------------------------------------------------------------------------------------------ acknowledging


async def test_the_same_answer_again_changes_nothing_and_another_answer_conflicts(desk: Desk) -> None:  # noqa: F811
    lot = desk.lot
    exception_id, sent = await open_remotely(desk)
    await commands(lot.gate, lot.exit_lane)
    first = await ack(lot.gate, lot.exit_lane, sent["id"], "opened", {"try": 1})
    assert first.status_code == 200 and first.json()["repeated"] is False, first.text

    again = await ack(lot.gate, lot.exit_lane, sent["id"], "opened", {"try": 2})
    assert again.status_code == 200, again.text
    assert again.json() == first.json() | {"repeated": True}

    other = await ack(lot.gate, lot.exit_lane, sent["id"], "failed", {"try": 3})
    assert other.status_code == 409, other.text
    assert other.json()["error"] == "already_acknowledged" and other.json()["recorded_outcome"] == "opened"

    shown = await gate_command_of(desk.alice, exception_id)
    assert shown is not None
    assert (shown["status"], shown["outcome"], shown["outcomeDetail"]) == ("ACKNOWLEDGED", "OPENED", {"try": 1})
    assert [item["kind"] for item in await queue_of(desk.alice)] == []  # no fault raised by the refused answer


async def test_a_failed_open_raises_a_gate_fault_for_the_lane(desk: Desk) -> None:  # noqa: F811
    lot = desk.lot
    exception_id, sent = await open_remotely(desk)
    await commands(lot.gate, lot.exit_lane)
    answer = await ack(lot.gate, lot.exit_lane, sent["id"], "failed", {"error": "motor stall"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["status"], body["outcome"], body["repeated"]) == ("failed", "failed", False)
    fault_id = global_id("LaneException", body["fault_exception_id"])

    [fault] = await queue_of(desk.alice)
    assert (fault["id"], fault["kind"], fault["state"], fault["lane"]["id"], fault["heldReason"]) == (
        fault_id,
        "GATE_FAULT",
        "OPEN",
        lot.exit_lane,
        None,
    )
    assert fault["detail"]["fault"] == "remote_open_failed"
    assert fault["detail"]["detail"] == {"error": "motor stall"}
    assert fault["detail"]["command_id"] == sent["id"]
    assert fault["detail"]["exception_id"] == str(row_id(exception_id))
    assert fault["detail"]["requested_by"] == subject("alice", lot)

    shown = await gate_command_of(desk.alice, exception_id)
    assert shown is not None
    assert (shown["status"], shown["outcome"], shown["faultException"]) == ("FAILED", "FAILED", fault_id)

    # The same failure reported again raises nothing more.
    again = await ack(lot.gate, lot.exit_lane, sent["id"], "failed", {"error": "motor stall"})
    assert again.status_code == 200 and again.json()["fault_exception_id"] == body["fault_exception_id"]
    assert len(await queue_of(desk.alice)) == 1


async def test_a_command_is_acknowledged_only_at_its_own_lane(desk: Desk) -> None:  # noqa: F811
    lot = desk.lot
    _exception_id, sent = await open_remotely(desk)
    wrong_lane = await ack(lot.gate, lot.entry_lane, sent["id"], "opened")
    assert (wrong_lane.status_code, wrong_lane.json()["error"]) == (404, "unknown_command")
    unknown = await ack(lot.gate, lot.exit_lane, str(uuid.uuid4()), "opened")
    assert (unknown.status_code, unknown.json()["error"]) == (404, "unknown_command")
    not_an_id = await ack(lot.gate, lot.exit_lane, "not-a-command", "opened")
    assert (not_an_id.status_code, not_an_id.json()["error"]) == (404, "unknown_command")
    # Nothing was recorded: the exit's gate still gets it.
    assert [command["id"] for command in await commands(lot.gate, lot.exit_lane)] == [sent["id"]]


async def test_malformed_requests_are_refused_naming_the_field(desk: Desk) -> None:  # noqa: F811
    lot = desk.lot
    exception_id, sent = await open_remotely(desk)
    for wait in ("soon", "-1", "26", "nan"):
        response = await fetch(lot.gate, lot.exit_lane, wait)
        assert (response.status_code, response.json()["error"], response.json()["field"]) == (
            400,
            "malformed_payload",
            "wait",
        ), wait
    for payload, field in (
        ({"outcome": "maybe"}, "outcome"),
        ({}, "outcome"),
        ({"outcome": "opened", "detail": "x" * 9000}, "detail"),
        (b"not json", "body"),
    ):
        response = await lot.gate.post(lot.exit_lane, payload, f"commands/{sent['id']}/ack")
        assert (response.status_code, response.json()["field"]) == (400, field), payload
    # None of it delivered or acknowledged anything.
    shown = await gate_command_of(desk.alice, exception_id)
    assert shown is not None and (shown["status"], shown["deliveries"]) == ("PENDING", 0)


# ------------------------------------------------------------------------------------------ who may ask


async def test_a_gate_without_credentials_is_refused(desk: Desk, client: httpx.AsyncClient) -> None:  # noqa: F811
    lot = desk.lot
    _exception_id, sent = await open_remotely(desk)
    lane = row_id(lot.exit_lane)
    anonymous = await client.get(f"/lanes/{lane}/commands")
    assert (anonymous.status_code, anonymous.json()["error"]) == (401, "unauthenticated")
    forged = Gate(client, lot.gate.connector_id, signatures.generate_secret())
    for response in (
        await fetch(forged, lot.exit_lane),
        await forged.post(lot.exit_lane, {"outcome": "opened"}, f"commands/{sent['id']}/ack"),
        await client.post(f"/lanes/{lane}/commands/{sent['id']}/ack", json={"outcome": "failed"}),
    ):
        assert (response.status_code, response.json()["error"]) == (401, "unauthenticated")
    # A gate that signs its GET over anything but the empty body it sends is refused too.
    headers = lot.gate.headers(b"{}")
    mismatched = await client.get(f"/lanes/{lane}/commands", headers=headers)
    assert mismatched.status_code == 401
    assert [command["id"] for command in await commands(lot.gate, lot.exit_lane)] == [sent["id"]]


async def test_a_gate_with_a_shared_secret_fetches_and_acknowledges(make_lot: MakeLot, callers: Callers) -> None:
    lot = await make_lot(auth_mode="secret")
    alice = agent(callers, lot.tenant_id, "alice")
    answer = await raise_disagreement(lot, lot.exit_lane, ago(1))
    exception_id = global_id("LaneException", answer["exception_id"])
    await alice.data(CLAIM, {"id": exception_id})
    opened = (await alice.data(OPEN_GATE, {"id": exception_id, "reason": "ticket jam"}))["openGateRemotely"]
    [command] = await commands(lot.gate, lot.exit_lane)
    assert command["id"] == opened["resolution"]["gate_command"]["id"]
    assert (await ack(lot.gate, lot.exit_lane, command["id"], "opened")).status_code == 200


async def test_another_operators_gate_never_sees_or_answers_the_command(
    desk: Desk,  # noqa: F811
    make_lot: MakeLot,
    db: Database,
) -> None:
    lot = desk.lot
    theirs: Lot = await make_lot()
    _exception_id, sent = await open_remotely(desk)

    # Their gate at their own lanes: nothing; at ours: its credentials are not our operator's.
    assert await commands(theirs.gate, theirs.exit_lane) == []
    assert (await fetch(theirs.gate, lot.exit_lane)).status_code == 401
    wrong = await ack(theirs.gate, theirs.exit_lane, sent["id"], "opened")
    assert (wrong.status_code, wrong.json()["error"]) == (404, "unknown_command")

    # Row-level security, as the application role: only our operator's scopes see the row.
    count = text("SELECT count(*) FROM gate_commands WHERE id = :id")
    for scope, expected in (
        (Scope("connector", tenant_id=lot.tenant_id), 1),
        (Scope("operator", tenant_id=lot.tenant_id), 1),
        (Scope("connector", tenant_id=theirs.tenant_id), 0),
        (Scope("operator", tenant_id=theirs.tenant_id), 0),
        (Scope("city"), 0),
        (Scope("anonymous"), 0),
    ):
        async with db.transaction(scope) as session:
            seen = (await session.execute(count, {"id": uuid.UUID(sent["id"])})).scalar_one()
        assert seen == expected, scope
    # And their scope cannot acknowledge it behind the endpoint's back either.
    async with db.transaction(Scope("connector", tenant_id=theirs.tenant_id)) as session:
        changed = await session.execute(
            text("UPDATE gate_commands SET acknowledged_at = now(), outcome = 'opened' WHERE id = :id"),
            {"id": uuid.UUID(sent["id"])},
        )
        assert changed.rowcount == 0
    assert [command["id"] for command in await commands(lot.gate, lot.exit_lane)] == [sent["id"]]
