"""The validation grid: many small scenarios, each run live on libtorrent and in the simulator,
compared case by case and for the trends between cases.

A grid file names its cases (scenario files beside it), the trends to compare (how the median
moves from one case to another, in the simulator and live) and the tolerances:

```yaml
cases: [n05.yaml, n10.yaml, ...]
trends:
  - {name: "leechers 5 -> 40", from: n05, to: n40}
tolerance: {median: 0.05, mean_median: 0.03, last: 0.08, trend: 0.05}
```

Live runs are kept beside the grid file (``live/CASE/live-K``) and reused while their live
experiment is unchanged, since they take minutes each and do not depend on the simulator.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from swarmsim.analysis.metrics import download_times, seed_copies
from swarmsim.errors import ResultError, ScenarioError
from swarmsim.live.settings import live_digest
from swarmsim.results import Result
from swarmsim.scenario import Scenario, load_scenario


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Trend(_Model):
    name: str
    start: str = Field(..., alias="from", description="case whose median is the baseline")
    end: str = Field(..., alias="to", description="case compared with it")


class Tolerance(_Model):
    median: float = Field(0.05, gt=0, description="|median error| of every case")
    mean_median: float = Field(0.03, gt=0, description="mean |median error| over the cases")
    last: float = Field(0.08, gt=0, description="|last-completion error| of every case")
    trend: float = Field(0.05, gt=0, description="sim and live change of a trend, in points")


class Grid(_Model):
    cases: list[str] = Field(..., min_length=1)
    trends: list[Trend] = Field(default_factory=list)
    tolerance: Tolerance = Field(default_factory=Tolerance)


def load_grid(path: Path) -> tuple[Grid, dict[str, Scenario]]:
    """The grid and its scenarios by case name; every fault a ``ScenarioError``."""
    try:
        grid = Grid.model_validate(yaml.safe_load(path.read_text()))
    except (yaml.YAMLError, ValidationError) as exc:
        raise ScenarioError([("", f"not a validation grid: {exc}")], str(path)) from None
    cases = {}
    for name in grid.cases:
        sc = load_scenario(path.parent / name)
        cases[sc.name] = sc
    for t in grid.trends:
        for end in (t.start, t.end):
            if end not in cases:
                raise ScenarioError(
                    [("trends", f"{t.name!r} names case {end!r}; cases: {', '.join(cases)}")],
                    str(path),
                )
    return grid, cases


def stored_live_runs(folder: Path, sc: Scenario) -> list[Result]:
    """Live runs of this live experiment kept in ``folder`` (``live-K``), whatever their seed
    and whatever the simulator-only parts of the scenario they were run with."""
    runs = []
    want = live_digest(sc)
    paths = [p for p in folder.glob("live-*") if _run_index(p) is not None]
    for path in sorted(paths, key=_run_index):
        try:
            r = Result.read(path, allow_failed=True)
            same = live_digest(load_scenario(r.manifest["scenario"])) == want
        except (ResultError, ScenarioError, KeyError):
            continue
        if same and r.manifest.get("status") in ("ok", "invalid"):
            runs.append(r)
    return runs


def _run_index(path: Path) -> int | None:
    tail = path.name.removeprefix("live-")
    return int(tail) if tail.isdigit() else None


def next_run_index(folder: Path) -> int:
    """The first ``live-K`` index no folder uses yet (runs of older scenarios are kept)."""
    used = [_run_index(p) for p in folder.glob("live-*")]
    return max((k + 1 for k in used if k is not None), default=0)


def usable(run: Result) -> bool:
    """A live run counts when its caps held (``excess``) and nothing else competed for the
    host's CPU; a seed that was not busy enough is reported, not fatal, since a seed can be
    short of demand."""
    peers = run.manifest.get("rates", {}).get("peers", {})
    idle = run.manifest.get("host", {}).get("ok", True)
    return idle and all(p["excess"] <= 1.05 for p in peers.values())


def _runs_stats(results: list[Result], file_bytes: int) -> dict:
    med = np.array([np.median(download_times(r.peers)) for r in results])
    last = np.array([r.peers["complete_s"].max() for r in results])
    copies = np.array([seed_copies(r.peers, file_bytes) for r in results])
    per_peer = pd.concat(
        [
            (r.peers.complete_s - r.peers.join_s)[~r.peers.starts_as_seed].set_axis(
                r.peers.peer_id[~r.peers.starts_as_seed]
            )
            for r in results
        ],
        axis=1,
    ).mean(axis=1)
    return {"median": med, "last": last, "copies": copies, "per_peer": per_peer}


def case_row(name: str, sims: list[Result], lives: list[Result], file_bytes: int) -> dict:
    """One line of the grid table."""
    s, v = _runs_stats(sims, file_bytes), _runs_stats(lives, file_bytes)
    common = s["per_peer"].index.intersection(v["per_peer"].index)
    per = (s["per_peer"][common] / v["per_peer"][common] - 1.0).abs()
    return {
        "case": name,
        "live_runs": len(lives),
        "sim_runs": len(sims),
        "median_sim_s": float(s["median"].mean()),
        "median_live_s": float(v["median"].mean()),
        "median_error": float(s["median"].mean() / v["median"].mean() - 1.0),
        "last_sim_s": float(s["last"].mean()),
        "last_live_s": float(v["last"].mean()),
        "last_error": float(s["last"].mean() / v["last"].mean() - 1.0),
        "per_peer_error": float(per.median()) if len(per) else float("nan"),
        "live_spread": float(v["median"].std(ddof=1) / v["median"].mean())
        if len(lives) > 1
        else float("nan"),
        "seed_copies_sim": float(s["copies"].mean()),
        "seed_copies_live": float(v["copies"].mean()),
    }


def verdict(grid: Grid, rows: list[dict]) -> dict:
    """Every claim the grid makes, each with its figure and whether it holds."""
    tol = grid.tolerance
    by = {r["case"]: r for r in rows}
    checks = []
    for r in rows:
        checks.append(
            {
                "check": f"{r['case']}: |median error| <= {tol.median:.0%}",
                "value": r["median_error"],
                "ok": abs(r["median_error"]) <= tol.median,
            }
        )
        checks.append(
            {
                "check": f"{r['case']}: |last-completion error| <= {tol.last:.0%}",
                "value": r["last_error"],
                "ok": abs(r["last_error"]) <= tol.last,
            }
        )
    mean = float(np.mean([abs(r["median_error"]) for r in rows]))
    checks.append(
        {
            "check": f"mean |median error| <= {tol.mean_median:.0%}",
            "value": mean,
            "ok": mean <= tol.mean_median,
        }
    )
    trends = []
    for t in grid.trends:
        if t.start not in by or t.end not in by:
            continue
        a, b = by[t.start], by[t.end]
        live = b["median_live_s"] / a["median_live_s"] - 1.0
        sim = b["median_sim_s"] / a["median_sim_s"] - 1.0
        ok = (np.sign(live) == np.sign(sim) or abs(live) < 0.01) and abs(sim - live) <= tol.trend
        trends.append({"trend": t.name, "live": live, "sim": sim, "ok": bool(ok)})
        checks.append(
            {
                "check": f"{t.name}: sim moves as live, within {tol.trend * 100:.0f} points",
                "value": sim - live,
                "ok": bool(ok),
            }
        )
    return {"checks": checks, "trends": trends, "ok": all(c["ok"] for c in checks)}


def markdown_table(rows: list[dict]) -> str:
    head = (
        "| case | live runs | median sim / live (s) | error | last sim / live (s) | error "
        "| per-peer error | live spread | seed copies sim / live |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
    )
    lines = [
        f"| `{r['case']}` | {r['live_runs']} | {r['median_sim_s']:.1f} / {r['median_live_s']:.1f} "
        f"| {r['median_error']:+.1%} | {r['last_sim_s']:.1f} / {r['last_live_s']:.1f} "
        f"| {r['last_error']:+.1%} | {r['per_peer_error']:.1%} | {r['live_spread']:.1%} "
        f"| {r['seed_copies_sim']:.2f} / {r['seed_copies_live']:.2f} |"
        for r in rows
    ]
    return head + "\n".join(lines) + "\n"


def run_grid(path: Path, sim_runs: int, live_runs: int = 0, on_case=None, warn=print):
    """Compare every case: its stored live runs (``live/CASE`` beside the grid), topped up to
    ``live_runs`` with new ones, against ``sim_runs`` simulator seeds. Returns the grid, one
    row per case that has a live run, and each case's (simulator, live) results."""
    from swarmsim.live.settings import check_live
    from swarmsim.simulate import simulate

    grid, cases = load_grid(path)
    for sc in cases.values():
        check_live(sc)
    rows, runs = [], {}
    for name, sc in cases.items():
        folder = path.parent / "live" / name
        lives = [r for r in stored_live_runs(folder, sc) if usable(r)]
        k, attempts = next_run_index(folder), 0
        while len(lives) < live_runs and attempts < 2 * live_runs:
            from swarmsim.live.harness import run_live  # needs libtorrent

            r = run_live(sc, seed=sc.seed + k, out=folder / f"live-{k}")
            if usable(r):
                lives.append(r)
            else:
                warn(f"{name}: live run {k} is left out: {r.manifest.get('error')}")
            k, attempts = k + 1, attempts + 1
        if not lives:
            warn(f"{name}: no live run to compare with (use --live-runs)")
            continue
        sims = [simulate(sc, seed=sc.seed + j) for j in range(sim_runs)]
        rows.append(case_row(name, sims, lives, sc.torrent.file_bytes))
        runs[name] = (sims, lives)
        if on_case is not None:
            on_case(rows[-1])
    return grid, rows, runs


def write_report(out: Path, grid: Grid, rows: list[dict]) -> dict:
    report = {"cases": rows, **verdict(grid, rows)}
    (out / "grid.json").write_text(json.dumps(report, indent=2))
    (out / "grid.md").write_text(markdown_table(rows))
    return report
