"""Redraw the README's figures with the ``swarmsim`` command, as a reader would:
``python3 docs/figures.py`` (a minute or two on 2 cores; finished sweep runs are reused).

- ``flash-crowd-cdf``: download-time CDF per class of ``scenarios/flash-crowd.yaml`` (seed 1)
  with the Kumar-Ross bound (``swarmsim run`` then ``swarmsim plot --kind cdf``);
- ``seed-question``: the ``sweeps/seed-question.yaml`` sweep, mean seeding time and
  availability per incentive design with 95 % confidence intervals (``swarmsim sweep`` then
  ``swarmsim plot SWEEP --kind compare``). The sweep's summary is also stored in
  ``notebooks/data/seed-question/`` for the notebook that compares designs from it.

The sim-vs-live figures come from ``swarmsim validate`` (see the README's Live validation).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = ROOT / "results"


def swarmsim(*args: str) -> None:
    """Run one ``swarmsim`` command from the repository root; stop on failure."""
    print("$ swarmsim", " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "swarmsim", *args], cwd=ROOT, check=True)


def flash_crowd_cdf() -> None:
    run = RESULTS / "flash-crowd"
    swarmsim("run", "scenarios/flash-crowd.yaml", "--out", str(run), "--no-plot", "--force")
    swarmsim("plot", str(run), "--kind", "cdf", "--out", str(HERE / "flash-crowd-cdf"))


def seed_question() -> None:
    sweep = RESULTS / "sweeps" / "seed-question"
    swarmsim("sweep", "sweeps/seed-question.yaml", "--workers", "2", "--out", str(sweep))
    swarmsim(
        "plot",
        str(sweep),
        "--kind",
        "compare",
        "--metric",
        "mean_seeding_s,availability",
        "--out",
        str(HERE / "seed-question"),
    )
    stored = ROOT / "notebooks" / "data" / "seed-question"
    stored.mkdir(parents=True, exist_ok=True)
    for name in ("sweep.json", "summary.parquet", "aggregate.parquet"):
        shutil.copyfile(sweep / name, stored / name)


if __name__ == "__main__":
    flash_crowd_cdf()
    seed_question()
