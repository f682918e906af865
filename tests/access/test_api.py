"""Vehicle lists through GraphQL: create, read, change and revoke entries; typed errors; who may do what;
a plate's standing at a facility."""

from __future__ import annotations

from typing import Any

import pytest
from strawberry import relay

from tests.access import ops
from tests.api.conftest import Callers

# ------------------------------------------------------------------------------------------------ passes


async def test_an_admin_creates_a_pass_and_staff_find_it_however_the_plate_is_written(
    operator: dict[str, Any],
) -> None:
    admin, staff, lot = operator["admin"], operator["staff"], operator["shanghai"]
    created = (
        await admin.data(
            ops.CREATE_PASS,
            {
                "input": ops.november_pass(
                    "粤b·12345",
                    facilityIds=[lot["id"]],
                    weekdays=[5, 1, 2, 3, 4],
                    windowStart="22:00",
                    windowEnd="6:00",
                    vehicleClass="NEW_ENERGY",
                    holderName="李伟",
                    holderPhone="+86 138-0000-0000",
                )
            },
        )
    )["createVehiclePass"]
    assert created["plate"] == "粤B12345"
    assert created["weekdays"] == [1, 2, 3, 4, 5]
    assert (created["windowStart"], created["windowEnd"]) == ("22:00", "06:00")
    assert created["facilities"] == [{"id": lot["id"]}]
    assert created["vehicleClass"] == "NEW_ENERGY"
    found = (await staff.data(ops.PASSES, {"plate": "粤B 12345"}))["vehiclePasses"]["edges"]
    assert [edge["node"] for edge in found] == [created]
    assert (await staff.data(ops.NODE, {"id": created["id"]}))["node"]["__typename"] == "VehiclePass"


async def test_a_pass_without_facilities_weekdays_or_window_covers_everything(operator: dict[str, Any]) -> None:
    created = (await operator["admin"].data(ops.CREATE_PASS, {"input": ops.november_pass()}))["createVehiclePass"]
    assert created["facilities"] is None
    assert created["weekdays"] == [1, 2, 3, 4, 5, 6, 7]
    assert (created["windowStart"], created["windowEnd"], created["vehicleClass"]) == (None, None, "STANDARD")
    for lot in ("shanghai", "new_york"):
        listed = await operator["staff"].data(ops.PASSES, {"facilityId": operator[lot]["id"]})
        assert [edge["node"]["id"] for edge in listed["vehiclePasses"]["edges"]] == [created["id"]]


async def test_updating_a_pass_validates_it_whole_and_a_refused_update_changes_nothing(
    operator: dict[str, Any],
) -> None:
    admin = operator["admin"]
    created = (await admin.data(ops.CREATE_PASS, {"input": ops.november_pass(windowStart="08:00", windowEnd="18:00")}))[
        "createVehiclePass"
    ]
    changed = (
        await admin.data(
            ops.UPDATE_PASS,
            {"id": created["id"], "input": {"windowEnd": "20:00", "note": "late shift", "facilityIds": None}},
        )
    )["updateVehiclePass"]
    assert (changed["windowStart"], changed["windowEnd"], changed["note"]) == ("08:00", "20:00", "late shift")
    # Only the start given: the stored end still counts, so clearing the start alone leaves half a window.
    errors = await ops.errors_of(admin, ops.UPDATE_PASS, {"id": created["id"], "input": {"windowStart": None}})
    assert errors[0]["extensions"]["code"] == "INCOMPLETE_WINDOW"
    assert errors[0]["extensions"]["field"] == "input.windowStart"
    errors = await ops.errors_of(admin, ops.UPDATE_PASS, {"id": created["id"], "input": {"validUntil": "2026-10-01"}})
    assert errors[0]["extensions"]["code"] == "DATES_OUT_OF_ORDER"
    stored = await admin.data(
        ops.NODE.replace("__typename", "... on VehiclePass { validUntil windowEnd }"), {"id": created["id"]}
    )
    assert (stored["node"]["validUntil"], stored["node"]["windowEnd"]) == ("2026-11-30", "20:00")


async def test_a_revoked_pass_is_kept_but_no_longer_listed_or_changeable(operator: dict[str, Any]) -> None:
    admin, staff = operator["admin"], operator["staff"]
    created = (await admin.data(ops.CREATE_PASS, {"input": ops.november_pass()}))["createVehiclePass"]
    revoked = (await admin.data(ops.REVOKE_PASS, {"id": created["id"]}))["revokeVehiclePass"]
    assert revoked["revokedAt"] is not None
    assert (await staff.data(ops.PASSES, {}))["vehiclePasses"]["edges"] == []
    history = (await staff.data(ops.PASSES, {"revoked": True}))["vehiclePasses"]["edges"]
    assert [edge["node"]["id"] for edge in history] == [created["id"]]
    assert await admin.error_code(ops.REVOKE_PASS, {"id": created["id"]}) == "NOT_FOUND"
    assert await admin.error_code(ops.UPDATE_PASS, {"id": created["id"], "input": {"note": "x"}}) == "NOT_FOUND"
    # Its terms are free again.
    await admin.data(ops.CREATE_PASS, {"input": ops.november_pass()})


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"plate": "粤B#1"}, "INVALID_PLATE", "input.plate"),
        ({"validUntil": "2026-10-31"}, "DATES_OUT_OF_ORDER", "input.validUntil"),
        ({"weekdays": [1, 8]}, "INVALID_WEEKDAY", "input.weekdays"),
        ({"weekdays": []}, "INVALID_WEEKDAY", "input.weekdays"),
        ({"windowStart": "25:00", "windowEnd": "06:00"}, "INVALID_TIME", "input.windowStart"),
        ({"windowStart": "08:00"}, "INCOMPLETE_WINDOW", "input.windowEnd"),
        ({"windowStart": "08:00", "windowEnd": "08:00"}, "EMPTY_WINDOW", "input.windowEnd"),
        ({"facilityIds": []}, "EMPTY_FACILITIES", "input.facilityIds"),
        ({"holderPhone": "ring me"}, "INVALID_PHONE", "input.holderPhone"),
        ({"note": "x" * 1001}, "TEXT_TOO_LONG", "input.note"),
    ],
)
async def test_invalid_passes_are_refused_with_a_code_and_the_field(
    operator: dict[str, Any], fields: dict[str, Any], code: str, field: str
) -> None:
    admin = operator["admin"]
    errors = await ops.errors_of(admin, ops.CREATE_PASS, {"input": {**ops.november_pass(), **fields}})
    assert (errors[0]["extensions"]["code"], errors[0]["extensions"]["field"]) == (code, field)
    assert await ops.count_passes(admin) == 0


async def test_all_problems_of_a_pass_come_back_together(operator: dict[str, Any]) -> None:
    errors = await ops.errors_of(
        operator["admin"],
        ops.CREATE_PASS,
        {"input": ops.november_pass("?", validUntil="2026-10-01", windowEnd="06:00")},
    )
    problems = {(p["field"], p["code"]) for p in errors[0]["extensions"]["problems"]}
    assert problems == {
        ("input.plate", "INVALID_PLATE"),
        ("input.validUntil", "DATES_OUT_OF_ORDER"),
        ("input.windowStart", "INCOMPLETE_WINDOW"),
    }


async def test_a_pass_overlapping_a_live_one_is_a_duplicate_but_another_shift_is_not(operator: dict[str, Any]) -> None:
    admin, lot = operator["admin"], operator["shanghai"]
    days = (
        await admin.data(
            ops.CREATE_PASS,
            {"input": ops.november_pass(facilityIds=[lot["id"]], windowStart="08:00", windowEnd="18:00")},
        )
    )["createVehiclePass"]
    errors = await ops.errors_of(admin, ops.CREATE_PASS, {"input": ops.november_pass("粤B·12345")})
    assert errors[0]["extensions"]["code"] == "DUPLICATE_ENTRY"
    assert errors[0]["extensions"]["existing_id"] == relay.GlobalID.from_id(days["id"]).node_id
    await admin.data(
        ops.CREATE_PASS,
        {"input": ops.november_pass(facilityIds=[lot["id"]], windowStart="18:00", windowEnd="08:00")},
    )
    await admin.data(ops.CREATE_PASS, {"input": ops.november_pass(facilityIds=[operator["new_york"]["id"]])})
    assert await ops.count_passes(admin) == 3
    # Stretching the night pass into the day pass's hours is refused too.
    nights = (await admin.data(ops.PASSES, {"first": 10}))["vehiclePasses"]["edges"]
    night = next(edge["node"] for edge in nights if edge["node"]["windowStart"] == "18:00")
    code = await admin.error_code(ops.UPDATE_PASS, {"id": night["id"], "input": {"windowEnd": "09:00"}})
    assert code == "DUPLICATE_ENTRY"


async def test_pages_of_passes_follow_the_plates(operator: dict[str, Any]) -> None:
    admin = operator["admin"]
    for plate in ("粤B00003", "粤B00001", "粤B00002"):
        await admin.data(ops.CREATE_PASS, {"input": ops.november_pass(plate)})
    first = (await admin.data(ops.PASSES, {"first": 2}))["vehiclePasses"]
    assert [edge["node"]["plate"] for edge in first["edges"]] == ["粤B00001", "粤B00002"]
    assert first["pageInfo"]["hasNextPage"] is True
    rest = (await admin.data(ops.PASSES, {"first": 2, "after": first["pageInfo"]["endCursor"]}))["vehiclePasses"]
    assert [edge["node"]["plate"] for edge in rest["edges"]] == ["粤B00003"]
    assert rest["pageInfo"]["hasNextPage"] is False
    on_day = await admin.data(ops.PASSES, {"validOn": "2026-12-01"})
    assert on_day["vehiclePasses"]["edges"] == []
    assert await admin.error_code(ops.PASSES, {"plate": "#"}) == "INVALID_PLATE"


# ----------------------------------------------------------------------------------- whitelist, blocklist


async def test_whitelist_entries_are_created_changed_and_revoked(operator: dict[str, Any]) -> None:
    admin, staff, lot = operator["admin"], operator["staff"], operator["shanghai"]
    entry = (
        await admin.data(
            ops.CREATE_WHITELIST,
            {"input": {"plate": "京A·F0236", "category": "OFFICIAL", "facilityIds": [lot["id"]], "reason": "city car"}},
        )
    )["createWhitelistEntry"]
    assert (entry["plate"], entry["category"], entry["facilities"]) == ("京AF0236", "OFFICIAL", [{"id": lot["id"]}])
    assert (entry["validFrom"], entry["validUntil"]) == (None, None)
    changed = (
        await admin.data(
            ops.UPDATE_WHITELIST, {"id": entry["id"], "input": {"category": "VIP", "validUntil": "2027-01-31"}}
        )
    )["updateWhitelistEntry"]
    assert (changed["category"], changed["validUntil"], changed["reason"]) == ("VIP", "2027-01-31", "city car")
    listed = (await staff.data(ops.WHITELIST, {"category": "VIP"}))["whitelistEntries"]["edges"]
    assert [edge["node"]["id"] for edge in listed] == [entry["id"]]
    assert (await staff.data(ops.WHITELIST, {"category": "TEAM"}))["whitelistEntries"]["edges"] == []
    assert await admin.error_code(ops.CREATE_WHITELIST, {"input": {"plate": "京AF0236", "category": "TEAM"}}) == (
        "DUPLICATE_ENTRY"
    )
    await admin.data(ops.REVOKE_WHITELIST, {"id": entry["id"]})
    assert (await staff.data(ops.WHITELIST, {}))["whitelistEntries"]["edges"] == []


async def test_blocklist_entries_need_a_reason_and_are_listed_by_kind(operator: dict[str, Any]) -> None:
    admin, staff = operator["admin"], operator["staff"]
    errors = await ops.errors_of(
        admin, ops.CREATE_BLOCKLIST, {"input": {"plate": "粤B66666", "kind": "BLACKLIST", "reason": "  "}}
    )
    assert (errors[0]["extensions"]["code"], errors[0]["extensions"]["field"]) == ("MISSING_VALUE", "input.reason")
    entry = (
        await admin.data(
            ops.CREATE_BLOCKLIST,
            {"input": {"plate": "粤B66666", "kind": "RESTRICTED", "reason": "police hold", "validFrom": "2026-11-01"}},
        )
    )["createBlocklistEntry"]
    assert (entry["kind"], entry["reason"], entry["validFrom"]) == ("RESTRICTED", "police hold", "2026-11-01")
    changed = (await admin.data(ops.UPDATE_BLOCKLIST, {"id": entry["id"], "input": {"kind": "BLACKLIST"}}))[
        "updateBlocklistEntry"
    ]
    assert changed["kind"] == "BLACKLIST"
    assert [
        e["node"]["id"] for e in (await staff.data(ops.BLOCKLIST, {"kind": "BLACKLIST"}))["blocklistEntries"]["edges"]
    ] == [entry["id"]]
    assert (await admin.data(ops.REVOKE_BLOCKLIST, {"id": entry["id"]}))["revokeBlocklistEntry"]["revokedAt"]


# ----------------------------------------------------------------------------------------------- callers


async def test_staff_read_but_only_admins_change_and_nobody_else_reads(
    operator: dict[str, Any], callers: Callers
) -> None:
    admin, staff = operator["admin"], operator["staff"]
    created = (await admin.data(ops.CREATE_PASS, {"input": ops.november_pass()}))["createVehiclePass"]
    assert await staff.error_code(ops.CREATE_PASS, {"input": ops.november_pass("粤B22222")}) == "FORBIDDEN"
    assert await staff.error_code(ops.REVOKE_PASS, {"id": created["id"]}) == "FORBIDDEN"
    csv = "plate,kind,reason\n粤B33333,blacklist,x\n"
    assert await staff.error_code(ops.IMPORT, {"kind": "BLOCKLIST", "csv": csv}) == "FORBIDDEN"
    for outsider in (callers.anonymous(), await callers.driver(), callers.city()):
        assert await outsider.error_code(ops.PASSES, {}) == "FORBIDDEN"
        assert (await outsider.data(ops.NODE, {"id": created["id"]}))["node"] is None
        assert await outsider.error_code(ops.CREATE_PASS, {"input": ops.november_pass("粤B44444")}) == "FORBIDDEN"
    assert await ops.count_passes(admin) == 1


# ---------------------------------------------------------------------------------------------- standing


async def test_standing_follows_the_precedence_and_revoking_steps_down(operator: dict[str, Any]) -> None:
    admin, staff, lot = operator["admin"], operator["staff"], operator["shanghai"]
    plate = "粤B77777"
    at = "2026-11-18T04:00:00Z"  # Wednesday 12:00 in Shanghai

    async def standing() -> dict[str, Any]:
        return (await staff.data(ops.STANDING, {"facilityId": lot["id"], "plate": "粤b·77777", "at": at}))[
            "vehicleStanding"
        ]

    assert (await standing())["kind"] == "VISITOR"
    a_pass = (await admin.data(ops.CREATE_PASS, {"input": ops.november_pass(plate, vehicleClass="LARGE")}))[
        "createVehiclePass"
    ]
    held = await standing()
    assert (held["kind"], held["entryId"], held["vehicleClass"]) == ("PASS_HOLDER", a_pass["id"], "LARGE")
    assert held["until"] == "2026-11-30T16:00:00+00:00"  # the end of 30 November in Shanghai
    vip = (await admin.data(ops.CREATE_WHITELIST, {"input": {"plate": plate, "category": "VIP"}}))[
        "createWhitelistEntry"
    ]
    assert (await standing())["kind"] == "WHITELISTED"
    restricted = (
        await admin.data(ops.CREATE_BLOCKLIST, {"input": {"plate": plate, "kind": "RESTRICTED", "reason": "dispute"}})
    )["createBlocklistEntry"]
    assert (await standing())["kind"] == "RESTRICTED"
    await admin.data(ops.UPDATE_BLOCKLIST, {"id": restricted["id"], "input": {"kind": "BLACKLIST"}})
    blocked = await standing()
    assert (blocked["kind"], blocked["list"], blocked["entryId"], blocked["reason"]) == (
        "BLACKLISTED",
        "BLOCKLIST",
        restricted["id"],
        "dispute",
    )
    for revoke, entry_id, then in (
        (ops.REVOKE_BLOCKLIST, restricted["id"], "WHITELISTED"),
        (ops.REVOKE_WHITELIST, vip["id"], "PASS_HOLDER"),
        (ops.REVOKE_PASS, a_pass["id"], "VISITOR"),
    ):
        await admin.data(revoke, {"id": entry_id})
        assert (await standing())["kind"] == then


async def test_standing_reads_the_pass_window_in_the_facilitys_zone(operator: dict[str, Any]) -> None:
    admin, staff = operator["admin"], operator["staff"]
    await admin.data(
        ops.CREATE_PASS,
        {"input": ops.november_pass("粤B88888", weekdays=[1, 2, 3, 4, 5], windowStart="08:00", windowEnd="18:00")},
    )
    at = "2026-11-23T02:00:00Z"  # Monday 10:00 in Shanghai; Sunday 21:00 in New York
    results = {}
    for lot in ("shanghai", "new_york"):
        variables = {"facilityId": operator[lot]["id"], "plate": "粤B88888", "at": at}
        results[lot] = (await staff.data(ops.STANDING, variables))["vehicleStanding"]
    assert results["shanghai"]["kind"] == "PASS_HOLDER"
    assert results["shanghai"]["until"] == "2026-11-23T10:00:00+00:00"  # 18:00 in Shanghai
    assert results["new_york"]["kind"] == "VISITOR"
    # The plate holds a pass there, only not for Sunday evenings.
    assert results["new_york"]["idlePassId"] is not None


async def test_standing_needs_a_plate_and_a_facility_of_ones_own(operator: dict[str, Any], callers: Callers) -> None:
    staff, lot = operator["staff"], operator["shanghai"]
    assert await staff.error_code(ops.STANDING, {"facilityId": lot["id"], "plate": "??"}) == "INVALID_PLATE"
    stranger = await callers.operator(role="operator_staff")
    assert await stranger.error_code(ops.STANDING, {"facilityId": lot["id"], "plate": "粤B12345"}) == "UNKNOWN_FACILITY"
    assert await callers.city().error_code(ops.STANDING, {"facilityId": lot["id"], "plate": "粤B12345"}) == "FORBIDDEN"
