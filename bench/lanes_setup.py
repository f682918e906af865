"""The lanes benchmark's fixtures: a bench operator with lots, 100 exit lanes (and entry lanes), a tariff with
bands and caps, vehicle lists and auto-pay drivers, a history of past stays, and the open lot sessions each run's
exits close or hold.

Everything durable (operator, lots, lanes, tariff versions, passes, whitelist entries, drivers with auto-pay) is
made through the services the API uses, on first use, and kept between runs; only what is missing is added. The
history (closed stays and their decisions) is written once in one statement, so the tables and the planner's
statistics look like a lot in service. What a run consumes (sessions, decisions, exceptions, pending charges) is
deleted and written afresh before each run: a pass holder's exit closes its session, so every run needs its own
open sessions, entered hours or days before it. They are written in one statement as the owner, as the entry
lanes would have left them.

The exits a run sends are planned here (`plan_exits`, pure): each lane's vehicles in an order of their own,
with the kinds in MIX's shares and every plate exiting once, so a run never meets a session an earlier exit
of it closed."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from bench.pricing import ZONE, bench_tariff
from hub.access import service as access_service
from hub.config import Settings
from hub.db import PLATFORM, Database, make_engine
from hub.drivers import service as drivers_service
from hub.errors import NotFound
from hub.lanes import operations as lane_operations
from hub.lanes import rules as lane_rules
from hub.pricing import service as pricing_service
from hub.pricing.rules import price
from hub.pricing.tariff import Tariff
from hub.principal import Principal
from hub.seed import repository as seed_repository
from hub.supply import service as supply_service
from tenants import service as tenants_service

BENCH_SLUG = "bench-lanes"
BENCH_NAME = "Bench Lanes Parking"
LOTS = 10
EXITS_PER_LOT = 10
ENTRIES_PER_LOT = 2
LANES = LOTS * EXITS_PER_LOT
LOT_CAPACITY = 5_000
CONNECTOR_NAME_PREFIX = "bench lanes gates"
# Where the first tariff version starts: before any session a run writes (stays last at most three days).
TARIFF_FROM = datetime(2026, 1, 1, tzinfo=UTC)
PASS_TERM_DAYS = 365
DRIVER_EMAIL = "lanes-bench-{serial}@example.com"
# The serial characters of a Chinese plate: digits and letters but I and O.
SERIAL_CHARACTERS = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
SERIAL_LENGTH = 5


@dataclass(frozen=True)
class ExitKind:
    """One kind of vehicle at an exit lane: its share of the exits (out of MIX_SLOTS), the reason the lane is
    expected to answer, and the issuing letter of its plates (so no two kinds ever share a plate)."""

    name: str
    share: int
    reason: str
    standing: str  # the lot session's standing at entry
    letter: str
    closes: bool  # whether the exit closes the session (it is consumed)


# A weekday afternoon at a city-centre lot: most visitors reach the barrier without having paid, some paid in the
# app or at a machine a moment ago, a good share hold monthly passes, a few are on the whitelist, and some drivers
# have bound their plate to auto-pay ("leave first, pay later").
VISITOR = ExitKind("visitor", 13, lane_rules.PAYMENT_DUE, "visitor", "B", closes=False)
PAID = ExitKind("paid", 1, lane_rules.PAID, "visitor", "G", closes=True)
PASS_HOLDER = ExitKind("pass", 3, lane_rules.PASS, "pass_holder", "C", closes=True)
WHITELISTED = ExitKind("whitelisted", 1, lane_rules.WHITELISTED, "whitelisted", "E", closes=True)
AUTO_PAY = ExitKind("auto_pay", 2, lane_rules.AUTO_PAY, "visitor", "F", closes=True)
MIX: tuple[ExitKind, ...] = (VISITOR, PAID, PASS_HOLDER, WHITELISTED, AUTO_PAY)
MIX_SLOTS = sum(kind.share for kind in MIX)
# The warm-up's vehicles: visitors who are held, so they can come back to the barrier as often as needed.
WARMUP = ExitKind("warmup", 1, lane_rules.PAYMENT_DUE, "visitor", "H", closes=False)


def plate_of(kind: ExitKind, number: int) -> str:
    """The `number`th plate of a kind, e.g. 粤B0000A: province, the kind's letter, five serial characters."""
    serial = []
    for _ in range(SERIAL_LENGTH):
        number, digit = divmod(number, len(SERIAL_CHARACTERS))
        serial.append(SERIAL_CHARACTERS[digit])
    if number:
        raise ValueError("plate number out of range")
    return f"粤{kind.letter}{''.join(reversed(serial))}"


@dataclass(frozen=True)
class PlannedExit:
    """One vehicle reaching an exit lane's barrier: which lane (0-based), its place in the lane's queue, its
    kind and plate, and how long before the run it entered."""

    lane: int
    sequence: int
    kind: ExitKind
    plate: str
    stay: timedelta
    vehicle_class: str


def _stay(rng: random.Random) -> timedelta:
    """Most stays last a few hours; some the working day, a few overnight and a few up to three days."""
    draw = rng.random()
    if draw < 0.55:
        minutes = rng.uniform(20, 180)
    elif draw < 0.85:
        minutes = rng.uniform(180, 720)
    elif draw < 0.95:
        minutes = rng.uniform(720, 1440)
    else:
        minutes = rng.uniform(1440, 3 * 1440)
    return timedelta(minutes=round(minutes, 2))


def _vehicle_class(rng: random.Random, kind: ExitKind) -> str:
    if kind.standing != "visitor":
        return "standard"  # passes and whitelist entries here are for ordinary cars
    draw = rng.random()
    return "new_energy" if draw < 0.06 else "large" if draw < 0.10 else "standard"


def plan_exits(
    label: str, lanes: int, per_lane: int, *, mix: Sequence[ExitKind] = MIX, seed: int = 1
) -> list[list[PlannedExit]]:
    """`per_lane` exits at each of `lanes` lanes, the kinds in `mix`'s shares (in every window of MIX_SLOTS
    exits of a lane), each lane in an order of its own; every exit is a vehicle of its own (plates numbered
    from 0 per kind). Deterministic for a `label` and `seed`."""
    rng = random.Random(f"{seed}:{label}")
    slots = [kind for kind in mix for _ in range(kind.share)]
    numbers: Counter[str] = Counter()
    plans: list[list[PlannedExit]] = []
    for lane in range(lanes):
        order = slots[:]
        rng.shuffle(order)
        exits = []
        for sequence in range(per_lane):
            kind = order[sequence % len(order)]
            plate = plate_of(kind, numbers[kind.name])
            numbers[kind.name] += 1
            exits.append(PlannedExit(lane, sequence, kind, plate, _stay(rng), _vehicle_class(rng, kind)))
        plans.append(exits)
    return plans


def kind_counts(plans: Sequence[Sequence[PlannedExit]]) -> Counter[str]:
    return Counter(planned.kind.name for lane in plans for planned in lane)


# --- the operator -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchLane:
    id: uuid.UUID
    facility_id: uuid.UUID
    name: str


@dataclass(frozen=True)
class LanesOperator:
    tenant_id: uuid.UUID
    exit_lanes: tuple[BenchLane, ...]  # LANES of them, lot by lot
    entry_lane_of: Mapping[uuid.UUID, uuid.UUID]  # facility -> one of its entry lanes
    tariff_version_of: Mapping[uuid.UUID, uuid.UUID]  # facility -> its tariff version in effect
    connector_id: uuid.UUID
    secret: str  # the connector's shared secret: gates send `Authorization: Bearer <secret>`


def owner_database(settings: Settings) -> Database:
    return Database(make_engine(settings.database_url, settings, pool_size=2))


def _admin(tenant_id: uuid.UUID) -> Principal:
    return Principal("operator", subject="bench:lanes", tenant_id=tenant_id, role="operator_admin")


async def _tenant_id(session: AsyncSession) -> uuid.UUID:
    try:
        return (await tenants_service.get_tenant_by_slug(session, BENCH_SLUG)).id
    except NotFound:
        return (await tenants_service.create_tenant(session, slug=BENCH_SLUG, name=BENCH_NAME)).id


def _square(lon: float, lat: float, size: float = 0.002) -> dict[str, Any]:
    ring = [[lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]]
    return {"type": "Polygon", "coordinates": [ring]}


async def _lots(session: AsyncSession, tenant_id: uuid.UUID) -> list[uuid.UUID]:
    """The bench lots LB01..LB10 (created when missing), in code order."""
    found = await session.execute(
        text("SELECT code, id FROM facilities WHERE tenant_id = :t AND retired_at IS NULL AND code LIKE 'LB%'"),
        {"t": tenant_id},
    )
    by_code = {row.code: row.id for row in found}
    wanted = [f"LB{number:02d}" for number in range(1, LOTS + 1)]
    missing = [
        {
            "name": f"Bench lot {code}",
            "code": code,
            "capacity": LOT_CAPACITY,
            "geometry": _square(114.02 + 0.01 * int(code[2:]), 22.60),
        }
        for code in wanted
        if code not in by_code
    ]
    if missing:
        for row in await supply_service.create_facilities(session, _admin(tenant_id), "lot", missing):
            by_code[row["code"]] = row["id"]
    return [by_code[code] for code in wanted]


def _lane_names() -> list[tuple[str, str]]:
    exits = [(f"Exit {number:02d}", "exit") for number in range(1, EXITS_PER_LOT + 1)]
    return exits + [(f"Entry {number}", "entry") for number in range(1, ENTRIES_PER_LOT + 1)]


async def _lanes(
    session: AsyncSession, tenant_id: uuid.UUID, lots: list[uuid.UUID]
) -> tuple[list[BenchLane], dict[uuid.UUID, uuid.UUID]]:
    found = await session.execute(
        text("SELECT id, facility_id, name FROM lanes WHERE tenant_id = :t AND retired_at IS NULL"), {"t": tenant_id}
    )
    by_key = {(row.facility_id, row.name): row.id for row in found}
    missing = [
        {"facility_id": lot, "name": name, "direction": direction}
        for lot in lots
        for name, direction in _lane_names()
        if (lot, name) not in by_key
    ]
    if missing:
        for row in await supply_service.create_lanes(session, _admin(tenant_id), missing):
            by_key[(row["facility_id"], row["name"])] = row["id"]
    exits = [
        BenchLane(by_key[(lot, name)], lot, name)
        for lot in lots
        for name, direction in _lane_names()
        if direction == "exit"
    ]
    entries = {lot: by_key[(lot, "Entry 1")] for lot in lots}
    return exits, entries


async def _tariff_version(session: AsyncSession, tenant_id: uuid.UUID, lot: uuid.UUID) -> uuid.UUID:
    """The lot's tariff version, a new one when the latest is not the bench tariff (bench/pricing.py)."""
    wanted = json.loads(json.dumps(bench_tariff().to_dict()))
    latest = (
        await session.execute(
            text(
                "SELECT id, definition FROM tariffs WHERE tenant_id = :t AND facility_id = :f "
                "ORDER BY version DESC LIMIT 1"
            ),
            {"t": tenant_id, "f": lot},
        )
    ).first()
    if latest is not None and latest.definition == wanted:
        return latest.id
    valid_from = TARIFF_FROM if latest is None else None
    row = await pricing_service.set_tariff(session, _admin(tenant_id), lot, wanted, valid_from)
    return row["id"]


async def prepare_operator(settings: Settings) -> LanesOperator:
    """The bench operator with its lots, lanes and tariffs (made on first use), and a fresh native connector
    with a shared secret (the previous runs' are deleted)."""
    owner = owner_database(settings)
    try:
        async with owner.transaction(PLATFORM) as session:
            tenant_id = await _tenant_id(session)
            lots = await _lots(session, tenant_id)
            exits, entries = await _lanes(session, tenant_id, lots)
            versions = {lot: await _tariff_version(session, tenant_id, lot) for lot in lots}
            await session.execute(
                text("DELETE FROM connectors WHERE tenant_id = :t AND name LIKE :n"),
                {"t": tenant_id, "n": CONNECTOR_NAME_PREFIX + "%"},
            )
            connector, secret = await tenants_service.create_connector(
                session,
                tenant_id=tenant_id,
                name=f"{CONNECTOR_NAME_PREFIX} {datetime.now(UTC):%Y%m%d%H%M%S}",
                format="native",
                auth_mode="secret",
            )
    finally:
        await owner.dispose()
    return LanesOperator(tenant_id, tuple(exits), entries, versions, connector.id, secret)


# --- vehicle lists and auto-pay -----------------------------------------------------------------------------


def _csv(header: str, rows: list[str]) -> str:
    return "\n".join([header, *rows]) + "\n"


async def _missing_plates(session: AsyncSession, sql: str, params: dict[str, Any], plates: list[str]) -> list[str]:
    found = await session.execute(text(sql), {**params, "plates": plates})
    present = {row.plate for row in found}
    return [plate for plate in plates if plate not in present]


async def _ensure_passes(session: AsyncSession, operator: LanesOperator, plates: list[str], today: Any) -> int:
    """Year passes, every day, all day, at every bench lot, for `plates`; a plate whose pass would not cover the
    stays of a run (it ends within days) gets a new one, its old one revoked."""
    missing = await _missing_plates(
        session,
        "SELECT plate FROM vehicle_passes WHERE tenant_id = :t AND plate = ANY(:plates) AND revoked_at IS NULL "
        "AND valid_from <= :start AND valid_until >= :end",
        {"t": operator.tenant_id, "start": today - timedelta(days=5), "end": today + timedelta(days=2)},
        plates,
    )
    if not missing:
        return 0
    await session.execute(
        text(
            "UPDATE vehicle_passes SET revoked_at = now() WHERE tenant_id = :t AND plate = ANY(:plates) "
            "AND revoked_at IS NULL"
        ),
        {"t": operator.tenant_id, "plates": missing},
    )
    first, last = today - timedelta(days=30), today + timedelta(days=PASS_TERM_DAYS)
    rows = [f"{plate},{first},{last},Bench holder {number}" for number, plate in enumerate(missing)]
    report = await access_service.import_list(
        session, _admin(operator.tenant_id), "pass", _csv("plate,valid_from,valid_until,holder_name", rows)
    )
    if report.error_count:
        raise RuntimeError(f"bench passes refused: {report.errors[:3]}")
    return report.imported


async def _ensure_whitelist(session: AsyncSession, operator: LanesOperator, plates: list[str]) -> int:
    missing = await _missing_plates(
        session,
        "SELECT plate FROM vehicle_whitelist WHERE tenant_id = :t AND plate = ANY(:plates) AND revoked_at IS NULL "
        "AND facility_ids IS NULL AND valid_from IS NULL AND valid_until IS NULL",
        {"t": operator.tenant_id},
        plates,
    )
    if not missing:
        return 0
    categories = ("official", "vip", "reserved", "team")
    rows = [f"{plate},{categories[number % 4]},bench" for number, plate in enumerate(missing)]
    report = await access_service.import_list(
        session, _admin(operator.tenant_id), "whitelist", _csv("plate,category,reason", rows)
    )
    if report.error_count:
        raise RuntimeError(f"bench whitelist refused: {report.errors[:3]}")
    return report.imported


async def _ensure_auto_pay(session: AsyncSession, plates: list[str]) -> int:
    """A driver per plate, the plate their vehicle, and their auto-pay authorization for it."""
    missing = await _missing_plates(
        session,
        "SELECT plate FROM auto_pay_authorizations WHERE plate = ANY(:plates) AND revoked_at IS NULL",
        {},
        plates,
    )
    for plate in missing:
        user = await tenants_service.ensure_user(session, DRIVER_EMAIL.format(serial=plate[1:].lower()))
        driver = Principal("driver", subject=f"bench:{user.id}", user_id=user.id)
        vehicles = await drivers_service.my_vehicles(session, driver)
        if all(vehicle["plate"] != plate for vehicle in vehicles):
            await drivers_service.add_vehicle(session, driver, plate)
        await lane_operations.set_auto_pay(session, driver, plate, True)
    return len(missing)


async def ensure_lists(settings: Settings, operator: LanesOperator, counts: Mapping[str, int]) -> dict[str, int]:
    """The passes, whitelist entries and auto-pay authorizations a run's plan needs (plates numbered from 0
    per kind, as `plan_exits` numbers them); returns how many of each were added."""
    today = datetime.now(ZONE).date()
    owner = owner_database(settings)
    try:
        async with owner.transaction(PLATFORM) as session:
            return {
                PASS_HOLDER.name: await _ensure_passes(
                    session, operator, [plate_of(PASS_HOLDER, n) for n in range(counts.get(PASS_HOLDER.name, 0))], today
                ),
                WHITELISTED.name: await _ensure_whitelist(
                    session, operator, [plate_of(WHITELISTED, n) for n in range(counts.get(WHITELISTED.name, 0))]
                ),
                AUTO_PAY.name: await _ensure_auto_pay(
                    session, [plate_of(AUTO_PAY, n) for n in range(counts.get(AUTO_PAY.name, 0))]
                ),
            }
    finally:
        await owner.dispose()


# --- sessions -----------------------------------------------------------------------------------------------

# The rows a run consumes, children first. exception_actions go with their exceptions (ON DELETE CASCADE).
_RESET_TABLES = ("lane_decisions", "pending_charges", "exceptions", "lot_sessions")
# The operator's past: closed stays and their entry and exit decisions over the last weeks, kept between runs and
# never deleted, so the tables, their indexes and the planner's statistics look like a lot that has been open for
# a while. (With empty tables the planner's generic plans, cached per connection, scan lane_decisions instead of
# using its passage index, and get slower as a run fills the table.) Their plates are of their own letter.
HISTORY_SESSIONS = 100_000
HISTORY_LETTER = "K"
HISTORY_DAYS = 30
HISTORY_PASSAGE_PREFIX = "hist-"

HISTORY_SQL = f"""
WITH stays AS (
    INSERT INTO lot_sessions (tenant_id, id, facility_id, plate, state, standing, vehicle_class, entry_lane_id,
                              entered_at, tariff_version_id, exit_lane_id, exited_at, price_fen, paid_fen, paid_at,
                              close_reason)
    SELECT $1, gen_random_uuid(), ($2::uuid[])[1 + g % {LOTS}],
           '粤{HISTORY_LETTER}' || lpad((g % 20000)::text, 5, '0'), 'closed', 'visitor', 'standard',
           ($3::uuid[])[1 + g % {LOTS}], now() - interval '3 days' - (interval '1 day' * {HISTORY_DAYS}) * g / $5,
           ($4::uuid[])[1 + g % {LOTS}],
           ($6::uuid[])[1 + (g % {LOTS}) * {EXITS_PER_LOT} + (g / {LOTS}) % {EXITS_PER_LOT}],
           now() - interval '3 days' - (interval '1 day' * {HISTORY_DAYS}) * g / $5
               + interval '1 minute' * (20 + (g * 7919) % 600),
           500, 500, now() - interval '3 days' - (interval '1 day' * {HISTORY_DAYS}) * g / $5
               + interval '1 minute' * (15 + (g * 7919) % 600),
           'paid'
    FROM generate_series(1, $5) AS g
    RETURNING id, facility_id, plate, entry_lane_id, exit_lane_id, entered_at, exited_at
)
INSERT INTO lane_decisions (tenant_id, id, lane_id, facility_id, direction, passage_id, source, plate, reads,
                            decision, reason, session_id, amount_due_fen, passed_at, decided_at)
SELECT $1, gen_random_uuid(), CASE WHEN d.direction = 'entry' THEN s.entry_lane_id ELSE s.exit_lane_id END,
       s.facility_id, d.direction, '{HISTORY_PASSAGE_PREFIX}' || s.id || '-' || d.direction, 'camera', s.plate,
       jsonb_build_array(jsonb_build_object('camera', 'cam-a', 'plate', s.plate, 'raw_plate', s.plate,
                                            'plate_valid', true, 'confidence', 0.95, 'image', 'snap/history.jpg')),
       'open', CASE WHEN d.direction = 'entry' THEN 'entered' ELSE 'paid' END, s.id,
       CASE WHEN d.direction = 'exit' THEN 0 END,
       CASE WHEN d.direction = 'entry' THEN s.entered_at ELSE s.exited_at END,
       CASE WHEN d.direction = 'entry' THEN s.entered_at ELSE s.exited_at END
FROM stays s CROSS JOIN (VALUES ('entry'), ('exit')) AS d(direction)
"""

# What the runs wrote: everything of the operator but its history.
_RUN_ROWS = {
    "lane_decisions": f"passage_id NOT LIKE '{HISTORY_PASSAGE_PREFIX}%'",
    "pending_charges": "true",
    "exceptions": "true",
    "lot_sessions": f"(plate IS NULL OR plate NOT LIKE '粤{HISTORY_LETTER}%')",
}


async def ensure_history(settings: Settings, operator: LanesOperator) -> int:
    """The operator's past stays and decisions (HISTORY_SESSIONS of them), written once; returns how many
    stays were written now (0 when they were there)."""
    conn = await seed_repository.connect(settings.database_url)
    try:
        async with conn.transaction():
            await seed_repository.set_platform_scope(conn)
            present = await conn.fetchval(
                "SELECT count(*) FROM lot_sessions WHERE tenant_id = $1 AND state = 'closed' AND plate LIKE $2",
                operator.tenant_id,
                f"粤{HISTORY_LETTER}%",
            )
            if present >= HISTORY_SESSIONS:
                return 0
            await conn.execute(
                "DELETE FROM lane_decisions WHERE tenant_id = $1 AND passage_id LIKE $2",
                operator.tenant_id,
                HISTORY_PASSAGE_PREFIX + "%",
            )
            await conn.execute(
                "DELETE FROM lot_sessions WHERE tenant_id = $1 AND plate LIKE $2",
                operator.tenant_id,
                f"粤{HISTORY_LETTER}%",
            )
            lots = list(operator.entry_lane_of)
            await conn.execute(
                HISTORY_SQL,
                operator.tenant_id,
                lots,
                [operator.entry_lane_of[lot] for lot in lots],
                [operator.tariff_version_of[lot] for lot in lots],
                HISTORY_SESSIONS,
                [lane.id for lane in operator.exit_lanes],
            )
        for table in _RESET_TABLES:
            await conn.execute(f"VACUUM (ANALYZE) {table}")
    finally:
        await conn.close()
    return HISTORY_SESSIONS


INSERT_SESSIONS_SQL = """
INSERT INTO lot_sessions (tenant_id, id, facility_id, plate, standing, vehicle_class, entry_lane_id, entered_at,
                          tariff_version_id, paid_fen, paid_at)
SELECT $1, s.* FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::uuid[],
                          $8::timestamptz[], $9::uuid[], $10::int[], $11::timestamptz[]) AS s
"""


def session_values(
    operator: LanesOperator, plans: Sequence[Sequence[PlannedExit]], now: datetime, tariff: Tariff, zone: ZoneInfo
) -> list[tuple[Any, ...]]:
    """One open session per planned exit, in the lot of its lane, entered `stay` before `now`. A `paid` vehicle
    paid its whole stay at `now`, so its exit within the tariff's exit grace owes nothing more."""
    values = []
    for lane_plan in plans:
        for planned in lane_plan:
            lot = operator.exit_lanes[planned.lane].facility_id
            entered_at = now - planned.stay
            paid_fen, paid_at = 0, None
            if planned.kind is PAID:
                paid_fen, paid_at = price(tariff, zone, planned.vehicle_class, entered_at, now).total_fen, now
            values.append(
                (
                    uuid.uuid4(),
                    lot,
                    planned.plate,
                    planned.kind.standing,
                    planned.vehicle_class,
                    operator.entry_lane_of[lot],
                    entered_at,
                    operator.tariff_version_of[lot],
                    paid_fen,
                    paid_at,
                )
            )
    return values


IDLE_WAIT_SECONDS = 15.0
# Backends of the bench database doing something (a statement, or a transaction left open between two).
BUSY_BACKENDS_SQL = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
  AND state <> 'idle'
"""


async def _wait_until_idle(conn: asyncpg.Connection) -> None:
    """Until no other backend of the database has been busy for a few polls: when wrk stops, the requests it
    had in flight are still being decided, and their writes must not land between the deletes below."""
    deadline = time.monotonic() + IDLE_WAIT_SECONDS
    quiet = 0
    while quiet < 3 and time.monotonic() < deadline:
        quiet = quiet + 1 if await conn.fetchval(BUSY_BACKENDS_SQL) == 0 else 0
        await asyncio.sleep(0.05)


async def reset_sessions(settings: Settings, operator: LanesOperator) -> None:
    """Delete what earlier runs left: the bench operator's sessions, decisions, exceptions and charges (its
    history stays); then vacuum those tables, rather than have autovacuum do it in the middle of the next run."""
    conn = await seed_repository.connect(settings.database_url)
    try:
        for attempt in range(3):
            await _wait_until_idle(conn)
            try:
                async with conn.transaction():
                    await seed_repository.set_platform_scope(conn)
                    for table in _RESET_TABLES:
                        await conn.execute(
                            f"DELETE FROM {table} WHERE tenant_id = $1 AND {_RUN_ROWS[table]}", operator.tenant_id
                        )
                break
            except asyncpg.ForeignKeyViolationError:  # a late decision got in between after all: again
                if attempt == 2:
                    raise
        for table in _RESET_TABLES:
            await conn.execute(f"VACUUM (ANALYZE) {table}")
    finally:
        await conn.close()


async def open_sessions(settings: Settings, operator: LanesOperator, plans: Sequence[Sequence[PlannedExit]]) -> int:
    """Write the open sessions of `plans` (after `reset_sessions`); returns how many."""
    values = session_values(operator, plans, datetime.now(UTC), bench_tariff(), ZONE)
    columns = list(zip(*values, strict=True)) if values else [[] for _ in range(10)]
    conn = await seed_repository.connect(settings.database_url)
    try:
        async with conn.transaction():
            await seed_repository.set_platform_scope(conn)
            await conn.execute(INSERT_SESSIONS_SQL, operator.tenant_id, *(list(column) for column in columns))
        await conn.execute("ANALYZE lot_sessions")
    finally:
        await conn.close()
    return len(values)


async def database_sessions(settings: Settings) -> int:
    """How many sessions (connections) the bench database has had since its statistics were reset: the
    difference over a run is how many connections the server opened meanwhile."""
    conn = await seed_repository.connect(settings.database_url)
    try:
        return int(await conn.fetchval("SELECT sessions FROM pg_stat_database WHERE datname = current_database()") or 0)
    finally:
        await conn.close()
