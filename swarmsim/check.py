"""Regression checks of incentive designs against stored baselines.

A baseline folder holds ``baseline.yaml`` (a scenario, overrides, replications, root seed and
the metrics to guard, each with a relative tolerance) and ``values.json`` (each metric's value
in every replication when the baseline was taken). ``check`` re-runs the replications and calls
a metric *moved* when its mean changed by more than its tolerance **and** a Welch t-test says
the change is not noise (p < ``alpha``); both must hold, so another seed alone does not trip it
and a real change that stays inside the tolerance is not flagged either.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from swarmsim.errors import ScenarioError, SwarmsimError
from swarmsim.safeyaml import read_yaml
from swarmsim.scenario import load_scenario
from swarmsim.sweep import seed_for


class MetricRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    tolerance: float = Field(..., gt=0, description="relative change of the mean allowed")


class BaselineSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    scenario: str
    overrides: list[str] = Field(default_factory=list)
    replications: int = Field(3, ge=2)
    root_seed: int = Field(0, ge=0)
    alpha: float = Field(0.05, gt=0, lt=1)
    metrics: dict[str, MetricRule]


@dataclass
class Verdict:
    metric: str
    baseline: float
    now: float
    change: float
    p_value: float
    tolerance: float
    moved: bool


def load_spec(folder: Path) -> BaselineSpec:
    path = folder / "baseline.yaml"
    if not path.is_file():
        raise SwarmsimError(f"{folder} has no baseline.yaml")
    try:
        return BaselineSpec.model_validate(read_yaml(path, "baseline"))
    except ValidationError as exc:
        raise ScenarioError([("", f"invalid {path}: {exc}")]) from None


def measure(
    folder: Path, spec: BaselineSpec, overrides: list[str] | None = None, seed_offset: int = 0
) -> tuple[dict[str, list[float]], str]:
    """Run the replications; return each guarded metric's values and the scenario hash."""
    from swarmsim.simulate import simulate

    scenario = load_scenario(
        folder / spec.scenario, overrides=[*spec.overrides, *(overrides or [])]
    )
    values: dict[str, list[float]] = {m: [] for m in spec.metrics}
    for r in range(spec.replications):
        result = simulate(scenario, seed=seed_for(spec.root_seed + seed_offset, 0, r))
        if result.manifest["status"] != "ok":
            raise SwarmsimError(f"replication {r} ended {result.manifest['status']}")
        for m in spec.metrics:
            if m not in result.summary:
                raise SwarmsimError(
                    f"metric {m!r} is not in the run summary; metrics: "
                    f"{', '.join(sorted(result.summary))}"
                )
            values[m].append(float(result.summary[m]))
    return values, scenario.digest()


def compare(
    spec: BaselineSpec, stored: dict[str, list[float]], now: dict[str, list[float]]
) -> list[Verdict]:
    from scipy import stats

    verdicts = []
    for m, rule in spec.metrics.items():
        a, b = np.asarray(stored[m], dtype=float), np.asarray(now[m], dtype=float)
        base, cur = float(np.mean(a)), float(np.mean(b))
        change = (cur - base) / abs(base) if base != 0 else (0.0 if cur == 0 else math.inf)
        if np.array_equal(a, b):
            p = 1.0
        elif a.std() == 0 and b.std() == 0:
            p = 0.0  # both constant and different: not noise
        else:
            p = float(stats.ttest_ind(a, b, equal_var=False).pvalue)
        moved = abs(change) > rule.tolerance and p < spec.alpha
        verdicts.append(Verdict(m, base, cur, change, p, rule.tolerance, moved))
    return verdicts


def check(
    folder: str | Path,
    *,
    update: bool = False,
    overrides: list[str] | None = None,
    seed_offset: int = 0,
) -> tuple[list[Verdict], bool]:
    """Re-run a baseline; returns (verdicts, scenario changed). ``update`` rewrites it."""
    folder = Path(folder)
    spec = load_spec(folder)
    now, digest = measure(folder, spec, overrides, seed_offset)
    store = folder / "values.json"
    if update or not store.is_file():
        store.write_text(
            json.dumps({"scenario_hash": digest, "values": now}, indent=2, sort_keys=True) + "\n"
        )
        return compare(spec, now, now), False
    saved = json.loads(store.read_text())
    return compare(spec, saved["values"], now), saved["scenario_hash"] != digest
