"""Parameter sweeps: a base scenario x a grid (and zipped lists) of dotted-path overrides x N
replications, run on local processes or a Dask cluster, resumable, summarised as tidy tables.

Seeds come from one root ``SeedSequence``, keyed by (point, replication), never by worker
order, so any number of workers gives identical summaries. A run whose folder already holds
an ``ok`` manifest for the same scenario hash and seed is skipped; failed runs are retried.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from swarmsim.errors import ScenarioError, SwarmsimError
from swarmsim.results import FolderLock
from swarmsim.safeyaml import read_yaml
from swarmsim.scenario import NAME_PATTERN, Scenario, apply_values, load_scenario


class SweepSpec(BaseModel):
    """A sweep file: ``base`` scenario path (relative to the sweep file) plus what to vary."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(..., pattern=NAME_PATTERN, max_length=100)
    base: str
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="cartesian product")
    zip: dict[str, list[Any]] = Field(default_factory=dict, description="varied together")
    replications: int = Field(1, ge=1)
    root_seed: int = Field(0, ge=0)
    metrics: list[str] | None = Field(
        None, description="summary metrics to aggregate (default: all)"
    )

    @model_validator(mode="after")
    def _zip_lengths(self):
        lengths = {len(v) for v in self.zip.values()}
        if len(lengths) > 1:
            raise ValueError(f"zip lists must have one length, got {sorted(lengths)}")
        for path, values in {**self.grid, **self.zip}.items():
            if not values:
                raise ValueError(f"{path}: give at least one value")
        return self


@dataclass
class Run:
    run_id: str
    point: int
    replication: int
    seed: int
    params: dict[str, Any]
    scenario: Scenario = field(repr=False)


@dataclass
class Sweep:
    spec: SweepSpec
    base_path: Path
    runs: list[Run]

    @classmethod
    def load(cls, path: str | Path) -> Sweep:
        path = Path(path)
        raw = read_yaml(path, "sweep")
        try:
            spec = SweepSpec.model_validate(raw)
        except ValidationError as exc:
            raise ScenarioError([("", f"invalid sweep file {path}: {exc}")]) from None
        base = (path.parent / spec.base).resolve()
        return cls(spec, base, plan(spec, base))


def points(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every combination: the grid's product, each with every row of the zipped lists."""
    grid_keys = list(spec.grid)
    combos = [
        dict(zip(grid_keys, values, strict=True))
        for values in itertools.product(*(spec.grid[k] for k in grid_keys))
    ] or [{}]
    n_zip = len(next(iter(spec.zip.values()))) if spec.zip else 0
    rows = [{k: v[i] for k, v in spec.zip.items()} for i in range(n_zip)] or [{}]
    return [{**c, **r} for c in combos for r in rows]


def seed_for(root_seed: int, point: int, replication: int) -> int:
    """A scenario seed from the root SeedSequence and the run's (point, replication)."""
    ss = np.random.SeedSequence(root_seed, spawn_key=(point, replication))
    return int(ss.generate_state(1, dtype=np.uint32)[0])


def plan(spec: SweepSpec, base: Path) -> list[Run]:
    """Validate every point before anything runs; errors name the point and the field."""
    raw = read_yaml(base) if base.is_file() else None
    if not isinstance(raw, dict):
        raise ScenarioError([("base", f"{str(base)!r} is not a scenario file")])
    runs, problems = [], []
    for k, params in enumerate(points(spec)):
        try:
            scenario = load_scenario(apply_values(raw, params), base_dir=base.parent)
        except ScenarioError as exc:
            problems.extend((f"point {k} {params}: {p}", m) for p, m in exc.problems)
            continue
        for r in range(spec.replications):
            seed = seed_for(spec.root_seed, k, r)
            runs.append(Run(f"p{k:03d}-r{r:02d}", k, r, seed, params, scenario.with_seed(seed)))
    if problems:
        raise ScenarioError(problems, f"sweep {spec.name}")
    return runs


def _execute(scenario_data: dict, seed: int, out: str) -> dict:
    """One run in a worker process: simulate into ``out``, return its manifest essentials."""
    from swarmsim.simulate import simulate

    try:
        # force: the sweep itself decides what to re-run (failed runs, or ones whose
        # scenario or seed changed); its finished runs are skipped before this
        result = simulate(scenario_data, seed=seed, out=out, force=True)
        m = result.manifest
        return {
            "status": m["status"],
            "summary": m["summary"],
            "error": None,
            "wall_time_s": m["wall_time_s"],
        }
    except Exception as exc:  # recorded, and retried on the next run of the sweep
        return {
            "status": "failed",
            "summary": {},
            "error": f"{type(exc).__name__}: {exc}",
            "wall_time_s": math.nan,
        }


def finished(run: Run, folder: Path) -> dict | None:
    """The stored outcome of a run if it finished ok with this very scenario and seed."""
    mpath = folder / "manifest.json"
    if not mpath.is_file():
        return None
    m = json.loads(mpath.read_text())
    if (
        m.get("status") == "ok"
        and m.get("scenario_hash") == run.scenario.digest()
        and m.get("seed") == run.seed
    ):
        return {
            "status": "ok",
            "summary": m["summary"],
            "error": None,
            "wall_time_s": m["wall_time_s"],
        }
    return None


def run_sweep(
    sweep: Sweep,
    out_dir: str | Path,
    *,
    workers: int = 1,
    scheduler: str | None = None,
    dask_local: bool = False,
    progress: Callable[[int, int, int], None] | None = None,
) -> dict:
    """Run what is not finished yet; write ``summary.parquet`` and ``aggregate.parquet``.
    Returns counts: total, skipped, ran, failed."""
    out = Path(out_dir)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    with FolderLock(out):  # a second sweep into the same folder fails at once
        return _run_sweep(sweep, out, workers, scheduler, dask_local, progress)


def _run_sweep(sweep: Sweep, out: Path, workers, scheduler, dask_local, progress) -> dict:
    (out / "sweep.json").write_text(json.dumps(sweep.spec.model_dump(mode="json"), indent=2))
    outcomes: dict[str, dict] = {}
    todo = []
    for run in sweep.runs:
        done = finished(run, out / "runs" / run.run_id)
        if done is None:
            todo.append(run)
        else:
            outcomes[run.run_id] = done
    skipped = len(outcomes)
    failed = 0

    def record(run: Run, res: dict) -> None:
        nonlocal failed
        outcomes[run.run_id] = res
        failed += res["status"] != "ok"
        if progress:
            progress(len(outcomes), failed, len(sweep.runs) - len(outcomes))

    args = [
        (run, (run.scenario.resolved(), run.seed, str(out / "runs" / run.run_id))) for run in todo
    ]
    if scheduler or dask_local:
        _run_dask(args, record, workers, scheduler)
    elif workers > 1 and len(args) > 1:
        _run_pool(args, record, workers)
    else:
        for run, a in args:
            record(run, _execute(*a))
    summary = summary_table(sweep, outcomes)
    summary.to_parquet(out / "summary.parquet", index=False)
    params = [*sweep.spec.grid, *sweep.spec.zip]
    aggregate(summary, params, sweep.spec.metrics).to_parquet(
        out / "aggregate.parquet", index=False
    )
    return {"total": len(sweep.runs), "skipped": skipped, "ran": len(todo), "failed": failed}


def _run_pool(args, record, workers: int) -> None:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as pool:
        futures = {pool.submit(_execute, *a): run for run, a in args}
        for fut in as_completed(futures):
            record(futures[fut], fut.result())


def _run_dask(args, record, workers: int, scheduler: str | None) -> None:
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError as exc:
        raise SwarmsimError(
            "Dask sweeps need the dask extra: pip install 'swarmsim[dask]'"
        ) from exc
    cluster = None
    if scheduler:
        client = Client(scheduler)
    else:
        cluster = LocalCluster(
            n_workers=max(workers, 1), threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = Client(cluster)
    try:
        futures = {client.submit(_execute, *a, pure=False): run for run, a in args}
        for fut in as_completed(futures):
            record(futures[fut], fut.result())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def summary_table(sweep: Sweep, outcomes: dict[str, dict]) -> pd.DataFrame:
    """One row per run: run id, point, replication, seed, parameters, status, metrics."""
    rows = []
    for run in sweep.runs:
        res = outcomes.get(run.run_id, {"status": "missing", "summary": {}, "error": None})
        rows.append(
            {
                "run_id": run.run_id,
                "point": run.point,
                "replication": run.replication,
                "seed": run.seed,
                **{k: _cell(v) for k, v in run.params.items()},
                "scenario_hash": run.scenario.digest(),
                "status": res["status"],
                "error": res.get("error"),
                **{k: v for k, v in res["summary"].items() if isinstance(v, int | float)},
            }
        )
    return pd.DataFrame(rows).sort_values("run_id", ignore_index=True)


def _cell(value: Any) -> Any:
    return (
        value if isinstance(value, int | float | str | bool) else json.dumps(value, sort_keys=True)
    )


def aggregate(
    summary: pd.DataFrame, params: list[str], metrics: list[str] | None = None
) -> pd.DataFrame:
    """Per grid point: mean, 95 % confidence half-width (t distribution) and n of each metric."""
    from scipy import stats

    ok = summary[summary["status"] == "ok"]
    fixed = {"run_id", "point", "replication", "seed", "scenario_hash", "status", "error", *params}
    numeric = [c for c in ok.columns if c not in fixed and pd.api.types.is_numeric_dtype(ok[c])]
    metrics = [m for m in (metrics or numeric) if m in ok]
    rows = []
    for point, g in ok.groupby("point", sort=True):
        row = {"point": point, **{p: g[p].iloc[0] for p in params}, "n": len(g)}
        for m in metrics:
            v = g[m].dropna().to_numpy(dtype=float)
            row[f"{m}_mean"] = v.mean() if v.size else math.nan
            row[f"{m}_ci95"] = (
                stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)
                if v.size > 1
                else math.nan
            )
        rows.append(row)
    return pd.DataFrame(rows)
