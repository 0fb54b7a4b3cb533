"""Redraw the README's figures: ``python3 docs/figures.py`` (about a minute on 2 cores).

- ``flash-crowd-cdf``: download-time CDF per class of ``scenarios/flash-crowd.yaml`` (seed 1)
  with the Kumar-Ross bound;
- ``seed-question``: the ``sweeps/seed-question.yaml`` sweep, mean seeding time and
  availability per incentive design with 95 % confidence intervals.

The sim-vs-live figures come from ``swarmsim validate`` (see the README's Live validation).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pandas as pd

import swarmsim
from swarmsim import plots
from swarmsim.sweep import Sweep, run_sweep

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def flash_crowd_cdf() -> None:
    result = swarmsim.simulate(ROOT / "scenarios" / "flash-crowd.yaml")
    fig = plots.figure("cdf", [result])
    legend = fig.axes[0].get_legend()  # into the empty middle, off the curves
    legend.set_loc("center left")
    legend.set_bbox_to_anchor((0.45, 0.55))
    plots.save(fig, HERE / "flash-crowd-cdf")


def seed_question() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run_sweep(Sweep.load(ROOT / "sweeps" / "seed-question.yaml"), Path(tmp), workers=2)
        table = pd.read_parquet(Path(tmp) / "summary.parquet")
    table = table[table.status == "ok"]
    table = table.assign(label=[json.loads(s)["name"] for s in table.incentive])
    fig, axes = plots.new_figure(2, 1, "double", 2.8)
    for ax, metric, ylabel in (
        (axes[0, 0], "mean_seeding_s", "mean seeding time (s)"),
        (axes[0, 1], "availability", "share of time with a full copy"),
    ):
        plots.plot_compare(ax, table, metric)
        ax.set_ylabel(ylabel)
        ax.set_xlabel("incentive design (3 replications, 95 % CI)")
    fig.suptitle("The seed question: decaying arrivals, peers seed while it pays")
    plots.save(fig, HERE / "seed-question")


if __name__ == "__main__":
    flash_crowd_cdf()
    seed_question()
