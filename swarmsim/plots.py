"""Paper-ready figures drawn from ``Result`` objects (the only module that imports matplotlib).

Style: Okabe-Ito colour-blind-safe palette, units on every axis, single- (3.5 in) or
double-column (7.16 in) widths, vector PDF next to a 200 dpi PNG, and no timestamps in the
files, so the same results give byte-identical figures. Every ``plot_*`` function takes an
``Axes`` and draws one thing; ``figure(kind, results)`` lays them out for the CLI.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from swarmsim.analysis import analytic  # noqa: E402
from swarmsim.analysis.metrics import (  # noqa: E402
    download_times,
    gini,
    progress_curve,
    token_flows,
)
from swarmsim.results import FIGURES  # noqa: E402

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
WIDTHS = {"single": 3.5, "double": 7.16}
STYLE = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": matplotlib.cycler(color=OKABE_ITO),
    "legend.frameon": False,
    "figure.dpi": 100,
    "savefig.dpi": 200,
    "lines.linewidth": 1.2,
    "svg.hashsalt": "swarmsim",
    "image.cmap": "viridis",
}
KINDS = FIGURES  # declared with the run folder, which clears stale figures of each kind


def label_of(result) -> str:
    m = result.manifest
    name = m.get("scenario", {}).get("name", "run")
    return f"{name} ({m.get('source', 'sim')}, seed {m.get('seed')})"


# --- single panels ---------------------------------------------------------------------------


def plot_cdf(ax, results, by: str = "peer_class", bound: bool = True) -> None:
    """Empirical CDF of download times: one line per peer class (one result) or per result.
    With ``bound``, a flash crowd's Kumar-Ross minimum time is drawn as a dashed line."""
    results = list(results)
    for r in results:
        peers = r.peers[~r.peers.starts_as_seed]
        groups = peers.groupby(by, sort=True) if len(results) == 1 else [(label_of(r), peers)]
        for name, group in groups:
            t = np.sort(download_times(group).to_numpy())
            if t.size:
                x = np.concatenate([[0.0], t])
                y = np.arange(t.size + 1) / len(group)
                ax.step(x, y, where="post", label=str(name))
    if bound:
        tmin = flash_crowd_bound(results[0])
        if tmin is not None:
            ax.axvline(
                tmin,
                color="black",
                linestyle="--",
                linewidth=0.8,
                label=f"Kumar-Ross $T_{{min}}$: {tmin:.0f} s",
            )
    ax.set_xlabel("download time (s)")
    ax.set_ylabel("fraction of peers done")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower right")


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


def plot_population(ax, result, reference: bool = True) -> None:
    """Leechers and seeds online over time, with the fluid model's steady state if it applies."""
    ts = result.timeseries
    ax.plot(ts.t_s, ts.leechers, label="leechers", drawstyle="steps-post")
    ax.plot(ts.t_s, ts.seeds, label="seeds", drawstyle="steps-post")
    ss = fluid_reference(result) if reference else None
    if ss is not None:
        for k, (value, what) in enumerate([(ss.leechers, "leechers"), (ss.seeds, "seeds")]):
            ax.axhline(
                value,
                color=OKABE_ITO[k],
                linestyle="--",
                linewidth=0.8,
                label=f"fluid model: {value:.0f} {what}",
            )
    ax.set_xlabel("time (s)")
    ax.set_ylabel("peers online")
    ax.legend(loc="upper right")


def plot_copies(ax, result) -> None:
    """Minimum and mean copies of a piece among online peers."""
    ts = result.timeseries
    ax.plot(ts.t_s, ts.mean_piece_copies, label="mean copies")
    ax.plot(ts.t_s, ts.min_piece_copies, label="rarest piece", drawstyle="steps-post")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("copies per piece")
    ax.legend(loc="upper right")


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


def plot_heatmap(ax, result, bins: int = 120) -> None:
    """Copies of each piece over time (needs the pieces table)."""
    edges, grid = copies_grid(result, bins)
    mesh = ax.pcolormesh(edges, np.arange(grid.shape[0] + 1), grid, shading="flat")
    ax.figure.colorbar(mesh, ax=ax, label="copies online")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("piece index")


def plot_utilisation(ax, result) -> None:
    """Swarm upload rate as a share of the online upload capacity."""
    ts = result.timeseries
    cap = ts.upload_capacity_bps.replace(0, np.nan)
    ax.plot(ts.t_s, ts.upload_rate_bps / cap)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("upload utilisation (share of capacity)")
    ax.set_ylim(0, 1.05)


def plot_lorenz(ax, result) -> None:
    """Lorenz curve of final token balances, with the Gini coefficient in the legend."""
    x = np.sort(np.clip(result.peers.tokens_end.to_numpy(), 0.0, None))
    cum = np.concatenate([[0.0], np.cumsum(x)])
    share = cum / cum[-1] if cum[-1] > 0 else cum
    pop = np.linspace(0.0, 1.0, x.size + 1)
    ax.plot(pop, share, label=f"final balances (Gini {gini(x):.2f})")
    ax.plot([0, 1], [0, 1], color="black", linestyle=":", linewidth=0.8, label="equality")
    ax.set_xlabel("share of peers (poorest first)")
    ax.set_ylabel("share of tokens")
    ax.legend(loc="upper left")


def plot_earnings(ax, result) -> None:
    """Mean tokens earned and spent per peer, by class."""
    flows = token_flows(result.peers, result.payments).groupby("peer_class").mean(numeric_only=True)
    x = np.arange(len(flows))
    ax.bar(x - 0.2, flows.earned, width=0.4, label="earned")
    ax.bar(x + 0.2, flows.spent, width=0.4, label="spent")
    ax.set_xticks(x, flows.index)
    ax.set_ylabel("tokens per peer")
    ax.legend(loc="upper right")


def _by_source(results) -> dict[str, list]:
    groups: dict[str, list] = {}
    for r in results:
        groups.setdefault(r.manifest.get("source", "sim"), []).append(r)
    return groups


SOURCE_LABEL = {"sim": "simulator", "live": "live libtorrent"}


def plot_source_cdf(ax, results) -> None:
    """Download-time CDF pooled over the runs of each source (simulator, live)."""
    for source, runs in _by_source(results).items():
        t = np.sort(np.concatenate([download_times(r.peers).to_numpy() for r in runs]))
        n = sum(int((~r.peers.starts_as_seed).sum()) for r in runs)
        ax.step(
            np.concatenate([[0.0], t]),
            np.arange(t.size + 1) / max(n, 1),
            where="post",
            label=f"{SOURCE_LABEL.get(source, source)} ({len(runs)} run{'s' * (len(runs) > 1)})",
        )
    ax.set_xlabel("download time (s)")
    ax.set_ylabel("fraction of peers done")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="upper left")


def plot_progress(ax, results, points: int = 200) -> None:
    """Swarm progress: the share of all (leecher, piece) pairs done over time, averaged over
    the runs of each source -- where in the download sim and live part ways."""
    end = max(float(r.manifest.get("sim_time_s") or r.peers.complete_s.max()) for r in results)
    grid = np.linspace(0.0, end, points)
    for source, runs in _by_source(results).items():
        curve = np.mean([progress_curve(r, grid) for r in runs], axis=0)
        ax.plot(grid, curve, label=SOURCE_LABEL.get(source, source))
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("share of pieces downloaded")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="upper left")


def plot_compare(ax, table: pd.DataFrame, metric: str, by: str = "label") -> None:
    """Mean of ``metric`` per group with a 95 % confidence interval (t distribution)."""
    from scipy import stats

    rows = []
    for name, g in table.groupby(by, sort=False):
        v = g[metric].dropna().to_numpy(dtype=float)
        half = (
            stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size) if v.size > 1 else 0.0
        )
        rows.append((str(name), v.mean() if v.size else np.nan, half, v.size))
    names, means, halves, counts = zip(*rows, strict=True)
    ax.errorbar(np.arange(len(names)), means, yerr=halves, fmt="o", capsize=3)
    ax.set_xticks(
        np.arange(len(names)),
        [f"{n} (n={c})" for n, c in zip(names, counts, strict=True)],
        rotation=25,
        ha="right",
    )
    ax.set_ylabel(metric.replace("_s", " (s)").replace("_", " "))
    ax.set_xlabel(by)


# --- figures ------------------------------------------------------------------------------------


def new_figure(ncols=1, nrows=1, size="single", height_in=None):
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            nrows,
            ncols,
            figsize=(WIDTHS[size], height_in or 2.4 * nrows),
            squeeze=False,
            layout="constrained",
        )
    return fig, axes


def grid_figure(rows: list[dict], runs: dict) -> plt.Figure:
    """The validation grid at a glance: each case's median download time in every simulator
    and live run (left) and the copies of the file its seed uploaded (right)."""
    with plt.rc_context(STYLE):
        fig, axes = new_figure(2, 1, "double", 0.25 * len(rows) + 1.0)
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
                    (0.12, "simulator", sims, OKABE_ITO[0]),
                    (-0.12, "live libtorrent", lives, OKABE_ITO[3]),
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
                        "o",
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
    return fig


def overview(result):
    """Four panels: download-time CDF, population, piece copies, utilisation."""
    with plt.rc_context(STYLE):
        fig, axes = new_figure(2, 2, "double", 4.6)
        plot_cdf(axes[0, 0], [result])
        plot_population(axes[0, 1], result)
        plot_copies(axes[1, 0], result)
        plot_utilisation(axes[1, 1], result)
        fig.suptitle(label_of(result))
    return fig


def figure(
    kind: str,
    results: Sequence,
    size: str = "single",
    metric: str = "mean_download_s",
    table: pd.DataFrame | None = None,
):
    """The figure of one kind (see ``KINDS``) for one or more results."""
    if kind not in KINDS:
        raise ValueError(f"unknown plot kind {kind!r}; kinds: {', '.join(KINDS)}")
    results = list(results)
    with plt.rc_context(STYLE):
        if kind == "overview":
            return overview(results[0])
        if kind == "tokens":
            fig, axes = new_figure(2, 1, "double" if size == "double" else "single", 2.4)
            fig.set_size_inches(WIDTHS["double"], 2.6)
            plot_lorenz(axes[0, 0], results[0])
            plot_earnings(axes[0, 1], results[0])
            return fig
        if kind == "sim-vs-live":
            fig, axes = new_figure(2, 1, "double", 2.6)
            plot_source_cdf(axes[0, 0], results)
            plot_progress(axes[0, 1], results)
            fig.suptitle(f"{results[0].manifest['scenario']['name']}: simulator vs live libtorrent")
            return fig
        fig, axes = new_figure(1, 1, size)
        ax = axes[0, 0]
        if kind == "cdf":
            plot_cdf(ax, results)
        elif kind == "population":
            plot_population(ax, results[0])
        elif kind == "availability":
            plot_copies(ax, results[0])
        elif kind == "heatmap":
            plot_heatmap(ax, results[0])
        elif kind == "utilisation":
            plot_utilisation(ax, results[0])
        elif kind == "compare":
            if table is None:
                table = pd.DataFrame(
                    [{"label": r.manifest["scenario"]["name"], **r.summary} for r in results]
                )
            plot_compare(ax, table, metric)
        return fig


def save(fig, stem: str | Path, formats=("png", "pdf")) -> list[Path]:
    """Write ``stem.png`` and ``stem.pdf`` without timestamps; returns the paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = stem.with_suffix(f".{fmt}")
        meta = (
            {"CreationDate": None} if fmt == "pdf" else {"Software": None} if fmt == "png" else {}
        )
        fig.savefig(path, format=fmt, metadata=meta)
        paths.append(path)
    plt.close(fig)
    return paths
