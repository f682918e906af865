"""Several reads of one passage (two cameras, or a camera and a second recognizer): agreement proceeds,
disagreement or doubt holds for an agent with every read and image reference."""

from __future__ import annotations

from typing import Any

from tests.lanes.conftest import Lot, ago, fresh_plate, plate_of

SET_THRESHOLD = (
    "mutation($laneId: ID!, $threshold: Float!) { setLaneReadThreshold(laneId: $laneId, threshold: $threshold) "
    "{ readConfidenceThreshold lane { id } } }"
)


def read(camera: str, plate: str | None, confidence: float | None) -> dict[str, Any]:
    return {"camera": camera, "plate": plate, "confidence": confidence, "image": f"{camera}/0187.jpg"}


async def test_reads_that_agree_after_normalization_proceed(lot: Lot) -> None:
    reads = [read("cam-a", "粤B·12A45", 0.91), read("cam-b", "粤b 12a45", 0.97)]
    answer = await lot.gate.passage(lot.entry_lane, None, ago(3), reads=reads)
    assert (answer["decision"], answer["reason"], answer["plate"]) == ("open", "entered", "粤B12A45")
    [session] = await lot.sessions()
    assert session["plate"] == "粤B12A45"


async def test_reads_that_disagree_hold_with_every_read_and_image_for_an_agent(lot: Lot) -> None:
    reads = [read("cam-a", plate_of(12345), 0.93), read("cam-b", plate_of(12346), 0.95)]
    answer = await lot.gate.passage(lot.entry_lane, None, ago(3), reads=reads)
    assert (answer["decision"], answer["reason"], answer["plate"]) == ("hold", "plate_disagreement", None)
    assert await lot.sessions() == []
    exception = (await lot.decision(answer["decision_id"]))["exception"]
    assert exception["kind"] == "PLATE_DISAGREEMENT"
    assert exception["reads"] == [
        {"plate": plate_of(12345), "confidence": 0.93, "image": "cam-a/0187.jpg"},
        {"plate": plate_of(12346), "confidence": 0.95, "image": "cam-b/0187.jpg"},
    ]


async def test_one_camera_seeing_no_plate_where_another_reads_one_is_a_disagreement(lot: Lot) -> None:
    reads = [read("cam-a", fresh_plate(), 0.93), read("cam-b", None, None)]
    answer = await lot.gate.passage(lot.exit_lane, None, ago(3), reads=reads)
    assert (answer["decision"], answer["reason"]) == ("hold", "plate_disagreement")


async def test_a_read_below_the_lanes_threshold_holds_for_an_agent(lot: Lot) -> None:
    plate = fresh_plate()
    reads = [read("cam-a", plate, 0.95), read("cam-b", plate, 0.62)]
    answer = await lot.gate.passage(lot.entry_lane, None, ago(3), reads=reads)
    assert (answer["decision"], answer["reason"]) == ("hold", "low_confidence")
    exception = (await lot.decision(answer["decision_id"]))["exception"]
    assert exception["kind"] == "LOW_CONFIDENCE"
    assert (exception["detail"]["threshold"], exception["detail"]["candidate_plate"]) == (0.8, plate)
    assert [item["confidence"] for item in exception["reads"]] == [0.95, 0.62]
    assert await lot.sessions() == []


async def test_an_unrecognizable_plate_or_a_read_without_confidence_is_doubtful(lot: Lot) -> None:
    garbled = await lot.gate.passage(lot.entry_lane, "粤B1?", ago(4), confidence=0.99)
    assert (garbled["decision"], garbled["reason"]) == ("hold", "low_confidence")
    unsure = await lot.gate.passage(lot.entry_lane, fresh_plate(), ago(3), confidence=None)
    assert (unsure["decision"], unsure["reason"]) == ("hold", "low_confidence")


async def test_a_passage_with_no_plate_read_holds_without_bothering_an_agent(lot: Lot) -> None:
    answer = await lot.gate.passage(lot.entry_lane, "", ago(3), confidence=None)
    assert (answer["decision"], answer["reason"], answer["exception_id"]) == ("hold", "no_plate", None)


async def test_the_operator_sets_a_lanes_threshold(lot: Lot) -> None:
    settings = (await lot.admin.data(SET_THRESHOLD, {"laneId": lot.entry_lane, "threshold": 0.5}))[
        "setLaneReadThreshold"
    ]
    assert settings == {"readConfidenceThreshold": 0.5, "lane": {"id": lot.entry_lane}}
    answer = await lot.gate.passage(lot.entry_lane, fresh_plate(), ago(3), confidence=0.62)
    assert (answer["decision"], answer["reason"]) == ("open", "entered")
    # The other lane keeps the default.
    held = await lot.gate.passage(lot.exit_lane, fresh_plate(), ago(2), confidence=0.62)
    assert held["reason"] == "low_confidence"


async def test_a_threshold_outside_0_to_1_is_refused_and_staff_may_not_set_one(lot: Lot) -> None:
    body = await lot.admin.post(SET_THRESHOLD, {"laneId": lot.entry_lane, "threshold": 1.5})
    assert body["errors"][0]["extensions"]["code"] == "INVALID_THRESHOLD"
    body = await lot.staff.post(SET_THRESHOLD, {"laneId": lot.entry_lane, "threshold": 0.5})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
