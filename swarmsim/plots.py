"""Paper-ready figures drawn from ``Result`` objects (the only module that imports matplotlib).

Style: single- (3.5 in) or double-column (7.16 in) widths and units on every axis. Peer
classes come in order of upload capacity on a dark-to-light ramp (viridis), so they stay
apart in grey; designs and other categories get Okabe-Ito colours, each with its own line
style and marker, so they stay apart in print and in grey too. Legends go where they cover
no data: the first place inside the axes that no line, bar or marker crosses (measured on
the drawn figure), else outside it. Multi-panel figures carry panel letters, and axis labels
too long for their panel are wrapped. ``save`` writes a PDF with TrueType (Type 42) fonts and
a 300 dpi PNG, both without timestamps, so the same results give byte-identical files.

Importing this module never selects a matplotlib backend: a notebook shows the figures inline,
and the CLI selects Agg itself before it draws.

Every ``plot_*`` function takes an ``Axes`` and draws one thing; ``figure(kind, data)`` lays
them out for one run, several runs (grouped, and labelled by what differs between them: the
design, the parameter, simulator or live), a sweep folder (``load``), or simulator and live
runs together. A figure that has no data for its kind raises ``PlotError`` with a one-line
reason instead of drawing something empty or misleading.
"""

from __future__ import annotations

import json
import math
import re
import textwrap
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.collections import Collection, LineCollection, PathCollection, QuadMesh
from matplotlib.image import AxesImage
from matplotlib.legend import Legend
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.path import Path as MplPath
from matplotlib.spines import Spine
from matplotlib.text import Text
from matplotlib.ticker import MaxNLocator
from matplotlib.transforms import Bbox

from swarmsim.analysis import analytic
from swarmsim.analysis.metrics import (
    download_times,
    gini,
    progress_curve,
    token_flows,
)
from swarmsim.errors import SwarmsimError
from swarmsim.results import FIGURES

#: Okabe-Ito (colour-blind safe) without its yellow, which vanishes in print, and without its
#: vermillion, which is hard to tell from the orange; each colour has its own line style and
#: marker, so that categories stay apart in grey, where blue, green and purple look alike
OKABE_ITO = ["#000000", "#E69F00", "#0072B2", "#009E73", "#CC79A7", "#56B4E9", "#999999"]
LINESTYLES = ["-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 1)), (0, (6, 2))]
MARKERS = ["o", "s", "^", "D", "v", "P", "X"]
#: classes, fastest first, on viridis from its dark end to 0.7 (lightness 15 to 68 L*)
CLASS_RAMP = (0.0, 0.7)
WIDTHS = {"single": 3.5, "double": 7.16}
DPI = 300
STYLE = {
    "font.size": 8,
    "axes.titlesize": 8,
    "figure.titlesize": 9,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": matplotlib.cycler(color=OKABE_ITO, linestyle=LINESTYLES),
    "legend.frameon": False,
    "figure.dpi": 100,
    "savefig.dpi": DPI,
    "pdf.fonttype": 42,  # TrueType, not Type 3: what IEEE PDF eXpress and ACM checks accept
    "ps.fonttype": 42,
    "lines.linewidth": 1.2,
    "svg.hashsalt": "swarmsim",
    "image.cmap": "viridis",
}
KINDS = FIGURES  # declared with the run folder, which clears stale figures of each kind
SOURCE_LABEL = {"sim": "simulator", "live": "live libtorrent"}
#: axis labels of the summary metrics (a class's metric, ``name[class]``, adds the class)
METRIC_LABELS = {
    "peers": "peers",
    "leechers": "leechers",
    "completed": "leechers that finished",
    "aborted": "leechers that aborted",
    "sim_time_s": "simulated time (s)",
    "mean_download_s": "mean download time (s)",
    "median_download_s": "median download time (s)",
    "p90_download_s": "90th percentile download time (s)",
    "max_download_s": "longest download (s)",
    "last_completion_s": "last completion (s)",
    "mean_seeding_s": "mean seeding time (s)",
    "upload_utilisation": "share of upload capacity used",
    "uploaded_bytes": "bytes uploaded",
    "seed_copies": "file copies the seeds uploaded",
    "availability": "share of time with a full copy",
    "lifetime_s": "last time with a full copy (s)",
    "tokens_minted": "tokens minted",
    "tokens_between_peers": "tokens paid between peers",
    "gini_tokens_end": "Gini of final balances",
    "mean_clearing_price_per_mib": "mean clearing price (tokens/MiB)",
    "tokens_earned": "tokens earned per peer",
    "tokens_spent": "tokens spent per peer",
}
#: metrics bounded by [0, 1] by their definition (every summary metric is >= 0)
SHARE_METRICS = {"availability", "upload_utilisation", "gini_tokens_end"}
#: metrics that count peers (integer ticks)
COUNT_METRICS = {"peers", "leechers", "completed", "aborted"}
#: what ``swarmsim plot SWEEP`` shows when the sweep file names no metrics
HEADLINE = ["mean_download_s", "mean_seeding_s", "availability", "completed"]


class PlotError(SwarmsimError, ValueError):
    """The data given has nothing to draw for this kind of figure (the message says why)."""


# --- what differs between runs -----------------------------------------------------------------

_IGNORED = {"seed", "name", "description"}
_MISSING = object()


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}, "c": [2]}`` -> ``{"a.b": 1, "c[0]": 2}``."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list | tuple) and value:
        out = {}
        for i, v in enumerate(value):
            out.update(_flatten(v, f"{prefix}[{i}]"))
        return out
    return {prefix: value}


def _fmt(value: Any) -> str:
    if value is _MISSING or value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _same(values) -> bool:
    return len({json.dumps(v, sort_keys=True, default=str) for v in values}) <= 1


def _block(key: str, names: set[str]) -> str:
    """The nearest enclosing block of ``key`` that has a ``name`` (``incentive`` for
    ``incentive.price_per_piece``), or '' if none does."""
    for i in reversed([i for i, ch in enumerate(key) if ch in ".["]):
        if f"{key[:i]}.name" in names:
            return key[:i]
    return ""


def design_labels(
    configs: Sequence[dict], by: str = "label", fallback: str = "all runs"
) -> tuple[list[str], list[str]]:
    """Short, readable labels of ``configs`` (nested dicts: scenarios, or a sweep's grid
    points) made from what differs between them, and the names of what differs.

    A plug-in block whose ``name`` differs is labelled by that name alone (``bid``), with the
    parameters that differ between blocks of the same name added (``pay_per_piece
    (price_per_piece 0.5)``); other differences read ``path=value``. Seeds, names and
    descriptions never label (runs that differ only in them are replications), unless ``by``
    selects them. ``by`` other than ``label`` keeps only that path (``incentive``,
    ``peers[1].count``, ``source``)."""
    flats = [_flatten(c) for c in configs]
    keys = list(dict.fromkeys(k for f in flats for k in f))
    names = set(keys)
    if by != "label":
        keys = [k for k in keys if k == by or k.startswith((f"{by}.", f"{by}["))]
        if not keys:
            raise PlotError(f"nothing called {by!r} to group by: the runs vary in {_dims(flats)}")
    varying = [
        k
        for k in keys
        if (by != "label" or k not in _IGNORED) and not _same(f.get(k, _MISSING) for f in flats)
    ]
    if not varying:
        if by == "label":
            first = [f.get("name", fallback) for f in flats]
            return [str(first[0]) if _same(first) else fallback] * len(flats), []
        value = flats[0].get(f"{by}.name", flats[0].get(by, _MISSING))
        return [_fmt(value)] * len(flats), [_readable(by, flats[0])]
    blocks: dict[str, list[str]] = {}
    for k in varying:
        blocks.setdefault(_block(k, names) or k, []).append(k)
    leaves = [k.rsplit(".", 1)[-1] for k in varying]
    labels = []
    for f in flats:
        parts = []
        for block, ks in blocks.items():
            if f"{block}.name" in ks:
                same = [g for g in flats if g.get(f"{block}.name") == f.get(f"{block}.name")]
                extra = [
                    k
                    for k in ks
                    if k != f"{block}.name" and not _same(g.get(k, _MISSING) for g in same)
                ]
                part = _fmt(f.get(f"{block}.name", _MISSING))
                if extra:
                    part += f" ({', '.join(_leaf(k, leaves) + ' ' + _fmt(f.get(k, _MISSING)) for k in extra)})"
                if len(blocks) > 1:
                    part = f"{_readable(block, f)} {part}"
            elif block == "source":
                part = SOURCE_LABEL.get(f.get("source"), _fmt(f.get("source", _MISSING)))
            else:
                part = ", ".join(f"{_leaf(k, leaves)}={_fmt(f.get(k, _MISSING))}" for k in ks)
            parts.append(part)
        labels.append(", ".join(parts))
    return labels, [_readable(b, flats[0]) for b in blocks]


def _leaf(key: str, leaves: list[str]) -> str:
    leaf = key.rsplit(".", 1)[-1]
    return leaf if leaves.count(leaf) == 1 else key


def _readable(path: str, flat: dict) -> str:
    """``peers[1].arrival`` -> ``peer.arrival`` (a peer class by its name)."""
    return re.sub(r"peers\[(\d+)\]", lambda m: str(flat.get(f"{m[0]}.class", m[0])), path)


def _dims(flats) -> str:
    keys = dict.fromkeys(k for f in flats for k in f)
    names = set(keys)
    out = {
        _block(k, names) or k
        for k in keys
        if k not in _IGNORED and not _same(f.get(k, _MISSING) for f in flats)
    }
    return ", ".join(sorted(out)) or "nothing but their seeds"


def run_config(result) -> dict:
    """What identifies a run's design: its resolved scenario, its seed and its source."""
    return {**result.scenario, "source": result.manifest.get("source", "sim")}


def run_labels(results: Sequence, by: str = "label") -> tuple[list[str], list[str]]:
    """``design_labels`` of runs: what differs between their scenarios (or their source)."""
    return design_labels([run_config(r) for r in results], by)


def label_of(result) -> str:
    m = result.manifest
    name = m.get("scenario", {}).get("name", "run")
    return f"{name} ({m.get('source', 'sim')}, seed {m.get('seed')})"


# --- a sweep folder ------------------------------------------------------------------------------


@dataclass
class SweepResults:
    """A sweep folder (``swarmsim sweep``'s output): its summary, one row per finished run,
    and its runs, read when a figure needs them (a folder may hold its summary alone)."""

    folder: Path
    name: str
    params: list[str]
    metrics: list[str]
    table: pd.DataFrame
    _runs: list | None = field(default=None, repr=False)

    @classmethod
    def read(cls, folder: str | Path) -> SweepResults:
        """The sweep in ``folder`` (``summary.parquet``, ``sweep.json``, ``runs/``)."""
        folder = Path(folder)
        table = pd.read_parquet(folder / "summary.parquet")
        spec = {}
        if (folder / "sweep.json").is_file():
            spec = json.loads((folder / "sweep.json").read_text())
        fixed = {"run_id", "point", "replication", "seed", "scenario_hash", "status", "error"}
        params = [*spec.get("grid", {}), *spec.get("zip", {})] or [
            c for c in table.columns if c not in fixed and table[c].dtype == object
        ]
        if "status" in table:
            table = table[table["status"] == "ok"]
        if table.empty:
            raise PlotError(f"{folder}: the sweep has no finished run")
        metrics = [m for m in spec.get("metrics") or HEADLINE if m in table]
        return cls(folder, spec.get("name", folder.name), params, metrics, table.reset_index())

    def configs(self) -> list[dict]:
        """Each row's grid point as a nested dict (``{"incentive": {"name": "bid"}}``)."""
        return [
            {"name": self.name, **{p: _cell(row[p]) for p in self.params}}
            for _, row in self.table.iterrows()
        ]

    def labels(self, by: str = "label") -> tuple[list[str], list[str]]:
        """Per row: the grid point's label from what varies (or from ``by``) and its names."""
        if by == "label" or any(by == p or by.startswith((f"{p}.", f"{p}[")) for p in self.params):
            return design_labels(self.configs(), by, self.name)
        if by in self.table:
            return [f"{by}={_fmt(v)}" for v in self.table[by]], [by]
        raise PlotError(
            f"the sweep has no parameter or column {by!r}; it varies {', '.join(self.params)}"
        )

    @property
    def runs(self) -> list:
        """Every finished run of the sweep, in the summary's order."""
        if self._runs is None:
            from swarmsim.results import Result

            missing = [r for r in self.table.run_id if not (self.folder / "runs" / r).is_dir()]
            if missing:
                raise PlotError(
                    f"{self.folder} holds the sweep's summary without its run folders "
                    f"({len(missing)} missing): only overview and compare draw from it"
                )
            self._runs = [Result.read(self.folder / "runs" / r) for r in self.table.run_id]
        return self._runs


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value.item() if isinstance(value, np.generic) else value


def load(paths: str | Path | Sequence[str | Path]):
    """Result folders as a list of ``Result``, or one sweep folder as ``SweepResults``."""
    from swarmsim.results import Result

    paths = [Path(paths)] if isinstance(paths, str | Path) else [Path(p) for p in paths]
    if not paths:
        raise PlotError("no folder given")
    sweeps = [p for p in paths if (p / "summary.parquet").is_file()]
    if sweeps:
        if len(paths) > 1:
            raise PlotError(f"pass one sweep folder, or run folders: {sweeps[0]} is a sweep")
        return SweepResults.read(paths[0])
    return [Result.read(p) for p in paths]


def _runs_of(data) -> list:
    if isinstance(data, SweepResults):
        return data.runs
    if hasattr(data, "manifest"):
        return [data]
    return list(data)


def groups(data, by: str = "label", replications: bool = False) -> list[tuple[str, list]]:
    """Runs grouped by what differs between them, in order of first appearance: ``[(label,
    [runs])]``. With ``replications``, runs that differ in nothing but their seed are labelled
    by it instead of pooled."""
    if isinstance(data, SweepResults):
        labels = data.labels(by)[0]
        runs = data.runs
    else:
        runs = _runs_of(data)
        if not runs:
            raise PlotError("no run given")
        labels = run_labels(runs, by)[0]
    if replications and len(runs) > 1 and len(set(labels)) == 1:
        labels = [f"seed {r.manifest.get('seed')}" for r in runs]
        if len(set(labels)) < len(labels):
            labels = [f"run {k + 1}" for k in range(len(runs))]
    out: dict[str, list] = {}
    for label, r in zip(labels, runs, strict=True):
        out.setdefault(label, []).append(r)
    return list(out.items())


def _runs_note(runs) -> str:
    return f" ({len(runs)} runs)" if len(runs) > 1 else ""


# --- palette ---------------------------------------------------------------------------------


def design_style(k: int) -> dict:
    """Colour, line style and marker of the ``k``-th category (design, source, line)."""
    n = len(OKABE_ITO)
    return {"color": OKABE_ITO[k % n], "linestyle": LINESTYLES[k % n], "marker": MARKERS[k % n]}


def _line_style(k: int) -> dict:
    s = design_style(k)
    return {"color": s["color"], "linestyle": s["linestyle"]}


def class_order(peers: pd.DataFrame) -> list[str]:
    """Peer classes from the largest mean upload capacity to the smallest (ties by name)."""
    cap = peers.groupby("peer_class", sort=True, observed=True)["upload_bps"].mean()
    return sorted(cap.index, key=lambda c: (-float(cap[c]), str(c)))


def class_colours(n: int) -> list:
    """``n`` colours, darkest first, evenly apart in lightness (for classes by capacity)."""
    lo, hi = CLASS_RAMP
    cmap = matplotlib.colormaps["viridis"]
    return [cmap(x) for x in (np.linspace(lo, hi, n) if n > 1 else [lo])]


# --- single panels ---------------------------------------------------------------------------


def _legend(ax, loc: str = "best", **kw) -> Legend | None:
    """A legend where it covers no data: tried at ``loc`` first, then placed by measurement
    when the figure is finished (``place_legends``)."""
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    leg = ax.legend(handles, labels, loc=loc, **kw)
    leg._swarmsim_prefer = loc  # the first place ``place_legends`` tries
    return leg


def _check_finished(results) -> None:
    if not any(len(download_times(r.peers)) for r in results):
        raise PlotError("cdf: no leecher finished downloading, so there is no download time")


def plot_cdf(ax, results, bound: bool = True, by: str = "label") -> None:
    """Empirical CDF of download times: one line per peer class, fastest first (one run), or
    per design pooled over its runs (several runs; by seed if only the seed differs). With
    ``bound``, a flash crowd's Kumar-Ross minimum time is drawn as a dashed line."""
    results = _runs_of(results)
    _check_finished(results)
    if len(results) == 1:
        r = results[0]
        peers = r.peers[~r.peers.starts_as_seed]
        order = class_order(peers)
        for k, (name, colour) in enumerate(zip(order, class_colours(len(order)), strict=True)):
            group = peers[peers.peer_class == name]
            style = {"color": colour, "linestyle": LINESTYLES[k % len(LINESTYLES)]}
            _step_cdf(ax, [download_times(group)], len(group), str(name), **style)
    else:
        for k, (name, runs) in enumerate(groups(results, by, replications=True)):
            n = sum(int((~r.peers.starts_as_seed).sum()) for r in runs)
            times = [download_times(r.peers) for r in runs]
            _step_cdf(ax, times, n, name + _runs_note(runs), **_line_style(k))
    if bound:
        tmins = {flash_crowd_bound(r) for r in results}
        tmin = tmins.pop() if len(tmins) == 1 else None
        if tmin is not None:
            ax.axvline(
                tmin,
                color="#777777",
                linestyle="--",
                linewidth=0.8,
                label=f"Kumar-Ross $T_{{min}}$: {tmin:.0f} s",
            )
    ax.set_xlabel("download time (s)")
    ax.set_ylabel("fraction of peers done")
    ax.set_xlim(left=0)
    ax.set_ylim(0, 1.02)
    _legend(ax, "lower right")


def _step_cdf(ax, times, n: int, label: str, **style) -> None:
    t = np.sort(np.concatenate([np.asarray(x, dtype=float) for x in times]))
    if t.size and n:
        ax.step(
            np.concatenate([[0.0], t]),
            np.arange(t.size + 1) / n,
            where="post",
            label=label,
            **style,
        )


def flash_crowd_bound(result) -> float | None:
    """T_min for a result whose leechers all joined at t = 0 (else None)."""
    p = result.peers
    leechers, seeds = p[~p.starts_as_seed], p[p.starts_as_seed]
    if len(leechers) == 0 or len(seeds) == 0 or leechers.join_s.max() > 0:
        return None
    file_bytes = result.scenario.get("torrent", {}).get("file_bytes")
    if not file_bytes:
        return None
    return analytic.kumar_ross_tmin(
        file_bytes,
        float(seeds.upload_bps.sum()),
        leechers.upload_bps.tolist(),
        float(leechers.download_bps.min()),
    )


def fluid_reference(result):
    """Qiu-Srikant steady state for a Poisson-arrival, exponential-seeding result, else None."""
    sc = result.scenario
    leech = [c for c in sc.get("peers", []) if c.get("starts_as") == "leecher"]
    dep = sc.get("departure", {})
    if (
        len(leech) != 1
        or leech[0]["arrival"]["name"] != "poisson"
        or dep.get("name") != "seed_for"
        or dep.get("distribution") != "exponential"
        or not dep.get("mean_s")
    ):
        return None
    f = sc["torrent"]["file_bytes"]
    c = leech[0]
    return analytic.qiu_srikant_steady_state(
        c["arrival"]["rate_per_s"],
        c["upload_bps"] / f,
        c["download_bps"] / f,
        1.0 / dep["mean_s"],
        dep.get("abort_rate_per_s", 0.0),
    )


def _samples(result, what: str) -> pd.DataFrame:
    ts = result.timeseries
    if len(ts) < 2:
        raise PlotError(f"{what}: the run has fewer than two time-series samples")
    return ts


def plot_population(ax, result, reference: bool = True) -> None:
    """Leechers and seeds online over time, with the fluid model's steady state if it applies."""
    ts = _samples(result, "population")
    ax.plot(ts.t_s, ts.leechers, label="leechers", drawstyle="steps-post", **_line_style(0))
    ax.plot(ts.t_s, ts.seeds, label="seeds", drawstyle="steps-post", **_line_style(1))
    ss = fluid_reference(result) if reference else None
    if ss is not None:
        for k, (value, what) in enumerate([(ss.leechers, "leechers"), (ss.seeds, "seeds")]):
            ax.axhline(
                value,
                color=OKABE_ITO[k],
                linestyle=":",
                linewidth=0.8,
                label=f"fluid model: {value:.0f} {what}",
            )
    ax.set_xlabel("time (s)")
    ax.set_ylabel("peers online")
    ax.set_ylim(bottom=0)
    _legend(ax, "upper right")


def plot_copies(ax, result) -> None:
    """Minimum and mean copies of a piece among online peers."""
    ts = _samples(result, "availability")
    ax.plot(ts.t_s, ts.mean_piece_copies, label="mean copies", **_line_style(0))
    ax.plot(
        ts.t_s,
        ts.min_piece_copies,
        label="rarest piece",
        drawstyle="steps-post",
        **_line_style(1),
    )
    ax.set_xlabel("time (s)")
    ax.set_ylabel("copies per piece")
    ax.set_ylim(bottom=0)
    _legend(ax, "upper right")


def _check_pieces(result, label: str) -> None:
    if len(result.pieces) == 0:
        recorded = result.scenario.get("record", {}).get("pieces", True)
        why = "was run with record.pieces: false" if not recorded else "has no piece records"
        raise PlotError(f"heatmap needs piece records, and {label} {why}")


def copies_grid(result, bins: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """(time edges, copies[piece, time bin]) among online peers, from the pieces table."""
    p = result.peers.set_index("peer_id")
    end = float(result.manifest.get("sim_time_s", result.timeseries.t_s.max()))
    edges = np.linspace(0.0, end, bins + 1)
    n_pieces = int(
        np.ceil(
            result.scenario["torrent"]["file_bytes"] / result.scenario["torrent"]["piece_bytes"]
        )
    )
    grid = np.zeros((n_pieces, bins + 1))
    leave = p.leave_s.fillna(np.inf)

    def add(piece, start, stop):
        i = np.clip(np.searchsorted(edges, start, side="right") - 1, 0, bins)
        j = np.clip(np.searchsorted(edges, stop, side="right") - 1, 0, bins)
        np.add.at(grid, (piece, i), 1.0)
        np.add.at(grid, (piece, j), -np.where(np.isfinite(stop), 1.0, 0.0))

    seeds = p[p.starts_as_seed]
    for peer, row in seeds.iterrows():
        add(np.arange(n_pieces), np.full(n_pieces, row.join_s), np.full(n_pieces, leave[peer]))
    pc = result.pieces
    add(pc.piece.to_numpy(), pc.t_s.to_numpy(), leave.reindex(pc.peer_id).to_numpy())
    return edges, np.cumsum(grid, axis=1)[:, :-1]


def plot_heatmap(ax, result, bins: int = 120, colorbar: bool = True, vmax=None, label="the run"):
    """Copies of each piece over time (needs the pieces table); returns the mesh."""
    _check_pieces(result, label)
    edges, grid = copies_grid(result, bins)
    mesh = ax.pcolormesh(
        edges,
        np.arange(grid.shape[0] + 1),
        grid,
        shading="flat",
        vmin=0,
        vmax=vmax,
        rasterized=True,
    )
    if colorbar:
        ax.figure.colorbar(mesh, ax=ax, label="copies online")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("piece index")
    return mesh


def utilisation(result) -> tuple[np.ndarray, np.ndarray]:
    """(interval ends, share) per sampling interval: the bytes uploaded in it over the bytes
    the peers online in it could have uploaded (each peer's upload_bps times its time online
    in the interval), the run summary's ``upload_utilisation`` interval by interval.

    Never above 1 where rates keep to the capacities. (Dividing an interval's mean upload
    rate by the capacity online at its end, as the time series' two columns invite, is not a
    share: peers that leave in the interval uploaded in it, and it reached 1.1.)"""
    ts = result.timeseries
    t = ts.t_s.to_numpy(dtype=float)
    if t.size < 2:
        return t[:0], t[:0]
    p = result.peers
    join = p.join_s.to_numpy(dtype=float)
    leave = p.leave_s.fillna(np.inf).to_numpy(dtype=float)
    up = p.upload_bps.to_numpy(dtype=float)
    # capacity-seconds up to time x: sum over peers of up * (min(x, leave) - join)^+
    events = np.concatenate([join, leave[np.isfinite(leave)]])
    deltas = np.concatenate([up, -up[np.isfinite(leave)]])
    order = np.argsort(events, kind="stable")
    events, deltas = events[order], deltas[order]
    d_cum = np.concatenate([[0.0], np.cumsum(deltas)])
    s_cum = np.concatenate([[0.0], np.cumsum(deltas * events)])
    k = np.searchsorted(events, t, side="right")
    capacity_seconds = t * d_cum[k] - s_cum[k]
    cap = np.diff(capacity_seconds)
    sent = ts.upload_rate_bps.to_numpy(dtype=float)[1:] * np.diff(t)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(cap > 1e-9 * max(float(up.max(initial=0.0)), 1.0), sent / cap, np.nan)
    return t[1:], share


def _utilisation_steps(result):
    """``utilisation`` as points for a ``steps-pre`` line: the first interval drawn too."""
    t, share = utilisation(result)
    t0 = result.timeseries.t_s.to_numpy(dtype=float)[:1]
    return np.concatenate([t0, t]), np.concatenate([share[:1], share])


def plot_utilisation(ax, result, **style) -> None:
    """The share of the online peers' upload capacity used, per sampling interval."""
    _samples(result, "utilisation")
    t, share = _utilisation_steps(result)
    ax.plot(t, share, drawstyle="steps-pre", **(style or _line_style(0)))
    ax.set_xlabel("time (s)")
    ax.set_ylabel(METRIC_LABELS["upload_utilisation"])
    ax.set_ylim(0, 1.05)


def _token_runs(results) -> list:
    return [r for r in results if (r.payments.reason != "initial").any()]


def _check_tokens(result, label: str = "the run") -> None:
    if not (result.payments.reason != "initial").any():
        name = result.scenario.get("incentive", {}).get("name", "none")
        raise PlotError(f"tokens: no token moved in {label} (incentive: {name})")


def plot_lorenz(ax, result, label: str | None = None, **style) -> None:
    """Lorenz curve of final token balances, with the Gini coefficient in the legend."""
    x = np.sort(np.clip(result.peers.tokens_end.to_numpy(dtype=float), 0.0, None))
    _lorenz_line(ax, x, label or "final balances", **(style or _line_style(0)))
    _equality(ax)


def _lorenz_line(ax, x, label, **style):
    x = np.sort(x)
    cum = np.concatenate([[0.0], np.cumsum(x)])
    share = cum / cum[-1] if cum[-1] > 0 else cum
    pop = np.linspace(0.0, 1.0, x.size + 1)
    ax.plot(pop, share, label=f"{label} (Gini {gini(x):.2f})", **style)


def _equality(ax):
    ax.plot([0, 1], [0, 1], color="#777777", linestyle=":", linewidth=0.8, label="equality")
    ax.set_xlabel("share of peers (poorest first)")
    ax.set_ylabel("share of tokens")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    _legend(ax, "upper left")


def plot_earnings(ax, result) -> None:
    """Mean tokens earned and spent per peer, by class in order of upload capacity."""
    flows = token_flows(result.peers, result.payments).groupby("peer_class").mean(numeric_only=True)
    flows = flows.reindex(class_order(result.peers))
    _bars(ax, list(flows.index), flows.earned.to_numpy(), flows.spent.to_numpy())


def _bars(ax, names, earned, spent) -> None:
    x = np.arange(len(names))
    ax.bar(x - 0.2, earned, width=0.4, label="earned", color=OKABE_ITO[2])
    ax.bar(
        x + 0.2,
        spent,
        width=0.4,
        label="spent",
        color=OKABE_ITO[1],
        hatch="////",
        edgecolor="white",
        linewidth=0,
    )
    ax.set_xticks(x, [str(n) for n in names])
    ax.set_ylabel("tokens per peer")
    _legend(ax, "upper right")


def _by_source(results) -> dict[str, list]:
    out: dict[str, list] = {}
    for r in results:
        out.setdefault(r.manifest.get("source", "sim"), []).append(r)
    return out


def plot_source_cdf(ax, results) -> None:
    """Download-time CDF pooled over the runs of each source (simulator, live)."""
    for k, (source, runs) in enumerate(_by_source(results).items()):
        n = sum(int((~r.peers.starts_as_seed).sum()) for r in runs)
        label = f"{SOURCE_LABEL.get(source, source)} ({len(runs)} run{'s' * (len(runs) > 1)})"
        _step_cdf(ax, [download_times(r.peers) for r in runs], max(n, 1), label, **_line_style(k))
    ax.set_xlabel("download time (s)")
    ax.set_ylabel("fraction of peers done")
    ax.set_xlim(left=0)
    ax.set_ylim(0, 1.02)
    _legend(ax, "lower right")


def plot_progress(ax, results, points: int = 200) -> None:
    """Swarm progress: the share of all (leecher, piece) pairs done over time, averaged over
    the runs of each source -- where in the download sim and live part ways."""
    end = max(float(r.manifest.get("sim_time_s") or r.peers.complete_s.max()) for r in results)
    grid = np.linspace(0.0, end, points)
    for k, (source, runs) in enumerate(_by_source(results).items()):
        curve = np.mean([progress_curve(r, grid) for r in runs], axis=0)
        ax.plot(grid, curve, label=SOURCE_LABEL.get(source, source), **_line_style(k))
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("share of pieces downloaded")
    ax.set_ylim(0, 1.02)
    _legend(ax, "lower right")


def metric_label(metric: str) -> str:
    """The axis label of a summary metric (``mean_download_s[fibre]``: its class added)."""
    m = re.fullmatch(r"(.+)\[(.+)\]", metric)
    base, cls = (m[1], m[2]) if m else (metric, None)
    label = METRIC_LABELS.get(base) or (
        base[:-2].replace("_", " ") + " (s)" if base.endswith("_s") else base.replace("_", " ")
    )
    if cls is None:
        return label
    return f"{label[:-4]}, {cls} (s)" if label.endswith(" (s)") else f"{label}, {cls}"


def interval95(values) -> tuple[float, float, int]:
    """Mean, 95 % confidence half-width (t distribution; nan for one value) and count."""
    from scipy import stats

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return math.nan, math.nan, 0
    half = (
        stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)
        if v.size > 1
        else math.nan
    )
    return float(v.mean()), float(half), int(v.size)


def plot_compare(ax, table: pd.DataFrame, metric: str, by: str = "label") -> None:
    """Mean of ``metric`` per group (one tick each, in order of appearance) with its 95 %
    confidence interval (t distribution, clipped to what the metric can take: >= 0, and <= 1
    for a share), and every run's value as a small open dot."""
    if metric not in table or table[metric].notna().sum() == 0:
        raise PlotError(f"no values of {metric!r}; metrics: {', '.join(_metrics(table))}")
    hi_bound = 1.0 if _base(metric) in SHARE_METRICS else math.inf
    names = list(dict.fromkeys(table[by].astype(str)))
    counts = []
    for k, name in enumerate(names):
        v = table.loc[table[by].astype(str) == name, metric].to_numpy(dtype=float)
        mean, half, n = interval95(v)
        counts.append(n)
        style = design_style(k)
        finite = v[np.isfinite(v)]
        if finite.size > 1:
            jitter = np.linspace(-0.18, 0.18, finite.size)
            ax.plot(
                k + jitter,
                finite,
                linestyle="none",
                marker=style["marker"],
                ms=2.5,
                mfc="none",
                mew=0.6,
                color="#777777",
            )
        if n:
            lo = max(mean - half, 0.0) if np.isfinite(half) else mean
            hi = min(mean + half, hi_bound) if np.isfinite(half) else mean
            ax.errorbar(
                [k],
                [mean],
                yerr=[[mean - lo], [hi - mean]],
                fmt=style["marker"],
                color=style["color"],
                ms=4,
                capsize=3,
                elinewidth=1.0,
            )
    ax.set_xticks(np.arange(len(names)), names)
    ax.set_xlim(-0.6, len(names) - 0.4)
    ax.set_ylabel(metric_label(metric))
    top = 1.05 if hi_bound == 1.0 else None
    ax.set_ylim(bottom=0, top=top)
    if _base(metric) in COUNT_METRICS:
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ns = sorted(set(counts))
    ax._swarmsim_counts = ns  # for the x label the figure writes


def _base(metric: str) -> str:
    return metric.split("[", 1)[0]


def _metrics(table: pd.DataFrame) -> list[str]:
    skip = {"point", "replication", "seed", "index"}
    return [c for c in table.columns if c not in skip and pd.api.types.is_numeric_dtype(table[c])]


def _n_note(counts: list[int]) -> str:
    if not counts or counts == [1]:
        return "one run each, no interval"
    if len(counts) == 1:
        return f"mean and 95 % CI of {counts[0]} runs"
    return f"mean and 95 % CI of {counts[0]}-{counts[-1]} runs"


# --- layout: panel letters, labels that fit, legends clear of data ------------------------------


@contextmanager
def style():
    """``STYLE`` for the figures made and saved inside. Unlike a bare ``rc_context`` it keeps
    ``interactive`` as it ends: the first figure of a notebook selects the inline backend
    inside it, which switches interactive mode on, and figures show only while it is."""
    with plt.rc_context(STYLE):
        try:
            yield
        finally:
            interactive = matplotlib.rcParams["interactive"]
    matplotlib.rcParams["interactive"] = interactive


def new_figure(ncols=1, nrows=1, size="single", height_in=None):
    with style():
        fig, axes = plt.subplots(
            nrows,
            ncols,
            figsize=(WIDTHS[size], height_in or 2.4 * nrows),
            squeeze=False,
            layout="constrained",
        )
    return fig, axes


def panel_letters(axes, titles: Sequence[str] | None = None) -> None:
    """``(a)``, ``(b)``, ... at the top left of each panel, before its title if any."""
    for k, ax in enumerate(axes):
        text = f"({chr(ord('a') + k)})"
        if titles is not None and titles[k]:
            text += f" {titles[k]}"
        ax.set_title(text, loc="left", fontsize=STYLE["axes.titlesize"])


def _renderer(fig):
    return fig.canvas.get_renderer() if hasattr(fig.canvas, "get_renderer") else fig._get_renderer()


_NONE = (None, "None", "none", "", " ")


def _obstacles(ax, renderer) -> list[tuple]:
    """What ``ax`` draws as data, in display coordinates: ``("path", Path, filled, pad)``,
    ``("point", xy, radius)`` and ``("box", Bbox)``, each with whether the axes clip it."""
    px = ax.figure.dpi / 72.0
    out = []
    skip = {ax.patch, ax.title, ax._left_title, ax._right_title}
    for art in ax.get_children():
        if art in skip or not art.get_visible() or isinstance(art, Legend | Spine):
            continue
        clip = art.get_clip_on()
        if isinstance(art, Line2D):
            tr = art.get_transform()
            if art.get_linestyle() not in _NONE and art.get_linewidth() > 0:
                d = tr.transform(np.asarray(art.get_path().vertices, dtype=float))
                for chunk in _finite_runs(d):
                    out.append(("path", MplPath(chunk), False, art.get_linewidth() * px / 2, clip))
            if art.get_marker() not in _NONE:
                pts = tr.transform(np.asarray(art.get_xydata(), dtype=float))
                r = art.get_markersize() * px / 2
                for p in pts[np.isfinite(pts).all(axis=1)]:
                    out.append(("point", p, r, clip))
        elif isinstance(art, LineCollection):
            tr = art.get_transform()
            lw = float(np.max(art.get_linewidths(), initial=1.0)) * px / 2
            for seg in art.get_segments():
                for chunk in _finite_runs(tr.transform(np.asarray(seg, dtype=float))):
                    out.append(("path", MplPath(chunk), False, lw, clip))
        elif isinstance(art, PathCollection):
            offs = art.get_offset_transform().transform(art.get_offsets())
            sizes = art.get_sizes()
            for i, p in enumerate(offs):
                r = math.sqrt(sizes[i % len(sizes)] if len(sizes) else 36.0) * px / 2
                out.append(("point", p, r, clip))
        elif isinstance(art, QuadMesh | AxesImage | Patch) or (
            isinstance(art, Text) and art in ax.texts
        ):
            out.append(("box", art.get_window_extent(renderer), clip))
        elif isinstance(art, Collection):
            tr = art.get_transform()
            for path in art.get_paths():
                out.append(("path", tr.transform_path(path), True, 0.0, clip))
    return out


def _finite_runs(d: np.ndarray):
    ok = np.isfinite(d).all(axis=1)
    if ok.all():
        yield d
        return
    edges = np.flatnonzero(np.diff(np.concatenate([[0], ok.astype(int), [0]])))
    for a, b in zip(edges[::2], edges[1::2], strict=True):
        yield d[a:b]


def covers(ax, box: Bbox, renderer=None) -> bool:
    """Whether any data ``ax`` draws (lines, markers, bars, meshes, texts) lies in ``box``
    (display coordinates)."""
    renderer = renderer or _renderer(ax.figure)
    inner = Bbox.intersection(box, ax.bbox)
    for item in _obstacles(ax, renderer):
        region = inner if item[-1] else box
        if region is None:
            continue
        kind = item[0]
        if kind == "path":
            _, path, filled, pad, _ = item
            if len(path.vertices) == 1:
                x, y = path.vertices[0]
                if region.padded(pad).contains(x, y):
                    return True
            elif path.intersects_bbox(region.padded(pad), filled=filled):
                return True
        elif kind == "point":
            _, (x, y), r, _ = item
            if region.padded(r).contains(x, y):
                return True
        elif kind == "box":
            b = item[1]
            if b.width > 0 and b.height > 0 and region.overlaps(b):
                return True
    return False


_INSIDE = [
    "upper right",
    "upper left",
    "lower right",
    "lower left",
    "center right",
    "center left",
    "upper center",
    "lower center",
    "center",
]
_GRID = [(x, y) for y in (0.85, 0.7, 0.55, 0.4, 0.25) for x in (0.8, 0.65, 0.5, 0.35, 0.2)]


def _legend_ok(ax, leg, renderer) -> bool:
    ext = leg.get_window_extent(renderer)
    a = ax.bbox
    inside = ext.x0 >= a.x0 - 0.5 and ext.x1 <= a.x1 + 0.5 and ext.y0 >= a.y0 - 0.5
    inside = inside and ext.y1 <= a.y1 + 0.5
    return inside and not covers(ax, ext.padded(1.0), renderer)


def _place(ax, leg, renderer) -> bool:
    """Move ``leg`` to the first place inside ``ax`` where it covers no data; False if none."""
    prefer = getattr(leg, "_swarmsim_prefer", "best")
    tries: list = [prefer] if prefer in _INSIDE else []
    tries += [loc for loc in _INSIDE if loc not in tries] + _GRID
    for where in tries:
        if isinstance(where, str):
            leg.set_loc(where)
            leg.set_bbox_to_anchor(None)
        else:
            leg.set_loc("center")
            leg.set_bbox_to_anchor(where, transform=ax.transAxes)
        if _legend_ok(ax, leg, renderer):
            return True
    return False


def _outside(ax, leg) -> None:
    """Below the figure if ``ax`` is its only panel (the width stays the column's), else to
    the right of ``ax``."""
    fig = ax.figure
    panels = [a for a in fig.axes if a.get_label() != "<colorbar>"]
    if panels == [ax]:
        handles, labels = ax.get_legend_handles_labels()
        leg.remove()
        for old in [g for g in fig.legends if getattr(g, "_swarmsim_moved", False)]:
            old.remove()  # an earlier legend of this panel, moved out before lines were added
        renderer = _renderer(fig)
        for ncols in range(min(len(labels), 4), 0, -1):  # as few rows as the width allows
            new = fig.legend(handles, labels, loc="outside lower center", ncols=ncols)
            new._swarmsim_moved = True
            if ncols == 1 or new.get_window_extent(renderer).width <= 0.95 * fig.bbox.width:
                return
            new.remove()
        return
    leg.set_loc("upper left")
    leg.set_bbox_to_anchor((1.02, 1.0), transform=ax.transAxes)
    leg._swarmsim_outside = True


def place_legends(fig, drawn: bool = False) -> None:
    """Put every axes legend of ``fig`` where it covers no data: inside its axes where there
    is room (measured on the drawn figure), else outside it. ``drawn``: the layout is current."""
    with style():
        _place_legends(fig, drawn)


def _place_legends(fig, drawn: bool) -> None:
    for k in range(3):
        if k or not drawn:
            fig.draw_without_rendering()
        renderer = _renderer(fig)
        moved = False
        for ax in fig.axes:
            leg = ax.get_legend()
            if leg is None or getattr(leg, "_swarmsim_outside", False):
                continue
            if _legend_ok(ax, leg, renderer):
                continue
            if not _place(ax, leg, renderer):
                _outside(ax, leg)
            moved = True
        if not moved:
            return


def _wrap(text: str, parts: int) -> str:
    """``text`` on ``parts`` lines (or as few more as its words allow), evenly long."""
    width = max(4, math.ceil(len(text) / max(parts, 1)))
    while True:
        lines = textwrap.wrap(text, width=width, break_long_words=False)
        if len(lines) <= parts or width >= len(text):
            return "\n".join(lines)
        width += 1


def fit_labels(fig, drawn: bool = False) -> bool:
    """Wrap axis labels longer than their panel, and turn (then wrap) tick labels that
    would run into each other; returns whether it changed any. ``drawn``: the layout is
    current."""
    if not drawn:
        fig.draw_without_rendering()
    renderer = _renderer(fig)
    changed = False
    for ax in fig.axes:
        for label, along in ((ax.yaxis.label, "height"), (ax.xaxis.label, "width")):
            text = label.get_text()
            if not text or "\n" in text:
                continue
            size = getattr(label.get_window_extent(renderer), along)
            room = getattr(ax.bbox, along)
            if size > room:
                label.set_text(_wrap(text, math.ceil(size / max(room, 1.0))))
                changed = True
        ticks = [t for t in ax.get_xticklabels() if t.get_text()]
        if len(ticks) > 1 and _crowded(ticks, renderer):
            for t in ticks:
                t.set_rotation(30)
                t.set_horizontalalignment("right")
                t.set_rotation_mode("anchor")
            changed = True
    if changed:
        fig.draw_without_rendering()
        for ax in fig.axes:
            ticks = [t for t in ax.get_xticklabels() if t.get_text()]
            if len(ticks) > 1 and _crowded(ticks, renderer):
                ax.set_xticks(
                    ax.get_xticks(),
                    [_wrap(t.get_text(), 2) for t in ticks],
                    rotation=30,
                    ha="right",
                )
        fig.draw_without_rendering()
    return changed


def _crowded(ticks, renderer) -> bool:
    """Whether neighbouring tick labels run into each other: their boxes overlap, or for
    labels turned by the same angle, their lines are closer than a line's height."""
    angle = math.radians(ticks[0].get_rotation())
    if angle and all(t.get_rotation() == ticks[0].get_rotation() for t in ticks):
        dpi = ticks[0].get_figure(root=True).dpi
        x = [t.get_transform().transform(t.get_position())[0] for t in ticks]
        gap = min(abs(b - a) for a, b in zip(x, x[1:], strict=False)) * math.sin(angle)
        lines = max(t.get_text().count("\n") + 1 for t in ticks)
        return gap < max(t.get_fontsize() for t in ticks) * dpi / 72 * 1.2 * lines
    boxes = [t.get_window_extent(renderer) for t in ticks]
    return any(a.padded(1.0).overlaps(b) for a, b in zip(boxes, boxes[1:], strict=False))


def finish(fig):
    """Fit the labels and place the legends of a drawn figure; returns it."""
    if getattr(fig, "_swarmsim_finished", False):
        return fig
    for ax in fig.axes:  # ticks made later (at a draw outside this style) keep its sizes
        ax.tick_params(axis="x", labelsize=STYLE["xtick.labelsize"])
        ax.tick_params(axis="y", labelsize=STYLE["ytick.labelsize"])
    with style():
        fig.draw_without_rendering()
        changed = fit_labels(fig, drawn=True)
        place_legends(fig, drawn=not changed)
    fig._swarmsim_finished = True
    return fig


def _shared_legend(fig, axes, ncols: int | None = None) -> None:
    """One legend for panels that show the same lines, below them (outside every axes)."""
    seen: dict[str, Any] = {}
    for ax in axes:
        for h, lbl in zip(*ax.get_legend_handles_labels(), strict=True):
            seen.setdefault(lbl, h)
    if seen:
        fig.legend(
            list(seen.values()),
            list(seen),
            loc="outside lower center",
            ncols=ncols or min(len(seen), 3),
        )


# --- figures ------------------------------------------------------------------------------------


def grid_figure(rows: list[dict], runs: dict) -> plt.Figure:
    """The validation grid at a glance: each case's median download time in every simulator
    and live run (left) and the copies of the file its seed uploaded (right)."""
    with style():
        fig, axes = new_figure(2, 1, "double", 0.25 * len(rows) + 1.2)
        y = np.arange(len(rows))[::-1]
        for ax, stat, label in (
            (
                axes[0, 0],
                lambda r: float(np.median(download_times(r.peers))),
                "median download time (s)",
            ),
            (axes[0, 1], None, "seed copies (bytes the seed uploaded / file size)"),
        ):
            for k, row in enumerate(rows):
                sims, lives = runs[row["case"]]
                for offset, source, group, colour in (
                    (0.12, "simulator", sims, OKABE_ITO[2]),
                    (-0.12, "live libtorrent", lives, OKABE_ITO[1]),
                ):
                    if stat is None:
                        file_bytes = group[0].scenario["torrent"]["file_bytes"]
                        values = [
                            float(r.peers.loc[r.peers.starts_as_seed, "uploaded_bytes"].sum())
                            / file_bytes
                            for r in group
                        ]
                    else:
                        values = [stat(r) for r in group]
                    ax.plot(
                        values,
                        np.full(len(values), y[k] + offset),
                        "o" if source == "simulator" else "s",
                        ms=3,
                        mfc="none" if source == "live libtorrent" else colour,
                        color=colour,
                        label=source if k == 0 else None,
                    )
            ax.set_yticks(y, [f"{r['case']} ({r['median_error']:+.0%})" for r in rows])
            ax.set_xlabel(label)
            ax.grid(axis="x", lw=0.3, alpha=0.5)
        fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside upper center", ncols=2)
        axes[0, 1].set_yticklabels([])
        panel_letters([axes[0, 0], axes[0, 1]])
    return finish(fig)


def overview(result):
    """Four panels of one run: download-time CDF, population, piece copies, utilisation."""
    with style():
        fig, axes = new_figure(2, 2, "double", 4.8)
        for ax, draw in (
            (axes[0, 0], lambda ax: plot_cdf(ax, [result])),
            (axes[0, 1], lambda ax: plot_population(ax, result)),
            (axes[1, 0], lambda ax: plot_copies(ax, result)),
            (axes[1, 1], lambda ax: plot_utilisation(ax, result)),
        ):
            _or_note(ax, draw)
        panel_letters(axes.flat)
        fig.suptitle(label_of(result))
    return finish(fig)


def _or_note(ax, draw) -> None:
    """Draw a panel, or say in it why there is nothing to draw."""
    try:
        draw(ax)
    except PlotError as exc:
        ax.text(0.5, 0.5, _wrap(str(exc), 3), ha="center", va="center", transform=ax.transAxes)
        ax.set_xticks([])
        ax.set_yticks([])


def _ts(column):
    def series(r):
        ts = _samples(r, column)
        return ts.t_s.to_numpy(dtype=float), ts[column].to_numpy(dtype=float)

    return series


def _design_lines(ax, grouped, series, ylabel, drawstyle="steps-post") -> None:
    """One line per run, in its design's style; the legend names each design once."""
    for k, (label, runs) in enumerate(grouped):
        for j, r in enumerate(runs):
            t, v = series(r)
            name = label + _runs_note(runs) if j == 0 else "_nolegend_"
            lw = 1.2 if len(runs) == 1 else 0.9
            ax.plot(t, v, label=name, drawstyle=drawstyle, lw=lw, **_line_style(k))
    ax.set_xlabel("time (s)")
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)


def _sweep_compare(data: SweepResults, metrics, by: str, size: str):
    labels, dims = data.labels(by)
    table = data.table.assign(label=labels)
    missing = [m for m in metrics if m not in table or table[m].isna().all()]
    if missing or not metrics:
        raise PlotError(
            f"no values of {(missing or [''])[0]!r} in the sweep summary; "
            f"metrics: {', '.join(_metrics(data.table))}"
        )
    return _compare_figure(table, metrics, dims, size, title=data.name)


def _compare_figure(table, metrics, dims, size, title=None):
    n = len(metrics)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    width = "double" if n > 1 else size
    fig, axes = new_figure(ncols, nrows, width, 2.5 * nrows if n > 1 else 2.6)
    flat = list(axes.flat)
    for ax, metric in zip(flat, metrics, strict=False):
        plot_compare(ax, table, metric)
        ax.set_xlabel(", ".join(dims) or "scenario")
    for ax in flat[n:]:
        ax.remove()
    counts = sorted({c for ax in flat[:n] for c in getattr(ax, "_swarmsim_counts", [])})
    note = _n_note(counts)
    if n > 1:
        panel_letters(flat[:n])
        fig.suptitle(f"{title}: {note} per point" if title else f"{note} per design")
    else:
        flat[0].set_xlabel(f"{', '.join(dims) or 'scenario'} ({note})")
    return fig


def _runs_table(grouped) -> pd.DataFrame:
    rows = [{"label": label, **r.summary} for label, runs in grouped for r in runs]
    return pd.DataFrame(rows)


def _figure(kind, data, size, metrics, table, by):
    if kind == "compare" and table is not None:
        fig, axes = new_figure(1, 1, size)
        plot_compare(axes[0, 0], table, metrics[0], by)
        axes[0, 0].set_xlabel("design" if by == "label" else by)
        return fig
    if isinstance(data, SweepResults) and kind in ("overview", "compare"):
        return _sweep_compare(data, metrics if kind == "compare" else data.metrics, by, size)
    runs = _runs_of(data)
    if not runs:
        raise PlotError("no run given")
    if kind == "sim-vs-live":
        return _sim_vs_live(runs)
    grouped = groups(data, by)
    if kind == "compare":
        dims = (data.labels(by) if isinstance(data, SweepResults) else run_labels(runs, by))[1]
        return _compare_figure(_runs_table(grouped), metrics, dims, size)
    if len(runs) == 1:
        return _single(kind, runs[0], size)
    return _multi(kind, data, grouped, size, by)


def _single(kind, r, size):
    if kind == "overview":
        return overview(r)
    if kind == "tokens":
        _check_tokens(r)
        fig, axes = new_figure(2, 1, "double", 2.6)
        plot_lorenz(axes[0, 0], r)
        plot_earnings(axes[0, 1], r)
        panel_letters(axes.flat)
        return fig
    fig, axes = new_figure(1, 1, size)
    ax = axes[0, 0]
    if kind == "cdf":
        plot_cdf(ax, [r])
    elif kind == "population":
        plot_population(ax, r)
    elif kind == "availability":
        plot_copies(ax, r)
    elif kind == "heatmap":
        plot_heatmap(ax, r)
    elif kind == "utilisation":
        plot_utilisation(ax, r)
    return fig


def _multi(kind, data, grouped, size, by):
    """Several runs: one line (or panel) per design, replications pooled or averaged."""
    runs = [r for _, rs in grouped for r in rs]
    if kind == "cdf":
        fig, axes = new_figure(1, 1, size)
        plot_cdf(axes[0, 0], data, by=by)
        return fig
    if kind == "utilisation":
        for r in runs:
            _samples(r, "utilisation")
        fig, axes = new_figure(1, 1, size)
        _design_lines(
            axes[0, 0],
            grouped,
            _utilisation_steps,
            METRIC_LABELS["upload_utilisation"],
            "steps-pre",
        )
        axes[0, 0].set_ylim(0, 1.05)
        _legend(axes[0, 0], "lower right")
        return fig
    if kind in ("population", "availability", "overview"):
        panels = {
            "population": [("leechers", "leechers online"), ("seeds", "seeds online")],
            "availability": [
                ("min_piece_copies", "copies of the rarest piece"),
                ("mean_piece_copies", "mean copies per piece"),
            ],
            "overview": [
                ("cdf", None),
                ("leechers", "leechers online"),
                ("min_piece_copies", "copies of the rarest piece"),
                ("utilisation", None),
            ],
        }[kind]
        ncols = 2
        nrows = math.ceil(len(panels) / ncols)
        fig, axes = new_figure(ncols, nrows, "double", 2.5 * nrows + 0.4)
        for ax, (what, ylabel) in zip(axes.flat, panels, strict=True):
            if what == "cdf":
                _or_note(ax, lambda ax: plot_cdf(ax, data, by=by))
            elif what == "utilisation":
                _design_lines(
                    ax,
                    grouped,
                    _utilisation_steps,
                    METRIC_LABELS["upload_utilisation"],
                    "steps-pre",
                )
                ax.set_ylim(0, 1.05)
            else:
                _design_lines(ax, grouped, _ts(what), ylabel)
            if ax.get_legend():
                ax.get_legend().remove()
        panel_letters(axes.flat)
        _shared_legend(fig, axes.flat)
        return fig
    if kind == "heatmap":
        for label, rs in grouped:
            _check_pieces(rs[0], label)
        n = len(grouped)
        if n > 9:
            raise PlotError(f"heatmap draws one panel per design, and {n} designs are too many")
        ncols = min(n, 3)
        nrows = math.ceil(n / ncols)
        fig, axes = new_figure(ncols, nrows, "double", 2.2 * nrows + 0.3)
        grids = [copies_grid(rs[0]) for _, rs in grouped]
        vmax = max(float(g.max()) for _, g in grids)
        flat = list(axes.flat)
        mesh = None
        for ax, (label, rs) in zip(flat, grouped, strict=False):
            mesh = plot_heatmap(ax, rs[0], colorbar=False, vmax=vmax, label=label)
        for ax in flat[n:]:
            ax.remove()
        titles = [
            label + (f" (run 1 of {len(rs)})" if len(rs) > 1 else "") for label, rs in grouped
        ]
        panel_letters(flat[:n], titles)
        fig.colorbar(mesh, ax=flat[:n], label="copies online")
        return fig
    if kind == "tokens":
        kept = [(label, rs) for label, rs in grouped if _token_runs(rs)]
        if not kept:
            names = sorted({r.scenario.get("incentive", {}).get("name", "none") for r in runs})
            raise PlotError(
                f"tokens: no token moved in any of the runs (incentive: {', '.join(names)})"
            )
        fig, axes = new_figure(2, 1, "double", 2.8)
        lorenz, bars = axes[0, 0], axes[0, 1]
        earned, spent = [], []
        for k, (label, rs) in enumerate(kept):
            rs = _token_runs(rs)
            x = np.concatenate([r.peers.tokens_end.to_numpy(dtype=float) for r in rs])
            _lorenz_line(lorenz, np.clip(x, 0.0, None), label, **_line_style(k))
            flows = pd.concat([token_flows(r.peers, r.payments) for r in rs])
            earned.append(float(flows.earned.mean()))
            spent.append(float(flows.spent.mean()))
        _equality(lorenz)
        _bars(bars, [label for label, _ in kept], np.array(earned), np.array(spent))
        dropped = [label for label, rs in grouped if not _token_runs(rs)]
        if dropped:
            bars.set_xlabel(f"no tokens moved in: {', '.join(dropped)}")
        panel_letters(axes.flat)
        return fig
    raise PlotError(f"{kind}: not drawn for several runs")


def _sim_vs_live(runs):
    by = _by_source(runs)
    if "live" not in by or "sim" not in by:
        have = ", ".join(f"{len(v)} {SOURCE_LABEL.get(k, k)} run(s)" for k, v in by.items())
        raise PlotError(f"sim-vs-live needs simulator and live runs, and got {have}")
    fig, axes = new_figure(2, 1, "double", 2.8)
    plot_source_cdf(axes[0, 0], runs)
    plot_progress(axes[0, 1], runs)
    panel_letters(axes.flat)
    fig.suptitle(f"{runs[0].manifest['scenario']['name']}: simulator vs live libtorrent")
    return fig


def figure(
    kind: str,
    data,
    size: str = "single",
    metric: str | Sequence[str] = "mean_download_s",
    table: pd.DataFrame | None = None,
    by: str = "label",
):
    """The figure of one kind (see ``KINDS``) for ``data``: a ``Result``, a list of them, a
    ``SweepResults`` or folder path(s) (``load``).

    Several runs are grouped by what differs between them (``by='label'``) or by one
    parameter path (``by='incentive'``); a group's replications are pooled (cdf, tokens),
    averaged (time series) or summarised with 95 % intervals (compare). A sweep folder's
    ``overview`` is its metrics per grid point side by side; ``compare`` shows ``metric``
    (one name, a list, or names separated by commas). Raises ``PlotError`` when the data
    holds nothing to draw for ``kind``."""
    if kind not in KINDS:
        raise ValueError(f"unknown plot kind {kind!r}; kinds: {', '.join(KINDS)}")
    if size not in WIDTHS:
        raise ValueError(f"size is single or double, not {size!r}")
    if isinstance(data, str | Path) or (
        isinstance(data, list | tuple) and data and isinstance(data[0], str | Path)
    ):
        data = load(data)
    metrics = [m.strip() for m in metric.split(",")] if isinstance(metric, str) else list(metric)
    with style():
        fig = _figure(kind, data, size, metrics, table, by)
    return finish(fig)


def save(fig, stem: str | Path, formats=("png", "pdf"), dpi: int = DPI) -> list[Path]:
    """Write ``stem.png`` (300 dpi) and ``stem.pdf`` (TrueType fonts) without timestamps;
    returns the paths and closes the figure."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    with style():  # the PDF's font type is read when it is written
        for fmt in formats:
            path = stem.with_suffix(f".{fmt}")
            meta = (
                {"CreationDate": None}
                if fmt == "pdf"
                else {"Software": None}
                if fmt == "png"
                else {}
            )
            fig.savefig(path, format=fmt, metadata=meta, dpi=dpi)
            paths.append(path)
    plt.close(fig)
    return paths
