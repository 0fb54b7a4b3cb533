"""Shared fixtures: small scenarios that run in well under a second, invariants always on."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

import swarmsim
from swarmsim.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"

TINY = {
    "name": "tiny",
    "seed": 7,
    "torrent": {"file_bytes": 4 * 1024 * 1024, "piece_bytes": 262144},
    "peers": [
        {
            "class": "seed",
            "count": 1,
            "upload_bps": 200_000,
            "download_bps": 200_000,
            "starts_as": "seed",
        },
        {"class": "slow", "count": 8, "upload_bps": 25_000, "download_bps": 200_000},
        {"class": "fast", "count": 8, "upload_bps": 100_000, "download_bps": 400_000},
    ],
    "departure": {"name": "seed_for", "mean_s": 30, "distribution": "exponential"},
    "stop": {"all_done": True, "max_time_s": 5000},
    "record": {"sample_every_s": 5},
}


@pytest.fixture
def tiny() -> dict:
    return copy.deepcopy(TINY)


def run(data: dict, **kw) -> swarmsim.Result:
    """Simulate with every invariant checked at every sample (raises InvariantError)."""
    return swarmsim.simulate(data, check=True, **kw)


def assert_invariants_ok(result: swarmsim.Result) -> None:
    bad = {k: v for k, v in result.manifest["invariants"].items() if v != "ok"}
    assert not bad, bad
    assert result.manifest["status"] == "ok"


@pytest.fixture(scope="session")
def scenario_run():
    """``swarmsim.simulate`` of a shipped scenario (by name, with an optional seed and
    overrides), run once a session and shared by the tests that read it: the golden summary
    and a finding of the same run use one simulation. Callers must not modify the result."""
    done: dict[tuple, swarmsim.Result] = {}

    def get(name: str, seed: int | None = None, overrides: tuple[str, ...] = ()):
        path = SCENARIOS / f"{name}.yaml"
        if seed is None:
            seed = load_scenario(path).seed  # the scenario's own seed: the same run
        key = (name, seed, tuple(overrides))
        if key not in done:
            done[key] = swarmsim.simulate(path, seed=seed, overrides=list(overrides) or None)
        return done[key]

    return get
