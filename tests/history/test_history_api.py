"""History through GraphQL, built from events that went in through the real endpoint and worker.

The site's three spaces exist since an hour before H0 (three hours ago, on the hour), set VACANT by hand.
Sensor A (space 0): vacant at H0, occupied H0+10 min, vacant H0+40 min, comms lost at H0+60 min.
Sensor B (space 1): occupied at H0, vacant H0+30 min, comms lost at H0+60 min.
Space 2 has no sensor and stays as set by hand.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text

from connectors import signatures
from hub.db import Database
from hub.history.rules import ONE_HOUR, floor_to
from tests.ingest.conftest import Site, WebhookConnector

OCCUPANCY_HISTORY = """
query($facility: ID!, $since: DateTime!, $until: DateTime!) {
  occupancyHistory(facilityId: $facility, since: $since, until: $until) {
    at spaces vacant occupied reserved outOfService unknown occupancyPercent
  }
}"""
METRICS = """
query($facilities: [ID!]!, $since: DateTime!, $until: DateTime!) {
  occupancyMetrics(facilityIds: $facilities, since: $since, until: $until) {
    facility { id name }
    hours { hour totalSessions turnover averageDwellMinutes occupancyPercent unknownPercent }
  }
}"""
SPACE_HISTORY = """
query($space: ID!, $since: DateTime!, $until: DateTime!, $first: Int, $after: String) {
  spaceStatusHistory(spaceId: $space, since: $since, until: $until, first: $first, after: $after) {
    edges { node { status startedAt endedAt } }
    pageInfo { hasNextPage endCursor }
  }
}"""
FACILITY_OF_SPACE = "query($id: ID!) { node(id: $id) { ... on Space { facility { id } } } }"


def iso(moment: datetime) -> str:
    return moment.isoformat()


async def post_signed(client: httpx.AsyncClient, connector: WebhookConnector, payload: Any) -> httpx.Response:
    body = orjson.dumps(payload)
    webhook_id, timestamp = f"msg_{uuid.uuid4().hex}", int(time.time())
    headers = {
        "content-type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signatures.sign(connector.secret, webhook_id, timestamp, body),
    }
    return await client.post(f"/connectors/{connector.id}", content=body, headers=headers)


def event(device: str, at: datetime, occupied: bool | None = None, kind: str = "occupancy") -> dict[str, Any]:
    fields: dict[str, Any] = {"id": uuid.uuid4().hex, "type": kind, "device_id": device, "time": iso(at)}
    if occupied is not None:
        fields["occupied"] = occupied
    return fields


class History:
    def __init__(self, site: Site, connector: WebhookConnector, h0: datetime, lot_id: str) -> None:
        self.site, self.connector, self.h0, self.lot_id = site, connector, h0, lot_id


@pytest.fixture
async def history(client, site, add_connector, add_sensor, run_worker, owner_db: Database) -> History:
    h0 = floor_to(datetime.now(UTC), ONE_HOUR) - 3 * ONE_HOUR
    async with owner_db.engine.begin() as conn:  # the site has been there since before H0
        params = {"t": site.tenant_id, "at": h0 - ONE_HOUR}
        await conn.execute(
            text("UPDATE spaces SET created_at = :at, status_confirmed_at = :at WHERE tenant_id = :t"), params
        )
        await conn.execute(text("UPDATE space_status_intervals SET started_at = :at WHERE tenant_id = :t"), params)
    connector = await add_connector(site, "native")
    await add_sensor(site, "HIST-A", 0)
    await add_sensor(site, "HIST-B", 1)
    minutes = lambda n: h0 + timedelta(minutes=n)  # noqa: E731
    batch = [
        event("HIST-A", minutes(0), False),
        event("HIST-B", minutes(0), True),
        event("HIST-A", minutes(10), True),
        event("HIST-B", minutes(30), False),
        event("HIST-A", minutes(40), False),
        event("HIST-A", minutes(60), kind="comms_lost"),
        event("HIST-B", minutes(60), kind="comms_lost"),
    ]
    response = await post_signed(client, connector, {"events": batch})
    assert response.status_code == 202 and response.json()["accepted"] == len(batch), response.text
    await run_worker()
    lot = await site.admin.data(FACILITY_OF_SPACE, {"id": site.spaces[0]["id"]})
    return History(site, connector, h0, lot["node"]["facility"]["id"])


async def test_hourly_metrics_count_sessions_dwell_and_occupancy(history: History, callers) -> None:
    h0 = history.h0
    variables = {"facilities": [history.lot_id], "since": iso(h0), "until": iso(h0 + 2 * ONE_HOUR)}
    for reader in (history.site.admin, callers.city()):
        [lot] = (await reader.data(METRICS, variables))["occupancyMetrics"]
        assert lot["facility"]["id"] == history.lot_id
        first, second = lot["hours"]
        assert first == {
            "hour": iso(h0),
            "totalSessions": 2,  # A at +10 min, B at +0
            "turnover": pytest.approx(0.667),
            "averageDwellMinutes": 30.0,  # both sessions lasted 30 minutes
            "occupancyPercent": pytest.approx(33.33),  # 1 of 3 space-hours occupied
            "unknownPercent": 0.0,
        }
        # Both sensors lost contact at the hour: two of three spaces unknown, so the hour has no figures.
        assert second["hour"] == iso(h0 + ONE_HOUR)
        assert second["totalSessions"] == -1 and second["turnover"] == -1 and second["occupancyPercent"] == -1
        assert second["unknownPercent"] == pytest.approx(66.67)


async def test_five_minute_history_follows_the_sensors(history: History) -> None:
    h0 = history.h0
    variables = {"facility": history.lot_id, "since": iso(h0), "until": iso(h0 + ONE_HOUR + timedelta(minutes=5))}
    samples = (await history.site.admin.data(OCCUPANCY_HISTORY, variables))["occupancyHistory"]
    assert len(samples) == 13
    by_minute = {int((datetime.fromisoformat(s["at"]) - h0).total_seconds() // 60): s for s in samples}
    assert by_minute[10]["occupied"] == 2.0 and by_minute[10]["vacant"] == 1.0
    assert by_minute[10]["occupancyPercent"] == pytest.approx(66.67)
    assert by_minute[30]["occupied"] == 1.0 and by_minute[30]["occupancyPercent"] == pytest.approx(33.33)
    assert by_minute[45]["occupied"] == 0.0 and by_minute[45]["spaces"] == 3.0
    assert by_minute[60]["unknown"] == 2.0 and by_minute[60]["occupancyPercent"] == -1


async def test_a_space_history_lists_its_intervals_page_by_page(history: History) -> None:
    h0 = history.h0
    variables: dict[str, Any] = {
        "space": history.site.spaces[0]["id"],
        "since": iso(h0),
        "until": iso(datetime.now(UTC)),
        "first": 3,
    }
    page = (await history.site.admin.data(SPACE_HISTORY, variables))["spaceStatusHistory"]
    assert page["pageInfo"]["hasNextPage"] is True
    rest = (await history.site.admin.data(SPACE_HISTORY, {**variables, "after": page["pageInfo"]["endCursor"]}))[
        "spaceStatusHistory"
    ]
    intervals = [edge["node"] for edge in page["edges"] + rest["edges"]]
    assert rest["pageInfo"]["hasNextPage"] is False
    # The VACANT set by hand before H0 overlaps the window and lasts until the occupied interval begins.
    assert [(i["status"], i["startedAt"], i["endedAt"]) for i in intervals] == [
        ("VACANT", iso(h0 - ONE_HOUR), iso(h0 + timedelta(minutes=10))),
        ("OCCUPIED", iso(h0 + timedelta(minutes=10)), iso(h0 + timedelta(minutes=40))),
        ("VACANT", iso(h0 + timedelta(minutes=40)), iso(h0 + timedelta(minutes=60))),
        ("UNKNOWN", iso(h0 + timedelta(minutes=60)), None),
    ]


async def test_a_status_set_by_hand_enters_the_history_and_retiring_ends_it(history: History) -> None:
    space = history.site.spaces[2]
    update = "mutation($id: ID!) { updateSpace(id: $id, input: {status: OUT_OF_SERVICE}) { status } }"
    await history.site.admin.data(update, {"id": space["id"]})
    await history.site.admin.data(update, {"id": space["id"]})  # the same status again starts nothing new
    variables = {"space": space["id"], "since": iso(history.h0), "until": iso(datetime.now(UTC) + ONE_HOUR)}
    intervals = [
        edge["node"]
        for edge in (await history.site.admin.data(SPACE_HISTORY, variables))["spaceStatusHistory"]["edges"]
    ]
    assert [i["status"] for i in intervals] == ["VACANT", "OUT_OF_SERVICE"]
    assert intervals[0]["endedAt"] == intervals[1]["startedAt"] and intervals[1]["endedAt"] is None

    retire = "mutation($ids: [ID!]!) { retireSpaces(ids: $ids) { retiredAt } }"
    retired = await history.site.admin.data(retire, {"ids": [space["id"]]})
    retired_at = retired["retireSpaces"][0]["retiredAt"]
    intervals = [
        edge["node"]
        for edge in (await history.site.admin.data(SPACE_HISTORY, variables))["spaceStatusHistory"]["edges"]
    ]
    assert datetime.fromisoformat(intervals[-1]["endedAt"]) == datetime.fromisoformat(retired_at)


async def test_history_is_for_the_operator_and_the_city_only(history: History, callers) -> None:
    h0 = history.h0
    metrics = {"facilities": [history.lot_id], "since": iso(h0), "until": iso(h0 + ONE_HOUR)}
    space = {"space": history.site.spaces[0]["id"], "since": iso(h0), "until": iso(h0 + ONE_HOUR)}
    other_operator = await callers.operator()
    assert await other_operator.error_code(METRICS, metrics) == "NOT_FOUND"
    assert await other_operator.error_code(SPACE_HISTORY, space) == "NOT_FOUND"
    assert await (await callers.driver()).error_code(METRICS, metrics) == "FORBIDDEN"
    assert await callers.anonymous().error_code(SPACE_HISTORY, space) == "FORBIDDEN"
    city_view = (await callers.city().data(SPACE_HISTORY, space))["spaceStatusHistory"]["edges"]
    assert len(city_view) == 3


@pytest.mark.parametrize(
    ("since", "until", "code"),
    [
        (0, 0, "INVALID_WINDOW"),
        (0, 24 * 40, "WINDOW_TOO_LONG"),
        (24 * 2, 24 * 3, "INVALID_WINDOW"),  # entirely in the future
    ],
)
async def test_bad_windows_get_typed_errors(history: History, since: int, until: int, code: str) -> None:
    now = datetime.now(UTC)
    variables = {
        "facilities": [history.lot_id],
        "since": iso(now + timedelta(hours=since)),
        "until": iso(now + timedelta(hours=until)),
    }
    assert await history.site.admin.error_code(METRICS, variables) == code


async def test_the_city_view_counts_offline_devices_per_operator(history: History, callers, client, run_worker) -> None:
    query = "{ occupancyByOperator { operator { id } devices { total offline } } }"
    # Both sensors lost contact at H0+60 min; B speaks again now.
    assert [row["devices"] for row in (await history.site.admin.data(query))["occupancyByOperator"]] == [
        {"total": 2, "offline": 2}
    ]
    back = await post_signed(client, history.connector, event("HIST-B", datetime.now(UTC), True))
    assert back.status_code == 202
    await run_worker()
    own = (await history.site.admin.data(query))["occupancyByOperator"]
    assert [row["devices"] for row in own] == [{"total": 2, "offline": 1}]
    operator_id = own[0]["operator"]["id"]
    city = {row["operator"]["id"]: row["devices"] for row in (await callers.city().data(query))["occupancyByOperator"]}
    assert city[operator_id] == {"total": 2, "offline": 1} and len(city) >= 2


async def test_retiring_the_facility_ends_its_spaces_history(history: History, owner_db: Database) -> None:
    retire = "mutation($id: ID!) { retireFacility(id: $id) { retiredAt } }"
    await history.site.admin.data(retire, {"id": history.lot_id})
    async with owner_db.engine.connect() as conn:
        still_open = await conn.execute(
            text("SELECT count(*) FROM space_status_intervals WHERE tenant_id = :t AND ended_at IS NULL"),
            {"t": history.site.tenant_id},
        )
        assert still_open.scalar_one() == 0
