"""Every scenario in scenarios/ reproduces its pinned summary (tests/golden/NAME.json).

A change of engine behaviour shows up here first. The default suite runs each scenario that
takes more than about a second at a smaller size (SMALL: fewer peers, a smaller file, shorter
horizons, the same policies) against tests/golden/small/NAME.json, and the rest at full size;
``-m slow`` runs the full-size scenarios the default suite shrinks. When a change is intended,
regenerate with ``SWARMSIM_UPDATE_GOLDEN=1 pytest tests/test_golden.py`` (the small goldens
and the full-size goldens of the cheap scenarios) and ``SWARMSIM_UPDATE_GOLDEN=1 pytest -m slow
tests/test_golden.py`` (the other full-size goldens), and say why in the commit.
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

# The seed question at a sixth of its size: the origin still leaves (after 600 s, not
# 1800 s) while arrivals still come (tau 700 s, not 2000 s), so availability can be lost and
# economic peers decide whether to seed on; 32 pieces, not 128.
SEED_QUESTION = [
    "peers[1].count=60",
    "torrent.file_bytes=8388608",
    "peers[0].departure.mean_s=600",
    "peers[1].arrival.tau_s=700",
    "stop.max_time_s=5000",
]
SMALL = {
    "bittyrant-mix": [  # 23 leechers, the 3 BitTyrant clients kept; 64 pieces
        "peers[1].count=4",
        "peers[2].count=8",
        "peers[3].count=5",
        "peers[5].count=3",
        "torrent.file_bytes=16777216",
    ],
    "block-tft-fairness": [  # 30 leechers in the same four classes
        "peers[1].count=6",
        "peers[2].count=12",
        "peers[3].count=8",
        "peers[4].count=4",
    ],
    "decaying-arrivals": [  # the origin leaves at 600 s, arrivals decay over 600 s
        "peers[1].count=100",
        "torrent.file_bytes=8388608",
        "peers[0].departure.mean_s=600",
        "peers[1].arrival.tau_s=600",
        "stop.max_time_s=5000",
    ],
    "flash-crowd": [  # 40 leechers in the same four classes; 64 pieces
        "peers[1].count=8",
        "peers[2].count=16",
        "peers[3].count=10",
        "peers[4].count=6",
        "torrent.file_bytes=16777216",
    ],
    "free-riders": [  # 30 % free riders still; 64 pieces
        "peers[1].count=21",
        "peers[2].count=9",
        "torrent.file_bytes=16777216",
    ],
    "poisson-steady": [  # 150 arrivals; the origin leaves at 800 s, inside the horizon
        "peers[1].count=150",
        "peers[0].departure.mean_s=800",
        "stop.max_time_s=2000",
    ],
    "scrip-crash": ["peers[1].count=20", "stop.max_time_s=3000"],
    **{
        f"seed-question-{d}": SEED_QUESTION
        for d in ("bid", "none", "pay_per_piece", "ratio_credit", "seeding_reward", "swap")
    },
}


def check_golden(result: swarmsim.Result, golden: Path) -> None:
    assert result.manifest["status"] == "ok", result.manifest["invariants"]
    summary = result.summary
    if os.environ.get("SWARMSIM_UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    expected = json.loads(golden.read_text())
    assert set(summary) == set(expected)
    for key, want in expected.items():
        got = summary[key]
        if isinstance(want, float) and math.isnan(want):
            assert math.isnan(got), key
        else:
            assert got == pytest.approx(want, rel=1e-6, abs=1e-9), key


def test_every_scenario_has_a_golden_and_every_shrunk_one_exists():
    assert set(SMALL) <= {p.stem for p in SCENARIOS}
    for path in SCENARIOS:
        assert (GOLDEN / f"{path.stem}.json").is_file(), path.stem
        if path.stem in SMALL:
            assert (GOLDEN / "small" / f"{path.stem}.json").is_file(), path.stem


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario_matches_golden_summary(path, scenario_run):
    """Shrunk where SMALL says so, else at full size (a run other tests may share)."""
    if path.stem in SMALL:
        result = swarmsim.simulate(path, overrides=SMALL[path.stem])
        check_golden(result, GOLDEN / "small" / f"{path.stem}.json")
    else:
        check_golden(scenario_run(path.stem), GOLDEN / f"{path.stem}.json")


SHRUNK = [p for p in SCENARIOS if p.stem in SMALL]


@pytest.mark.slow
@pytest.mark.parametrize("path", SHRUNK, ids=[p.stem for p in SHRUNK])
def test_full_size_scenario_matches_golden_summary(path, scenario_run):
    check_golden(scenario_run(path.stem), GOLDEN / f"{path.stem}.json")
