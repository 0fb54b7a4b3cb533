"""Every scenario in scenarios/ reproduces its pinned summary (tests/golden/NAME.json).

A change of engine behaviour shows up here first. When the change is intended, regenerate
with ``SWARMSIM_UPDATE_GOLDEN=1 pytest tests/test_golden.py`` and say why in the commit.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

import swarmsim

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
GOLDEN = ROOT / "tests" / "golden"


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_matches_golden_summary(path):
    result = swarmsim.simulate(path)
    assert result.manifest["status"] == "ok", result.manifest["invariants"]
    summary = result.summary
    golden = GOLDEN / f"{path.stem}.json"
    if os.environ.get("SWARMSIM_UPDATE_GOLDEN"):
        golden.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    expected = json.loads(golden.read_text())
    assert set(summary) == set(expected)
    for key, want in expected.items():
        got = summary[key]
        if isinstance(want, float) and math.isnan(want):
            assert math.isnan(got), key
        else:
            assert got == pytest.approx(want, rel=1e-6, abs=1e-9), key
