"""Robustness (issue 16, items 1 and 3): every bad input is a named ``ScenarioError`` before
anything runs, and result folders cannot be shared, overwritten or left stale by accident.

Each test of the issue's reproducers says which one it guards.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

import swarmsim
from swarmsim import plots
from swarmsim.build import build_plugins
from swarmsim.cli import app
from swarmsim.errors import ResultError, ScenarioError
from swarmsim.policies import REGISTRIES
from swarmsim.results import FIGURES, LOCK, FolderLock, Result, claim_folder
from swarmsim.scenario import (
    MAX_EVENTS,
    Scenario,
    apply_overrides,
    apply_values,
    load_scenario,
)
from swarmsim.sweep import Sweep, run_sweep
from tests.conftest import TINY
from tests.test_scenario import _paths

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


def tiny() -> dict:
    return copy.deepcopy(TINY)


def problems(data, **kw) -> dict[str, str]:
    """The ``{path: message}`` of the ScenarioError that loading ``data`` must raise."""
    with pytest.raises(ScenarioError) as info:
        load_scenario(data, **kw)
    found = dict(info.value.problems)
    assert found and all(isinstance(p, str) and m for p, m in found.items())
    return found


def write(tmp_path: Path, text: str | bytes, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


TINY_YAML = (ROOT / "tests" / "tiny.yaml").read_text()


class Hang(BaseException):
    """Raised by the alarm: a BaseException, so no ``except Exception`` can swallow it."""


@contextlib.contextmanager
def time_limit(seconds: float):
    """Fail (rather than hang) if the block runs longer than ``seconds``."""

    def alarm(signum, frame):
        raise Hang(f"took longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


# --- 1. strict numbers ------------------------------------------------------------------------


def test_a_boolean_is_not_a_count_or_a_rate():
    """Reproducer: ``count: true`` gave one peer, ``rate_per_s: true`` a rate of 1."""
    data = tiny()
    data["peers"][1]["count"] = True
    data["peers"][2]["arrival"] = {"name": "poisson", "rate_per_s": True}
    data["choker"] = {"name": "mainline", "unchoke_slots": False}
    found = problems(data)
    assert "not a boolean" in found["peers[1].count"] and "True" in found["peers[1].count"]
    assert "not a boolean" in found["peers[2].arrival.rate_per_s"]
    assert "not a boolean" in found["choker.unchoke_slots"]


def test_a_quoted_number_is_text_but_1e6_is_a_number(tmp_path):
    data = tiny()
    data["peers"][1]["upload_bps"] = "25000"
    assert "not text" in problems(data)["peers[1].upload_bps"]
    path = write(tmp_path, TINY_YAML.replace("upload_bps: 25000", "upload_bps: 2.5e4"))
    assert load_scenario(path).peers[1].upload_bps == 25000.0
    path = write(tmp_path, TINY_YAML.replace("upload_bps: 25000", "upload_bps: 25e3"))
    assert load_scenario(path).peers[1].upload_bps == 25000.0  # YAML 1.1 would give text


SCENARIO_FLOATS = [
    "peers[1].upload_bps",
    "peers[1].download_bps",
    "peers[1].self_dealing_bps",
    "peers[1].tokens.mean",
    "peers[1].tokens.sigma",
    "peers[1].seeding_cost_per_hour.mean",
    "tracker.reannounce_interval_s",
    "stop.max_time_s",
    "timers.tick_s",
    "wire.handshake_s",
    "record.sample_every_s",
]
PLUGIN_FLOATS = [
    ("departure", {"name": "seed_for", "mean_s": 30}, "mean_s"),
    ("departure", {"name": "seed_to_ratio", "ratio": 1.0}, "ratio"),
    ("departure", {"name": "seed_to_ratio", "ratio": 1.0}, "abort_rate_per_s"),
    ("choker", {"name": "mainline"}, "interval_s"),
    ("peers[1].arrival", {"name": "poisson", "rate_per_s": 1.0}, "rate_per_s"),
    ("peers[1].arrival", {"name": "flash_crowd"}, "window_s"),
    ("incentive", {"name": "pay_per_piece", "price_per_piece": 0.5}, "price_per_piece"),
]


def _set(data: dict, path: str, value) -> dict:
    return apply_values(data, {path: value})


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_every_float_field_is_finite(value):
    """Reproducer: ``+inf`` was accepted in every float field tried."""
    for path in SCENARIO_FLOATS:
        msg = problems(_set(tiny(), path, value))[path]
        assert "finite" in msg, (path, msg)
    for where, block, field in PLUGIN_FLOATS:
        data = _set(tiny(), where, {**block, field: value})
        msg = problems(data)[f"{where}.{field}"]
        assert "finite" in msg or f"got {value}" in msg, (where, field, msg)


def test_infinity_only_where_it_is_the_default_and_it_round_trips():
    """``seed_to_ratio`` without ``max_s`` (default: no limit) survives ``resolved()``,
    which sweeps and ``simulate(Scenario, overrides=...)`` feed back to the loader."""
    data = tiny()
    data["departure"] = {"name": "seed_to_ratio", "ratio": 1.0}
    sc = load_scenario(data)
    assert math.isinf(sc.departure.params.max_s)
    again = load_scenario(json.loads(json.dumps(sc.resolved(), allow_nan=False)))
    assert again == sc and again.digest() == sc.digest()
    data["departure"]["max_s"] = math.inf
    assert load_scenario(data) == sc


def test_numbers_in_range():
    """Huge numbers crashed the engine after passing validation."""
    cases = {
        "torrent.file_bytes": 10**16,
        "seed": 2**64,
        "peers[1].upload_bps": 1e20,
        "peers[1].tokens.sigma": 50,
        "choker.unchoke_slots": 10**30,
    }
    for path, value in cases.items():
        assert path in problems(_set(tiny(), path, value)), path
    data = _set(tiny(), "torrent.file_bytes", 2**40)  # 4 million pieces of 256 KiB
    assert "pieces" in problems(data)["torrent.file_bytes"]
    data = _set(_set(tiny(), "peers[1].count", 900_000), "torrent.file_bytes", 2**37)
    assert "3 bytes" in problems(data)["peers"]
    sc = load_scenario(tiny())
    for bad in (-1, 2**63, True, 1.5, "3"):
        with pytest.raises(ScenarioError, match="seed"):
            sc.with_seed(bad)


# --- 1. YAML ----------------------------------------------------------------------------------


def test_duplicate_keys_are_named_with_their_lines(tmp_path):
    """Reproducer: duplicate YAML keys, the last one winning."""
    path = write(tmp_path, TINY_YAML + "seed: 9\n")
    found = problems(path)
    assert "duplicate key 'seed'" in found["seed"] and "lines 3 and 30" in found["seed"]
    nested = TINY_YAML.replace("  mean_s: 30\n", "  mean_s: 30\n  mean_s: 40\n")
    assert "duplicate key 'mean_s'" in problems(write(tmp_path, nested))["departure.mean_s"]
    merged = "base: &b {mean_s: 30}\n"  # a merge key overriding is not a duplicate
    data = yaml.safe_load(TINY_YAML)
    assert load_scenario(data)  # sanity
    text = merged + TINY_YAML.replace(
        "departure:\n  name: seed_for\n  mean_s: 30\n", "departure:\n  <<: *b\n  name: seed_for\n"
    )
    assert "base" in problems(write(tmp_path, text))  # unknown field, but read fine


ALIAS_BOMB = "".join(
    [
        'a0: &a0 ["x","x","x","x","x","x","x","x","x"]\n',
        *(
            f"a{i}: &a{i} [*a{i - 1},*a{i - 1},*a{i - 1},*a{i - 1},*a{i - 1},"
            f"*a{i - 1},*a{i - 1},*a{i - 1},*a{i - 1}]\n"
            for i in range(1, 9)
        ),
    ]
)


def test_an_alias_bomb_fails_fast(tmp_path):
    """Reproducer: a 1 KB alias bomb hung every load at 1.7 GB (apply_overrides' deep copy
    expanded what yaml.safe_load keeps shared)."""
    assert len(ALIAS_BOMB) < 1024
    path = write(tmp_path, ALIAS_BOMB + TINY_YAML + "description: *a8\n")
    t0 = time.perf_counter()
    with time_limit(10):
        found = problems(path)
    assert time.perf_counter() - t0 < 5
    assert "expands to more than" in found[""]
    # the same, built in Python: shared lists handed to load_scenario / apply_overrides
    shared: list = ["x"] * 9
    for _ in range(8):
        shared = [shared] * 9
    with time_limit(10):
        assert "expands to more than" in problems({**tiny(), "description": shared})[""]
        with pytest.raises(ScenarioError, match="expands"):
            apply_overrides({**tiny(), "description": shared}, [])


def test_non_utf8_dates_deep_nesting_and_recursive_aliases_are_named(tmp_path):
    """Reproducers: tracebacks from non-UTF-8 files, YAML dates, deep nesting and
    recursive aliases."""
    latin = TINY_YAML.replace("name: tiny", "name: tiny\ndescription: caf\u00e9").encode("latin-1")
    assert "not UTF-8" in problems(write(tmp_path, latin))[""]
    assert load_scenario(write(tmp_path, "\ufeff" + TINY_YAML)).name == "tiny"  # a BOM is fine
    dated = TINY_YAML.replace("seed: 7", "seed: 2026-01-01\ndescription: 2026-01-02")
    assert "2026-01-01" in problems(write(tmp_path, dated))["seed"]
    ok = load_scenario(write(tmp_path, TINY_YAML + "description: 2026-01-02\n"))
    assert ok.description == "2026-01-02"  # dates are text
    for depth in (40, 5000):  # past the limit, and past the YAML parser's own recursion
        deep = TINY_YAML + "description: " + "[" * depth + "]" * depth + "\n"
        with time_limit(10):
            assert "levels deep" in " ".join(problems(write(tmp_path, deep)).values())
    looped = TINY_YAML + "description: &r [1, *r]\n"
    assert "recursive" in problems(write(tmp_path, looped))["description[1]"]
    loop: list = [1]
    loop.append(loop)
    assert "recursive" in problems({**tiny(), "description": loop})["description[1]"]
    assert "not a name" in problems(write(tmp_path, TINY_YAML + "on: 1\n"))[""]
    timestamp = TINY_YAML + "description: !!timestamp 2026-01-01\n"
    assert "not a scenario value" in problems(write(tmp_path, timestamp))["description"]
    huge_int = TINY_YAML.replace("seed: 7", "seed: " + "9" * 5000)
    assert "cannot be read" in problems(write(tmp_path, huge_int))[""]


@pytest.mark.parametrize(
    "override, path",
    [
        ("seed=[", "seed"),
        ("seed={a: 1", "seed"),
        ("choker={name: mainline, name: random}", "choker.name"),
        ("description=" + "[" * 50 + "]" * 50, None),
        ("peers[x].count=3", "peers[x].count"),
        ("peers.foo=3", "peers.foo"),
        ("seed", "seed"),
        ("seed=2026-01-01", "seed"),
    ],
)
def test_every_set_value_is_parsed_with_a_named_error(override, path):
    """Reproducer: ``--set 'seed=['`` gave a traceback."""
    found = problems(tiny(), overrides=[override])
    if path is not None:
        assert path in found, found


def test_set_errors_on_the_command_line_are_one_message(tmp_path):
    path = write(tmp_path, TINY_YAML)
    for command in ("validate", "run"):
        res = runner.invoke(app, [command, str(path), "--set", "seed=["])
        assert res.exit_code == 2, res.output
        assert "seed" in res.output and "not valid YAML" in res.output
        assert "Traceback" not in res.output
        assert res.exception is None or isinstance(res.exception, SystemExit)


def test_validate_names_yaml_faults_without_a_traceback(tmp_path):
    """``swarmsim validate`` checks first whether a file is a grid: that read must be as
    guarded as the scenario's."""
    deep = TINY_YAML + "description: " + "[" * 5000 + "]" * 5000 + "\n"
    for text in (deep, ALIAS_BOMB + TINY_YAML, TINY_YAML.encode() + b"\xff\n"):
        with time_limit(20):
            res = runner.invoke(app, ["validate", str(write(tmp_path, text))])
        assert res.exit_code == 2 and "invalid scenario" in res.output, res.output
        assert not isinstance(res.exception, Exception) or isinstance(res.exception, SystemExit)


# --- 1. plug-ins, classes, traces, run length -----------------------------------------------


def test_plugins_that_cannot_load_are_named(tmp_path, monkeypatch):
    """Reproducers: relative module names, bad user ``Params``, modules that raise on import
    (SystemExit included) gave tracebacks."""
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "rb_exit.py").write_text("raise SystemExit(3)\n")
    (tmp_path / "rb_params.py").write_text("class C:\n    Params = dict\n")
    (tmp_path / "rb_validator.py").write_text(
        textwrap.dedent(
            """
            from pydantic import BaseModel, field_validator

            class C:
                class Params(BaseModel):
                    x: int = 1

                    @field_validator("x")
                    @classmethod
                    def _v(cls, v):
                        raise TypeError("boom")
            """
        )
    )
    cases = {
        ".relative:C": "relative import",
        "rb_exit:C": "SystemExit",
        "rb_params:C": "not a pydantic model",
        "json:JSONDecoder": "Params",
    }
    for name, expect in cases.items():
        assert expect in problems({**tiny(), "choker": {"name": name}})["choker"], name
    found = problems({**tiny(), "choker": {"name": "rb_validator:C", "x": 2}})
    assert "TypeError: boom" in found["choker"]


@pytest.mark.parametrize(
    "arrival, field",
    [
        ({"name": "flash_crowd", "start_s": 5000}, "start_s"),
        ({"name": "poisson", "rate_per_s": 1e-9}, "rate_per_s"),
        ({"name": "poisson", "rate_per_s": 1, "start_s": 1e9}, "start_s"),
        ({"name": "decaying", "lambda0_per_s": 1e-9, "tau_s": 100}, "lambda0_per_s"),
        ({"name": "flash_crowd", "start_s": 4999, "window_s": 1e12}, "window_s"),
    ],
)
def test_each_peer_class_must_be_able_to_join(arrival, field):
    """Reproducer: peer classes that never join ran to ``status: ok``."""
    data = tiny()
    data["peers"][2]["arrival"] = arrival
    msg = problems(data)[f"peers[2].arrival.{field}"]
    assert "'fast'" in msg and "join" in msg and "5000" in msg


def test_a_class_that_can_join_is_kept():
    data = tiny()
    data["peers"][2]["arrival"] = {"name": "poisson", "rate_per_s": 0.001}  # 5 expected
    assert load_scenario(data)
    data["peers"][2]["arrival"] = {"name": "flash_crowd", "start_s": 4000, "window_s": 10**5}
    assert load_scenario(data)  # each of 8 peers has a 1 % chance: 8 % that one does


TRACES = {
    "empty": (b"", "not a CSV table"),
    "header only": (b"join_s\n", "has 0 join times"),
    "too short": (b"join_s\n0\n1\n", "has 2 join times"),
    "text": (b"join_s\n" + b"1\n" * 7 + b"soon\n", "row 8 after the header"),
    "negative": (b"join_s\n" + b"1\n" * 7 + b"-1\n", "row 8 after the header"),
    "infinite": (b"join_s\n" + b"1\n" * 7 + b"inf\n", "row 8 after the header"),
    "blank cell": (b"join_s,x\n" + b"1,1\n" * 7 + b",1\n", "row 8 after the header"),
    "latin-1": ("join_s,caf\u00e9\n".encode("latin-1") + b"1,1\n" * 8, "not UTF-8"),
    "other column": (b"root:x:0:0:root:/root:/bin/bash\n1\n", "has no column 'join_s'"),
    "all too late": (b"join_s\n" + b"6000\n" * 8, "never joins"),
}


@pytest.mark.parametrize("case", sorted(TRACES))
def test_trace_files_are_read_and_checked_at_load_time(case, tmp_path):
    """Reproducer: trace CSVs were read only when the run started (an empty ``path:`` file
    crashed the engine). Nothing of the file is echoed."""
    content, expect = TRACES[case]
    (tmp_path / "joins.csv").write_bytes(content)
    data = tiny()
    data["peers"][1]["arrival"] = {"name": "trace", "path": "joins.csv"}
    msg = problems(data, base_dir=tmp_path)["peers[1].arrival.path"]
    assert expect in msg, msg
    assert "root:x" not in msg and "/bin/bash" not in msg


def test_a_good_trace_still_runs(tmp_path):
    (tmp_path / "joins.csv").write_text("join_s\n" + "".join(f"{k}\n" for k in range(8)))
    data = tiny()
    data["peers"][1]["arrival"] = {"name": "trace", "path": "joins.csv"}
    r = swarmsim.simulate(load_scenario(data, base_dir=tmp_path))
    assert r.manifest["status"] == "ok"
    assert sorted(r.peers[r.peers.peer_class == "slow"].join_s) == list(range(8))


@pytest.mark.parametrize(
    "path, value, what",
    [
        ("record.sample_every_s", 1e-7, "samples"),
        ("timers.tick_s", 1e-6, "ticks"),
        ("tracker.reannounce_interval_s", 1e-6, "re-announces"),
        ("choker.interval_s", 1e-7, "rounds"),
        ("incentive", {"name": "seeding_reward", "interval_s": 1e-6}, "rounds"),
    ],
)
def test_run_length_is_bounded(path, value, what):
    """Reproducer: ``record.sample_every_s=1e-7`` hung ``simulate()``."""
    data = _set(tiny(), path, value)
    with time_limit(10), pytest.raises(ScenarioError) as info:
        swarmsim.simulate(data)
    key = path if isinstance(value, float) else f"{path}.interval_s"
    msg = dict(info.value.problems)[key]
    assert what in msg and f"{MAX_EVENTS:,}" in msg
    n = 5000 / (value if isinstance(value, float) else value["interval_s"])
    assert f"{n:,.0f}" in msg  # the number it would make


def test_an_endless_run_is_refused():
    """Reproducer: ``max_time_s: .inf`` with ``all_done: false`` hung."""
    data = _set(tiny(), "stop", {"all_done": False, "max_time_s": math.inf})
    with time_limit(10):
        assert "finite" in problems(data)["stop.max_time_s"]
    data = _set(tiny(), "stop", {"all_done": False, "max_time_s": 1e12})
    assert "tracker.reannounce_interval_s" in problems(data)


SHIPPED = sorted(
    p
    for pattern in (
        "scenarios/*.yaml",
        "validation/*.yaml",
        "benchmarks/*.yaml",
        "examples/*.yaml",
        "tests/*.yaml",
    )
    for p in ROOT.glob(pattern)
    if p.name != "grid.yaml"
)


def test_every_shipped_scenario_still_loads_and_round_trips(monkeypatch):
    monkeypatch.chdir(ROOT)  # examples/ names its plug-ins from the repository's root
    assert len(SHIPPED) > 30
    for path in SHIPPED:
        sc = load_scenario(path)
        build_plugins(sc, str(path))
        assert load_scenario(sc.resolved()) == sc, path
    sweep = Sweep.load(ROOT / "sweeps" / "seed-question.yaml")
    assert sweep.runs


# --- 1. the fuzzer ----------------------------------------------------------------------------

SHIPPED_DATA = [(p, yaml.safe_load(p.read_text())) for p in SHIPPED]
PLUGIN_NAMES = sorted({n for r in REGISTRIES.values() for n in r.names()}) + [
    ".relative:C",
    "nosuch_module_zz:C",
    "json:JSONDecoder",
    "swarmsim.policies.pieces:RarestFirst",
    "tests.plugins:EveryoneChoker",
    "tests.plugins:Missing",
]
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, -1, 1, 7, 2**31, 2**63, 10**30, -(10**12)]),
    st.sampled_from([0.0, -0.0, 1e-300, 1e-7, 0.5, 1e300, math.inf, -math.inf, math.nan]),
    st.sampled_from(["", "x", "1e6", "2026-01-01", "..", "/abs", "a/b", "inf", "nan", "true"]),
    st.sampled_from(PLUGIN_NAMES),
    st.lists(st.integers(-3, 3), max_size=3),
    st.dictionaries(st.sampled_from(["name", "x", "rate_per_s"]), st.integers(), max_size=2),
    st.sampled_from(
        [
            {"name": "trace", "path": p}
            for p in ("empty.csv", "short.csv", "text.csv", "latin.csv", "ok.csv", "none.csv")
        ]
    ),
)
TEXT_FAULTS = [
    None,
    "duplicate line",
    "non-utf8",
    "truncate",
    "alias bomb",
    "deep",
    "recursive alias",
    "tab",
    "second document",
    "date",
    "on key",
]


@st.composite
def mutated_file(draw):
    """A shipped scenario, changed in 1-3 places, then maybe damaged as text."""
    _, original = draw(st.sampled_from(SHIPPED_DATA))
    data = copy.deepcopy(original)
    paths = list(_paths(data))
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(paths))
        node = data
        try:
            for key in path[:-1]:
                node = node[key]
            action = draw(st.sampled_from(["replace", "replace", "delete", "extra", "scale"]))
            if action == "replace":
                node[path[-1]] = draw(JUNK)
            elif action == "delete" and isinstance(node, dict):
                node.pop(path[-1], None)
            elif action == "scale" and isinstance(node[path[-1]], int | float):
                node[path[-1]] = node[path[-1]] * draw(st.sampled_from([-1, 0, 1e-9, 1e9]))
            elif isinstance(node, dict):
                node[draw(st.sampled_from(["bogus", "name", "count", "<<"]))] = draw(JUNK)
        except (KeyError, IndexError, TypeError):
            pass
    text = yaml.safe_dump(data, sort_keys=False)
    fault = draw(st.sampled_from(TEXT_FAULTS))
    lines = text.splitlines(keepends=True)
    if fault == "duplicate line":
        k = draw(st.integers(0, len(lines) - 1))
        lines.insert(k, lines[k])
    elif fault == "truncate":
        lines = lines[: draw(st.integers(0, len(lines)))]
    elif fault == "tab":
        lines.append("\tseed: 1\n")
    elif fault == "second document":
        lines.append("---\nname: x\n")
    elif fault == "date":
        lines.append("description: 2026-01-01\n")
    elif fault == "on key":
        lines.append("on: 1\n")
    elif fault == "alias bomb":
        lines = [ALIAS_BOMB, *lines, "description: *a8\n"]
    elif fault == "deep":
        n = draw(st.sampled_from([33, 400, 3000]))
        lines.append("description: " + "[" * n + "]" * n + "\n")
    elif fault == "recursive alias":
        lines.append("description: &r {a: *r}\n")
    body = "".join(lines).encode()
    if fault == "non-utf8":
        k = draw(st.integers(0, len(body)))
        body = body[:k] + b"\xe9\xff" + body[k:]
    return body


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "empty.csv").write_bytes(b"")
    (folder / "short.csv").write_text("join_s\n1\n")
    (folder / "text.csv").write_text("join_s\n" + "x\n" * 50)
    (folder / "latin.csv").write_bytes(b"join_s\n\xe9\n")
    (folder / "ok.csv").write_text("join_s\n" + "".join(f"{k}\n" for k in range(100)))
    return folder


def check_load(body: bytes, folder: Path) -> None:
    """``load_scenario`` (and ``swarmsim validate``'s plug-in build) returns or raises a
    ScenarioError naming each fault by path, within 5 s; never anything else."""
    path = folder / "s.yaml"
    path.write_bytes(body)
    t0 = time.perf_counter()
    with time_limit(5):
        try:
            sc = load_scenario(path)
            build_plugins(sc, str(path))
        except ScenarioError as exc:
            assert exc.problems
            for where, message in exc.problems:
                assert isinstance(where, str) and isinstance(message, str) and message
            return
    assert isinstance(sc, Scenario)
    assert time.perf_counter() - t0 < 5


FUZZ = dict(
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)


@settings(max_examples=250, **FUZZ)
@given(body=mutated_file())
def test_fuzzed_shipped_scenarios_load_or_raise_scenario_errors(body, fuzz_dir, monkeypatch):
    monkeypatch.chdir(ROOT)
    check_load(body, fuzz_dir)


@pytest.mark.slow
@settings(max_examples=4000, **FUZZ)
@given(body=mutated_file())
def test_fuzzed_shipped_scenarios_many(body, fuzz_dir, monkeypatch):
    monkeypatch.chdir(ROOT)
    check_load(body, fuzz_dir)


# --- 3. result folders ------------------------------------------------------------------------

HOLD = textwrap.dedent(
    """
    import sys, time
    from swarmsim.results import FolderLock
    FolderLock(sys.argv[1]).acquire()
    print("held", flush=True)
    time.sleep(60)
    """
)


@contextlib.contextmanager
def held_elsewhere(folder: Path):
    """Another process holding ``folder``'s lock."""
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert proc.stdout.readline().strip() == "held"
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_a_second_writer_fails_at_once(tmp_path):
    """Reproducer: two runs with the same ``--out`` silently overwrote each other."""
    out = tmp_path / "run"
    with held_elsewhere(out):
        t0 = time.perf_counter()
        with pytest.raises(ResultError, match="being written by another run") as info:
            swarmsim.simulate(tiny(), out=out)
        assert time.perf_counter() - t0 < 2 and "pid" in str(info.value)
        res = runner.invoke(app, ["run", str(write(tmp_path, TINY_YAML)), "--out", str(out)])
        assert res.exit_code == 1 and "being written by another run" in res.output
        assert not (out / "manifest.json").exists()
    swarmsim.simulate(tiny(), out=out)  # the holder died: its lock went with it
    assert Result.read(out).manifest["status"] == "ok"
    assert not (out / LOCK).exists()


SLOW_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import swarmsim
    from tests.conftest import TINY
    out, go = Path(sys.argv[1]), Path(sys.argv[2])
    def wait(t):
        if not go.exists():
            print("running", flush=True)
            deadline = time.time() + 30
            while not go.exists() and time.time() < deadline:
                time.sleep(0.05)
    swarmsim.simulate(TINY, out=out, seed=11, progress=wait)
    """
)


def test_two_concurrent_runs_the_second_is_refused(tmp_path):
    """Two real runs into one folder: the first finishes intact, the second is refused."""
    out, go = tmp_path / "run", tmp_path / "go"
    first = subprocess.Popen(
        [sys.executable, "-c", SLOW_WRITER, str(out), str(go)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert first.stdout.readline().strip() == "running"
        second = subprocess.run(
            [sys.executable, "-m", "swarmsim", "run", str(ROOT / "tests" / "tiny.yaml")]
            + ["--out", str(out), "--no-plot"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        assert second.returncode == 1, second.stderr
        assert "being written by another run" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        go.touch()
        first.wait(timeout=60)
    assert first.returncode == 0
    assert Result.read(out).manifest["seed"] == 11


def test_the_lock_goes_on_every_way_out(tmp_path):
    out = tmp_path / "run"

    def interrupt(t):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        swarmsim.simulate(tiny(), out=out, progress=interrupt)
    assert not (out / LOCK).exists()
    with pytest.raises(ScenarioError):
        swarmsim.simulate({**tiny(), "seed": -1}, out=out)
    (out / LOCK).write_text("pid 1 on a host that crashed")  # a lock file nobody holds
    swarmsim.simulate(tiny(), out=out)
    assert not (out / LOCK).exists()


def test_the_default_out_includes_the_seed(tmp_path, monkeypatch):
    """Reproducer: the default ``--out`` ignored the seed (``results/NAME``)."""
    path = write(tmp_path, TINY_YAML)
    monkeypatch.chdir(tmp_path)
    for extra in ([], ["--seed", "3"]):
        res = runner.invoke(app, ["run", str(path), "--no-plot", *extra])
        assert res.exit_code == 0, res.output
    assert Result.read(tmp_path / "results" / "tiny-seed7").manifest["seed"] == 7
    assert Result.read(tmp_path / "results" / "tiny-seed3").manifest["seed"] == 3


@pytest.mark.parametrize("name", ["..", ".", ".hidden", "../up", "/abs", "a/b", "a\\b", ""])
def test_names_are_confined_to_the_results_root(name, tmp_path):
    """Reproducer: ``name: ..`` wrote the manifest and tables into the current folder."""
    assert "name" in problems({**tiny(), "name": name})
    sweep = tmp_path / "sw.yaml"
    sweep.write_text(yaml.safe_dump({"name": name, "base": str(ROOT / "tests" / "tiny.yaml")}))
    with pytest.raises(ScenarioError, match="name"):
        Sweep.load(sweep)


def test_a_finished_result_is_replaced_only_with_force(tmp_path):
    out = tmp_path / "run"
    first = swarmsim.simulate(tiny(), out=out)
    before = (out / "manifest.json").read_text()
    with pytest.raises(ResultError, match="force"):
        swarmsim.simulate(tiny(), out=out, seed=8)
    assert (out / "manifest.json").read_text() == before
    path = write(tmp_path, TINY_YAML)
    res = runner.invoke(app, ["run", str(path), "--out", str(out), "--no-plot"])
    assert res.exit_code == 1 and "--force" in res.output
    assert (out / "manifest.json").read_text() == before
    res = runner.invoke(app, ["run", str(path), "--out", str(out), "--no-plot", "--force"])
    assert res.exit_code == 0, res.output
    assert Result.read(out).manifest["started_at"] >= first.manifest["started_at"]
    swarmsim.simulate(tiny(), out=out, seed=8, force=True)
    assert Result.read(out).manifest["seed"] == 8

    def boom(t):
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        swarmsim.simulate(tiny(), out=out, progress=boom, force=True)
    swarmsim.simulate(tiny(), out=out)  # a failed run's folder needs no force
    assert Result.read(out).manifest["status"] == "ok"


def test_stale_files_of_an_earlier_run_are_removed_first(tmp_path):
    """Reproducer: a failed run left the previous run's ``overview.*`` beside its failed
    manifest; two writers could leave a mixed folder."""
    out = tmp_path / "run"
    swarmsim.simulate(tiny(), out=out)
    stale = ["overview.png", "overview.pdf", "cdf.pdf", "extra.parquet", ".peers.parquet.tmp"]
    for name in [*stale, "notes.txt"]:
        (out / name).write_text("old")

    def boom(t):
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        swarmsim.simulate(tiny(), out=out, progress=boom, force=True)
    left = sorted(p.name for p in out.iterdir())
    assert left == ["manifest.json", "notes.txt"], left
    assert "failed" in (out / "manifest.json").read_text()


def test_a_folder_that_is_not_a_result_is_refused(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "data.parquet").write_text("not ours")
    (out / "sub").mkdir()
    with pytest.raises(ResultError, match="holds no swarmsim result"):
        swarmsim.simulate(tiny(), out=out, force=True)
    assert (out / "data.parquet").read_text() == "not ours"
    interrupted = tmp_path / "interrupted"  # a killed run: declared tables, no manifest
    interrupted.mkdir()
    (interrupted / "peers.parquet").write_text("partial")
    (interrupted / ".pieces.parquet.tmp").write_text("partial")
    (interrupted / LOCK).write_text("")
    swarmsim.simulate(tiny(), out=interrupted)
    assert Result.read(interrupted).manifest["status"] == "ok"
    sweep = tmp_path / "sweep"  # a sweep folder is not a run folder
    (sweep / "runs").mkdir(parents=True)
    (sweep / "summary.parquet").write_text("")
    with pytest.raises(ResultError, match="holds no swarmsim result"):
        swarmsim.simulate(tiny(), out=sweep)


def test_an_out_that_is_a_file_is_a_named_error(tmp_path):
    """Reproducer: an ``--out`` that is a file gave a raw traceback."""
    out = tmp_path / "file"
    out.write_text("x")
    with pytest.raises(ResultError, match="a file is in the way"):
        swarmsim.simulate(tiny(), out=out)
    res = runner.invoke(app, ["run", str(write(tmp_path, TINY_YAML)), "--out", str(out / "x")])
    assert res.exit_code == 1 and "a file is in the way" in res.output


def test_temp_files_go_on_every_way_out(tmp_path, monkeypatch):
    """Reproducer: ``.parquet.tmp`` files were left behind; a full disk gave a traceback."""
    import pandas as pd

    real = pd.DataFrame.to_parquet
    calls = []

    def full_disk(self, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 3:
            Path(path).write_bytes(b"PAR1 half")
            raise OSError(28, "No space left on device")
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", full_disk)
    out = tmp_path / "run"
    with pytest.raises(ResultError, match="No space left"):
        swarmsim.simulate(tiny(), out=out)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"]  # no tmp, no table
    with pytest.raises(ResultError, match="failed run"):
        Result.read(out)

    def interrupted(self, path, *args, **kwargs):
        Path(path).write_bytes(b"PAR1 half")
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_parquet", interrupted)
    with pytest.raises(KeyboardInterrupt):
        swarmsim.simulate(tiny(), out=out)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json"]
    monkeypatch.setattr(pd.DataFrame, "to_parquet", real)
    result = swarmsim.simulate(tiny())
    calls.clear()
    monkeypatch.setattr(pd.DataFrame, "to_parquet", full_disk)
    with pytest.raises(ResultError, match="No space left"):
        result.write(tmp_path / "written")  # Result.write on its own cleans up as well
    assert not list((tmp_path / "written").glob(".*.tmp"))


def test_figures_removed_as_stale_are_every_plot_kind():
    assert set(FIGURES) == set(plots.KINDS)


def test_claim_folder_releases_when_refused(tmp_path):
    out = tmp_path / "run"
    swarmsim.simulate(tiny(), out=out)
    with pytest.raises(ResultError):
        claim_folder(out)
    assert not (out / LOCK).exists()
    with claim_folder(out, force=True) as lock:
        assert (out / LOCK).exists() and lock.folder == out
        assert not (out / "manifest.json").exists()
        with FolderLock(out):  # re-entrant in the holding thread
            pass
        assert (out / LOCK).exists()
    assert not (out / LOCK).exists()


def test_a_second_sweep_into_one_folder_fails_at_once(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text(TINY_YAML)
    spec = tmp_path / "sw.yaml"
    spec.write_text(yaml.safe_dump({"name": "sw", "base": "base.yaml", "replications": 1}))
    sweep = Sweep.load(spec)
    out = tmp_path / "out"
    with held_elsewhere(out), pytest.raises(ResultError, match="another run"):
        run_sweep(sweep, out)
    assert run_sweep(sweep, out)["ran"] == 1
    assert run_sweep(sweep, out)["skipped"] == 1  # resuming skips it, as before
    assert not (out / LOCK).exists() and not (out / "runs" / "p000-r00" / LOCK).exists()


def test_a_sweep_reruns_a_changed_scenario_over_its_finished_runs(tmp_path):
    """A sweep decides itself what to re-run: a finished run whose scenario changed is
    replaced (simulate's force), not refused."""
    base = tmp_path / "base.yaml"
    base.write_text(TINY_YAML)
    spec = tmp_path / "sw.yaml"
    spec.write_text(yaml.safe_dump({"name": "sw", "base": "base.yaml", "replications": 2}))
    out = tmp_path / "out"
    assert run_sweep(Sweep.load(spec), out)["ran"] == 2
    base.write_text(TINY_YAML.replace("max_time_s: 5000", "max_time_s: 4000"))
    counts = run_sweep(Sweep.load(spec), out)
    assert counts == {"total": 2, "skipped": 0, "ran": 2, "failed": 0}


def test_cli_run_refusals_are_one_line_without_traceback(tmp_path):
    path = write(tmp_path, TINY_YAML)
    out = tmp_path / "run"
    assert runner.invoke(app, ["run", str(path), "--out", str(out), "--no-plot"]).exit_code == 0
    res = runner.invoke(app, ["run", str(path), "--out", str(out), "--no-plot"])
    assert res.exit_code == 1 and res.output.startswith("error:")
    assert isinstance(res.exception, SystemExit)
    assert os.path.isfile(out / "manifest.json")
