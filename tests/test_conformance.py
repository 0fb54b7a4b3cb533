"""Every registered plug-in builds from its defaults, runs a tiny swarm with the invariants
on, and is deterministic (Gymnasium's one-test-for-every-registered-environment idea)."""

from __future__ import annotations

import copy

import pandas as pd
import pytest

import swarmsim
from swarmsim.policies import ARRIVALS, BANDWIDTH, CHOKERS, DEPARTURES, INCENTIVES, PICKERS
from tests.conftest import TINY, assert_invariants_ok

REQUIRED = {  # plug-ins whose parameters have no defaults get the smallest sensible values
    ("arrival", "poisson"): {"rate_per_s": 0.5},
    ("arrival", "decaying"): {"lambda0_per_s": 0.5, "tau_s": 30},
    ("departure", "seed_for"): {"mean_s": 20},
    ("departure", "seed_to_ratio"): {"ratio": 0.5, "max_s": 200},
    ("departure", "wealth_threshold"): {"target_tokens": 60},
    ("departure", "economic"): {"max_s": 300},
}


def cases():
    for registry, where in (
        (CHOKERS, "choker"),
        (PICKERS, "picker"),
        (BANDWIDTH, "bandwidth"),
        (DEPARTURES, "departure"),
        (ARRIVALS, "arrival"),
        (INCENTIVES, "incentive"),
    ):
        for name in registry.names():
            if (registry.kind, name) == ("arrival", "trace"):
                continue  # needs a file: covered in test_scenario / test_engine
            yield pytest.param(registry.kind, where, name, id=f"{registry.kind}:{name}")


def scenario(kind, where, name):
    data = copy.deepcopy(TINY)
    for pc in data["peers"][1:]:  # tokens to spend and a cost of staying, so economies move
        pc["tokens"] = {"mean": 50, "distribution": "exponential"}
        pc["seeding_cost_per_hour"] = {"mean": 5}
    block = {"name": name, **REQUIRED.get((kind, name), {})}
    if where == "arrival":
        data["peers"][1]["arrival"] = block
    else:
        data[where] = block
    return data


@pytest.mark.parametrize(("kind", "where", "name"), list(cases()))
def test_plugin_conforms(kind, where, name):
    data = scenario(kind, where, name)
    a = swarmsim.simulate(data, check=True)
    assert_invariants_ok(a)
    assert a.summary["completed"] + a.summary["aborted"] >= 1
    b = swarmsim.simulate(data, check=True)
    for table in ("peers", "timeseries", "pieces", "transfers"):
        pd.testing.assert_frame_equal(a.table(table), b.table(table))


def test_user_plugin_by_module_path():
    data = copy.deepcopy(TINY)
    data["choker"] = {"name": "tests.plugins:EveryoneChoker", "unchoke_slots": 2}
    r = swarmsim.simulate(data, check=True)
    assert_invariants_ok(r)
    assert r.manifest["scenario"]["choker"]["name"] == "tests.plugins:EveryoneChoker"
