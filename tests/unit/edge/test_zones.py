import copy
import json
import re
from datetime import UTC, datetime
from importlib import resources

import pytest
from scrm_edge.health import MachineProfile, assess
from scrm_edge.signals import velocity_sine
from scrm_edge.zones import UnknownMachineClass, ZoneTable

ZONES = ZoneTable.load()
PACKAGED = json.loads((resources.files("scrm_edge") / "vibration_zones.json").read_text("utf-8"))
START = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)

EXPECTED_BOUNDARIES = {
    "group2_rigid": (1.4, 2.8, 4.5),
    "group2_flexible": (2.3, 4.5, 7.1),
    "group1_rigid": (2.3, 4.5, 7.1),
    "group1_flexible": (3.5, 7.1, 11.0),
}
CLASS_BOUNDARIES = [
    (machine_class, index, boundary)
    for machine_class, boundaries in EXPECTED_BOUNDARIES.items()
    for index, boundary in enumerate(boundaries)
]


def test_the_packaged_table_holds_the_iso_10816_3_boundaries_per_class():
    assert set(ZONES.classes) == set(EXPECTED_BOUNDARIES)
    for machine_class, boundaries in EXPECTED_BOUNDARIES.items():
        assert ZONES.boundaries(machine_class) == boundaries
        assert ZONES.classes[machine_class].description
    assert "Group 2" in ZONES.classes["group2_rigid"].description
    assert "rigid" in ZONES.classes["group2_rigid"].description
    assert ZONES.band_hz == (10.0, 1000.0)
    assert ZONES.resolution_mm_s == 0.01
    assert ZONES.equal_to_boundary == "lower_zone"


def test_the_packaged_table_cites_its_source_and_its_caveats():
    assert "10816-3" in ZONES.standard
    assert "LGDiMaggio/claude-stwinbox-diagnostics" in ZONES.source
    assert "iso-10816-guide.md" in ZONES.source
    assert "20816-3:2022" in ZONES.source
    assert "licensed copy" in ZONES.source
    assert PACKAGED["measurement"]["quantity"] == "broadband r.m.s. vibration velocity"
    assert "bearing housings" in PACKAGED["measurement"]["location"]
    assert "lower zone" in PACKAGED["boundary_rule"]["text"]


@pytest.mark.parametrize(
    ("velocity", "zone"),
    [
        (0.0, "A"),
        (1.4, "A"),
        (1.4049, "A"),  # rounds to 1.40: on the boundary, so the lower zone
        (1.404999999, "A"),
        (1.405, "B"),  # half up on the decimal value: 1.41
        (1.41, "B"),
        (2.8, "B"),
        (2.805, "C"),
        (4.5, "C"),
        (4.504, "C"),
        (4.505, "D"),
        (100.0, "D"),
    ],
)
def test_a_velocity_is_rounded_half_up_to_0_01_and_a_boundary_belongs_to_the_lower_zone(velocity, zone):
    assert ZONES.zone("group2_rigid", velocity) == zone


@pytest.mark.parametrize("sample_rate_hz", [1_000.0, 25_600.0])
@pytest.mark.parametrize(("machine_class", "index", "boundary"), CLASS_BOUNDARIES)
def test_a_sine_exactly_on_a_boundary_is_the_lower_zone_and_0_01_above_it_the_upper(
    machine_class, index, boundary, sample_rate_hz
):
    """Acceleration in, zone out: through the frequency-domain integration and the rounding."""
    machine = MachineProfile(device_id="pump-7", machine_class=machine_class, rpm=1800)
    lower, upper = "ABCD"[index], "ABCD"[index + 1]

    on = assess(velocity_sine(boundary, 30.0, sample_rate_hz, 1.0), sample_rate_hz, START, machine, ZONES)
    above = assess(
        velocity_sine(round(boundary + 0.01, 2), 30.0, sample_rate_hz, 1.0),
        sample_rate_hz,
        START,
        machine,
        ZONES,
    )

    assert on.features["velocity_rms_mm_s"] == pytest.approx(boundary, rel=1e-12)
    assert (on.zone, above.zone) == (lower, upper)
    # The score agrees: a boundary scores as the top of the zone above's range, 0.01 more is below it.
    assert on.score == 75 - 25 * index
    assert above.score == 74 - 25 * index


def test_a_table_of_the_users_own_is_honoured(tmp_path):
    doc = copy.deepcopy(PACKAGED)
    doc["standard"] = "Site standard for API 610 pumps"
    doc["source"] = "Plant engineering, rev. 3"
    doc["classes"] = {
        "pump_api610": {
            "description": "between-bearings process pump",
            "boundaries_mm_s": {"A/B": 3.0, "B/C": 4.5, "C/D": 6.0},
        }
    }
    path = tmp_path / "zones.json"
    path.write_text(json.dumps(doc), encoding="utf-8")

    table = ZoneTable.load(path)

    assert table.source == "Plant engineering, rev. 3"
    assert table.boundaries("pump_api610") == (3.0, 4.5, 6.0)
    assert [table.zone("pump_api610", v) for v in (3.0, 3.01, 4.5, 4.51, 6.0, 6.01)] == list("ABBCCD")
    machine = MachineProfile(device_id="p-610", machine_class="pump_api610", rpm=1800)
    window = velocity_sine(2.0, 30.0, 1_000.0, 1.0)
    assert assess(window, 1_000.0, START, machine, table).zone == "A"  # group2_rigid would say B
    with pytest.raises(UnknownMachineClass):
        table.zone("group2_rigid", 1.0)


def test_a_table_may_put_a_boundary_in_the_upper_zone_instead():
    doc = copy.deepcopy(PACKAGED)
    doc["boundary_rule"]["equal_to_boundary"] = "upper_zone"
    table = ZoneTable.from_dict(doc)
    assert table.zone("group2_rigid", 1.4) == "B"
    assert table.zone("group2_rigid", 1.4049) == "B"  # still rounded first
    assert table.zone("group2_rigid", 1.39) == "A"


def test_an_unknown_machine_class_names_the_known_ones():
    with pytest.raises(UnknownMachineClass) as raised:
        ZONES.zone("group3", 1.0)
    assert isinstance(raised.value, ValueError)
    message = str(raised.value)
    assert "'group3'" in message
    for machine_class in EXPECTED_BOUNDARIES:
        assert machine_class in message
    with pytest.raises(UnknownMachineClass):
        ZONES.boundaries("")


@pytest.mark.parametrize("velocity", [-0.01, float("nan"), float("inf")])
def test_a_velocity_that_is_not_a_finite_non_negative_number_is_refused(velocity):
    with pytest.raises(ValueError, match="velocity_rms_mm_s"):
        ZONES.zone("group2_rigid", velocity)


def _boundaries(doc, machine_class="group2_rigid"):
    return doc["classes"][machine_class]["boundaries_mm_s"]


@pytest.mark.parametrize(
    ("break_it", "named"),
    [
        (
            lambda doc: _boundaries(doc).update({"B/C": 1.4}),
            ["'group2_rigid'", "strictly increasing", "'B/C'"],
        ),
        (
            lambda doc: _boundaries(doc, "group1_flexible").update({"C/D": 7.0}),
            ["'group1_flexible'", "'C/D'"],
        ),
        (lambda doc: _boundaries(doc).update({"A/B": -1.4}), ["'group2_rigid'", "'A/B'", "positive"]),
        (lambda doc: _boundaries(doc).update({"A/B": 0}), ["'group2_rigid'", "'A/B'", "positive"]),
        (lambda doc: _boundaries(doc).update({"A/B": True}), ["'group2_rigid'", "'A/B'"]),
        (lambda doc: _boundaries(doc).update({"A/B": "1.4"}), ["'group2_rigid'", "'A/B'"]),
        (lambda doc: _boundaries(doc).pop("C/D"), ["'group2_rigid'", "'C/D'"]),
        (lambda doc: _boundaries(doc).update({"D/E": 9.0}), ["'group2_rigid'", "unknown keys", "D/E"]),
        (lambda doc: doc["classes"]["group2_rigid"].pop("description"), ["'group2_rigid'", "description"]),
        (
            lambda doc: doc["classes"]["group2_rigid"].pop("boundaries_mm_s"),
            ["'group2_rigid'", "boundaries_mm_s"],
        ),
        (lambda doc: doc.update({"classes": {}}), ["classes"]),
        (lambda doc: doc.pop("source"), ["source"]),
        (lambda doc: doc.pop("standard"), ["standard"]),
        (lambda doc: doc["boundary_rule"].update({"resolution_mm_s": 0}), ["boundary_rule.resolution_mm_s"]),
        (lambda doc: doc["boundary_rule"].update({"rounding": "half_even"}), ["boundary_rule.rounding"]),
        (
            lambda doc: doc["boundary_rule"].update({"equal_to_boundary": "both"}),
            ["boundary_rule.equal_to_boundary"],
        ),
        (lambda doc: doc["measurement"].update({"unit": "in/s"}), ["measurement.unit"]),
        (lambda doc: doc["measurement"].update({"band_hz": [1000, 10]}), ["measurement.band_hz"]),
        (lambda doc: doc["measurement"].update({"band_hz": [10]}), ["measurement.band_hz"]),
    ],
)
def test_an_invalid_table_is_refused_naming_the_class_and_field(break_it, named):
    doc = copy.deepcopy(PACKAGED)
    break_it(doc)
    with pytest.raises(ValueError) as raised:
        ZoneTable.from_dict(doc)
    for fragment in named:
        assert fragment in str(raised.value)


def test_a_file_that_is_not_json_is_refused_naming_it(tmp_path):
    path = tmp_path / "zones.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(str(path))):
        ZoneTable.load(path)
    with pytest.raises(ValueError, match="JSON object"):
        ZoneTable.from_dict([1, 2])
