"""Who sees which street sessions and flags: an operator its own, a driver their own, the city every operator's.
Checked through GraphQL and at the database itself as the application role (row-level security)."""

from __future__ import annotations

from sqlalchemy import text

from hub.db import Database, Scope
from tests.api.conftest import Callers
from tests.street.conftest import Clock, build_zone, fresh_plate, row_id

START = "mutation($input: StartStreetSessionInput!) { startStreetSession(input: $input) { session { id } } }"
SESSIONS = "query { streetSessions(first: 100) { edges { node { id } } } }"
MINE = "query { myStreetSessions(first: 100) { edges { node { id } } } }"
NODE = "query($id: ID!) { node(id: $id) { ... on StreetSession { id } } }"
FLAGS = "query { enforcementFlags(first: 10) { edges { node { id } } } }"


def ids(body: dict, field: str) -> set[str]:
    return {edge["node"]["id"] for edge in body[field]["edges"]}


async def test_operators_drivers_and_the_city_each_see_their_own_sessions(
    callers: Callers, clock: Clock, db: Database
) -> None:
    first_zone = await build_zone(await callers.operator())
    second_zone = await build_zone(await callers.operator())
    alice, bob = await callers.driver(), await callers.driver()

    async def start(driver, zone) -> str:  # type: ignore[no-untyped-def]
        variables = {
            "input": {"operator": zone.slug, "spaceCode": zone.code(0), "plate": fresh_plate(), "durationMinutes": 60}
        }
        return (await driver.data(START, variables))["startStreetSession"]["session"]["id"]

    alices, bobs = await start(alice, first_zone), await start(bob, second_zone)

    assert ids(await first_zone.admin.data(SESSIONS), "streetSessions") == {alices}
    assert ids(await second_zone.admin.data(SESSIONS), "streetSessions") == {bobs}
    assert (await first_zone.admin.data(NODE, {"id": bobs}))["node"] is None
    assert {alices, bobs} <= ids(await callers.city().data(SESSIONS), "streetSessions")
    assert ids(await alice.data(MINE), "myStreetSessions") == {alices}
    assert (await alice.data(NODE, {"id": bobs}))["node"] is None
    assert (await bob.data(NODE, {"id": bobs}))["node"] == {"id": bobs}

    # Operators' and the city's lists are not for drivers or anonymous callers.
    assert await alice.error_code(SESSIONS) == "FORBIDDEN"
    assert await alice.error_code(FLAGS) == "FORBIDDEN"
    assert await callers.anonymous().error_code(SESSIONS) == "FORBIDDEN"
    assert await first_zone.admin.error_code(MINE) == "FORBIDDEN"

    # The database itself, as the application role, whatever a query asks for.
    count = text("SELECT count(*) FROM street_sessions WHERE id = ANY(CAST(:ids AS uuid[]))")
    both = {"ids": [row_id(alices), row_id(bobs)]}
    scopes = {
        "first operator": (Scope("operator", tenant_id=first_zone.tenant_id), 1),
        "alice": (Scope("driver", user_id=alice.user_id), 1),
        "city": (Scope("city"), 2),
        "anonymous": (Scope("anonymous"), 0),
        "another operator's connector": (Scope("connector", tenant_id=second_zone.tenant_id), 1),
    }
    for name, (scope, visible) in scopes.items():
        async with db.transaction(scope) as session:
            assert (await session.execute(count, both)).scalar_one() == visible, name
            actions = await session.execute(
                text("SELECT count(*) FROM street_session_actions WHERE session_id = ANY(CAST(:ids AS uuid[]))"), both
            )
            assert actions.scalar_one() == visible, name


async def test_a_driver_cannot_write_a_session_in_another_drivers_name(
    callers: Callers, clock: Clock, db: Database
) -> None:
    zone = await build_zone(await callers.operator())
    alice, bob = await callers.driver(), await callers.driver()
    variables = {
        "input": {"operator": zone.slug, "spaceCode": zone.code(0), "plate": fresh_plate(), "durationMinutes": 60}
    }
    session_id = row_id((await alice.data(START, variables))["startStreetSession"]["session"]["id"])
    async with db.transaction(Scope("driver", user_id=bob.user_id)) as session:
        changed = await session.execute(
            text("UPDATE street_sessions SET paid_fen = 0 WHERE id = :id RETURNING id"), {"id": session_id}
        )
        assert changed.first() is None
    try:
        async with db.transaction(Scope("driver", user_id=bob.user_id)) as session:
            await session.execute(
                text("UPDATE street_sessions SET driver_id = :bob WHERE id = :id"),
                {"bob": bob.user_id, "id": session_id},
            )
            await session.execute(
                text(
                    "INSERT INTO street_session_actions (tenant_id, session_id, driver_id, kind, at) "
                    "VALUES (:t, :id, :alice, 'end', now())"
                ),
                {"t": zone.tenant_id, "id": session_id, "alice": alice.user_id},
            )
    except Exception as exc:
        assert "row-level security" in str(exc)
    else:
        raise AssertionError("a driver wrote an action in another driver's name")


async def test_a_driver_cannot_add_an_action_to_another_drivers_session_even_in_their_own_name(
    callers: Callers, clock: Clock, db: Database
) -> None:
    zone = await build_zone(await callers.operator())
    alice, bob = await callers.driver(), await callers.driver()
    variables = {
        "input": {"operator": zone.slug, "spaceCode": zone.code(0), "plate": fresh_plate(), "durationMinutes": 60}
    }
    session_id = row_id((await alice.data(START, variables))["startStreetSession"]["session"]["id"])
    try:
        async with db.transaction(Scope("driver", user_id=bob.user_id)) as session:
            await session.execute(
                text(
                    "INSERT INTO street_session_actions (tenant_id, session_id, driver_id, kind, at) "
                    "VALUES (:t, :id, :bob, 'end', now())"
                ),
                {"t": zone.tenant_id, "id": session_id, "bob": bob.user_id},
            )
    except Exception as exc:
        assert "row-level security" in str(exc)
    else:
        raise AssertionError("a driver added an action to another driver's session")
