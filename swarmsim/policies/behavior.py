"""Peer behaviour: when peers arrive and when they leave.

Arrival processes turn a class's ``count`` into join times (``join_times(count, rng)``);
departure rules decide how long a peer seeds after completing (``seeding_time_s``), may end
seeding early (``done_seeding``, polled at every rechoke) and give the abort rate theta of
Qiu & Srikant's fluid model (a leecher gives up after an exponential time of rate theta).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from swarmsim.api import Arrival, Departure, SeedingState
from swarmsim.registry import Registry

ARRIVALS = Registry("arrival", "when the peers of a class join")
DEPARTURES = Registry("departure", "when a peer leaves")


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@ARRIVALS.register("flash_crowd")
class FlashCrowd(Arrival):
    """Everyone at once at ``start_s`` (or uniformly spread over ``window_s``)."""

    class Params(_Params):
        start_s: float = Field(0.0, ge=0)
        window_s: float = Field(0.0, ge=0, description="spread joins uniformly over this window")

    def __init__(self, params: Params):
        self.params = params

    def join_times(self, count: int, rng: np.random.Generator) -> np.ndarray:
        p = self.params
        if p.window_s == 0:
            return np.full(count, p.start_s)
        return np.sort(p.start_s + rng.uniform(0.0, p.window_s, count))


@ARRIVALS.register("poisson")
class Poisson(Arrival):
    """A Poisson process of rate ``rate_per_s`` until the class's ``count`` peers have joined."""

    class Params(_Params):
        rate_per_s: float = Field(..., gt=0)
        start_s: float = Field(0.0, ge=0)

    def __init__(self, params: Params):
        self.params = params

    def join_times(self, count: int, rng: np.random.Generator) -> np.ndarray:
        return self.params.start_s + np.cumsum(rng.exponential(1.0 / self.params.rate_per_s, count))


@ARRIVALS.register("decaying")
class Decaying(Arrival):
    """Poisson arrivals of rate lambda0 * exp(-t / tau) (Guo et al. IMC 2005).

    Exact: the unit-rate points E_k map through the inverse of the integrated rate
    Lambda(t) = lambda0 tau (1 - exp(-t/tau)); only lambda0 tau arrivals are expected in all,
    so fewer than ``count`` peers may join.
    """

    class Params(_Params):
        lambda0_per_s: float = Field(..., gt=0)
        tau_s: float = Field(..., gt=0)
        start_s: float = Field(0.0, ge=0)

    def __init__(self, params: Params):
        self.params = params

    def join_times(self, count: int, rng: np.random.Generator) -> np.ndarray:
        p = self.params
        total = p.lambda0_per_s * p.tau_s
        e = np.cumsum(rng.exponential(1.0, count))
        e = e[e < total]
        return p.start_s - p.tau_s * np.log1p(-e / total)


@ARRIVALS.register("trace")
class Trace(Arrival):
    """Join times read from a CSV file's column (path relative to the scenario file)."""

    class Params(_Params):
        path: str
        column: str = "join_s"

        @field_validator("path")
        @classmethod
        def _resolve(cls, v: str, info: ValidationInfo) -> str:
            base = (info.context or {}).get("base_dir")
            path = Path(v)
            if not path.is_absolute() and base is not None:
                path = Path(base) / path
            if not path.is_file():
                raise ValueError(f"trace file {str(path)!r} does not exist")
            return str(path.resolve())

    def __init__(self, params: Params):
        self.params = params

    def join_times(self, count: int, rng: np.random.Generator) -> np.ndarray:
        frame = pd.read_csv(self.params.path)
        if self.params.column not in frame:
            raise ValueError(
                f"trace {self.params.path!r} has no column {self.params.column!r}; "
                f"columns: {', '.join(frame.columns)}"
            )
        times = np.sort(frame[self.params.column].to_numpy(dtype=float))
        if len(times) < count or np.isnan(times).any() or (times < 0).any():
            raise ValueError(
                f"trace {self.params.path!r} needs {count} non-negative join times, "
                f"has {len(times)} rows"
            )
        return times[:count]


class DepartureParams(_Params):
    abort_rate_per_s: float = Field(
        0.0, ge=0, description="leechers give up at this rate (theta, Qiu & Srikant)"
    )


class _Departure(Departure):
    """The built-in rules' frame: a leecher's abort rate is a parameter of every rule."""

    def __init__(self, params: DepartureParams):
        super().__init__(params)
        self.abort_rate_per_s = params.abort_rate_per_s


@DEPARTURES.register("leave")
class Leave(_Departure):
    """Leave the moment the download completes: the free-riding norm token incentives fight."""

    Params = DepartureParams

    def seeding_time_s(self, rng: np.random.Generator) -> float:
        return 0.0


@DEPARTURES.register("stay")
class Stay(_Departure):
    """Seed until the end of the run (the default for classes that start as seeds)."""

    Params = DepartureParams


@DEPARTURES.register("seed_for")
class SeedFor(_Departure):
    """Seed for a fixed or exponentially distributed time (gamma = 1 / mean_s in the fluid model)."""

    class Params(DepartureParams):
        mean_s: float = Field(..., ge=0)
        distribution: Literal["fixed", "exponential"] = "exponential"

    def seeding_time_s(self, rng: np.random.Generator) -> float:
        p = self.params
        if p.distribution == "fixed" or p.mean_s == 0:
            return p.mean_s
        return float(rng.exponential(p.mean_s))


@DEPARTURES.register("seed_to_ratio")
class SeedToRatio(_Departure):
    """Seed until uploaded / downloaded reaches ``ratio`` (a private-tracker habit), or ``max_s``."""

    class Params(DepartureParams):
        ratio: float = Field(..., gt=0)
        max_s: float = Field(math.inf, gt=0, description="give up seeding after this long")

    def seeding_time_s(self, rng: np.random.Generator) -> float:
        return self.params.max_s

    def done_seeding(self, state: SeedingState) -> bool:
        return (
            state.downloaded_bytes > 0
            and state.uploaded_bytes >= self.params.ratio * state.downloaded_bytes
        )


@DEPARTURES.register("economic")
class Economic(_Departure):
    """Stay seeding while seeding pays: leave once the recent reward rate (an exponential
    average over ``window_s`` of tokens earned) has stayed below the peer's own cost of
    staying online (its class's ``seeding_cost_per_hour``) for ``patience_s``. Always seeds
    at least ``min_seed_s``; never longer than ``max_s``."""

    class Params(DepartureParams):
        window_s: float = Field(600.0, gt=0)
        patience_s: float = Field(300.0, ge=0)
        min_seed_s: float = Field(0.0, ge=0)
        max_s: float = Field(math.inf, gt=0)

    def __init__(self, params):
        super().__init__(params)
        self._state: dict[int, list[float]] = {}  # peer -> [rate, t, earned, below_since]

    def seeding_time_s(self, rng: np.random.Generator) -> float:
        return self.params.max_s

    def done_seeding(self, s: SeedingState) -> bool:
        p = self.params
        st = self._state.get(s.peer)
        if st is None:  # first look: start the average at the cost, i.e. give it a chance
            self._state[s.peer] = [s.cost_per_s, s.now_s, s.earned, math.nan]
            return False
        dt = s.now_s - st[1]
        if dt > 0:
            inst = (s.earned - st[2]) / dt
            alpha = min(dt / p.window_s, 1.0)
            st[0] += alpha * (inst - st[0])
            st[1], st[2] = s.now_s, s.earned
        if st[0] >= s.cost_per_s:
            st[3] = math.nan
            return False
        if math.isnan(st[3]):
            st[3] = s.now_s
        return s.seeded_s >= p.min_seed_s and s.now_s - st[3] >= p.patience_s


@DEPARTURES.register("wealth_threshold")
class WealthThreshold(_Departure):
    """Scrip-system agents (Kash, Friedman, Halpern, EC 2006/2007) serve only while their
    wealth is under a target: a peer at or above ``target_tokens`` uploads nothing, and a
    seed at or above it leaves."""

    class Params(DepartureParams):
        target_tokens: float = Field(..., ge=0)

    def serves(self, wealth: float) -> bool:
        return wealth < self.params.target_tokens

    def done_seeding(self, state: SeedingState) -> bool:
        return state.wealth >= self.params.target_tokens
