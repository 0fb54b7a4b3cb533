"""The scenario loader: defaults, overrides, and errors that name the field, value and rule."""

from __future__ import annotations

import copy
import json

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from swarmsim.errors import ScenarioError
from swarmsim.scenario import Scenario, apply_overrides, json_schema, load_scenario
from tests.conftest import TINY


def problems(data) -> dict[str, str]:
    with pytest.raises(ScenarioError) as info:
        load_scenario(data)
    return dict(info.value.problems)


def test_defaults_are_filled_and_frozen():
    sc = load_scenario(TINY)
    assert sc.tracker.peers_per_announce == 50 and sc.tracker.max_connections == 80
    assert sc.choker.name == "mainline" and sc.choker.params.interval_s == 10.0
    assert sc.picker.params.random_first_pieces == 4
    assert sc.torrent.block_bytes == 16384 and sc.torrent.n_pieces == 16
    with pytest.raises(ValidationError):
        sc.seed = 3  # frozen


def test_resolved_round_trips_and_hash_ignores_seed():
    sc = load_scenario(TINY)
    again = load_scenario(json.loads(json.dumps(sc.resolved())))
    assert again == sc and again.digest() == sc.digest()
    assert sc.with_seed(99).digest() == sc.digest()
    changed = load_scenario(apply_overrides(TINY, ["choker.unchoke_slots=5"]))
    assert changed.digest() != sc.digest()


def test_unknown_key_names_path_and_allowed_fields():
    data = copy.deepcopy(TINY)
    data["peers"][1]["uplaod_bps"] = 5
    found = problems(data)
    assert "peers[1].uplaod_bps" in found
    assert "upload_bps" in found["peers[1].uplaod_bps"]  # the allowed list


def test_bad_value_names_value_and_rule():
    data = copy.deepcopy(TINY)
    data["peers"][2]["download_bps"] = -10
    msg = problems(data)["peers[2].download_bps"]
    assert "-10" in msg and "greater than 0" in msg


def test_unknown_policy_lists_known_ones():
    data = copy.deepcopy(TINY)
    data["choker"] = {"name": "mainlien"}
    msg = problems(data)["choker"]
    assert "mainlien" in msg and "mainline" in msg


def test_policy_parameter_errors_have_full_path():
    data = copy.deepcopy(TINY)
    data["choker"] = {"name": "mainline", "unchoke_slots": 0, "bogus": 1}
    data["peers"][1]["arrival"] = {"name": "poisson"}
    found = problems(data)
    assert "greater than or equal to 1" in found["choker.unchoke_slots"]
    assert "unknown parameter" in found["choker.bogus"]
    assert "missing" in found["peers[1].arrival.rate_per_s"]


def test_cross_field_rules():
    data = copy.deepcopy(TINY)
    data["torrent"]["piece_bytes"] = 100_000
    data["peers"][0]["starts_as"] = "leecher"
    found = problems(data)
    assert "multiple of block_bytes" in found["torrent.piece_bytes"]
    assert "nobody has the file" in found["peers"]


def test_overrides_create_blocks_and_parse_yaml_values():
    out = apply_overrides(TINY, ["peers[1].count=3", "choker.unchoke_slots=6", "seed=11"])
    sc = load_scenario(out)
    assert sc.peers[1].count == 3 and sc.choker.params.unchoke_slots == 6 and sc.seed == 11
    with pytest.raises(ScenarioError, match="no such field"):
        apply_overrides(TINY, ["peers[9].count=3"])
    with pytest.raises(ScenarioError, match="path=value"):
        apply_overrides(TINY, ["seed"])


def test_yaml_file_and_trace_path_relative_to_it(tmp_path):
    (tmp_path / "joins.csv").write_text("join_s\n0\n5\n7.5\n")
    data = copy.deepcopy(TINY)
    data["peers"][1]["count"] = 3
    data["peers"][1]["arrival"] = {"name": "trace", "path": "joins.csv"}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data))
    sc = load_scenario(path)
    assert sc.peers[1].arrival.params.path == str((tmp_path / "joins.csv").resolve())
    data["peers"][1]["arrival"]["path"] = "missing.csv"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ScenarioError, match="does not exist"):
        load_scenario(path)


def test_json_schema_lists_plugins():
    schema = json.dumps(json_schema())
    for name in ("mainline", "rarest_first", "poisson", "seed_for", "slot_share"):
        assert name in schema
    assert Scenario.model_json_schema(by_alias=True)["title"] == "Scenario"


# --- property: malformed scenarios fail cleanly ---------------------------------------------


def _paths(node, prefix=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield (*prefix, k)
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield (*prefix, i)
            yield from _paths(v, (*prefix, i))


ALL_PATHS = list(_paths(TINY))
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


@st.composite
def mutated(draw):
    data = copy.deepcopy(TINY)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(ALL_PATHS))
        node = data
        try:
            for key in path[:-1]:
                node = node[key]
            action = draw(st.sampled_from(["replace", "delete", "extra"]))
            if action == "replace":
                node[path[-1]] = draw(JUNK)
            elif action == "delete" and isinstance(node, dict):
                node.pop(path[-1], None)
            elif isinstance(node, dict):
                node[draw(st.text(min_size=1, max_size=6))] = draw(JUNK)
        except (KeyError, IndexError, TypeError):
            pass
    return data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_malformed_scenarios_raise_scenario_errors_with_paths(data):
    try:
        sc = load_scenario(data)
    except ScenarioError as exc:
        assert exc.problems
        for path, message in exc.problems:
            assert isinstance(path, str) and message
            head = path.split(".")[0].split("[")[0]
            assert (
                path == "" or path.startswith("[") or head in data or head in Scenario.model_fields
            )
        return
    assert isinstance(sc, Scenario)  # a mutation that happened to be valid
