"""Paper-ready figures drawn from ``Result`` objects (the only module that imports matplotlib).

Style: Okabe-Ito colour-blind-safe palette, units on every axis, single-column width by
default, vector PDF next to a 200 dpi PNG, and no timestamps in the files so that the same
result gives byte-identical figures.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from swarmsim.analysis.metrics import download_times  # noqa: E402

OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]
SINGLE_COLUMN_IN = 3.5
DOUBLE_COLUMN_IN = 7.16
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
    "pdf.compression": 6,
}


def _figure(ncols: int = 1, nrows: int = 1, width_in: float = SINGLE_COLUMN_IN, height_in=None):
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            nrows,
            ncols,
            figsize=(width_in, height_in or 2.4 * nrows),
            squeeze=False,
            layout="constrained",
        )
    return fig, axes


def completion_cdf(ax, result, by: str = "peer_class") -> None:
    """Empirical CDF of download times, one line per peer class."""
    peers = result.peers[~result.peers["starts_as_seed"]]
    for name, group in peers.groupby(by, sort=True):
        t = np.sort(download_times(group).to_numpy())
        if t.size:
            ax.step(t, np.arange(1, t.size + 1) / len(group), where="post", label=str(name))
    ax.set_xlabel("download time (s)")
    ax.set_ylabel("fraction of peers done")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower right")


def population(ax, result) -> None:
    """Leechers and seeds online over time."""
    ts = result.timeseries
    ax.plot(ts["t_s"], ts["leechers"], label="leechers", drawstyle="steps-post")
    ax.plot(ts["t_s"], ts["seeds"], label="seeds", drawstyle="steps-post")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("peers online")
    ax.legend(loc="upper right")


def piece_copies(ax, result) -> None:
    """Minimum and mean copies of a piece among online peers."""
    ts = result.timeseries
    ax.plot(ts["t_s"], ts["mean_piece_copies"], label="mean")
    ax.plot(ts["t_s"], ts["min_piece_copies"], label="min")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("copies per piece")
    ax.legend(loc="upper right")


def utilisation(ax, result) -> None:
    """Swarm upload rate as a share of the online upload capacity."""
    ts = result.timeseries
    cap = ts["upload_capacity_bps"].replace(0, np.nan)
    ax.plot(ts["t_s"], ts["upload_rate_bps"] / cap)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("upload utilisation")
    ax.set_ylim(0, 1.05)


def overview(result):
    """Four panels: download-time CDF, population, piece copies, utilisation."""
    fig, axes = _figure(2, 2, width_in=DOUBLE_COLUMN_IN, height_in=4.6)
    with plt.rc_context(STYLE):
        completion_cdf(axes[0, 0], result)
        population(axes[0, 1], result)
        piece_copies(axes[1, 0], result)
        utilisation(axes[1, 1], result)
    name = result.manifest.get("scenario", {}).get("name", "")
    fig.suptitle(
        f"{name} (seed {result.manifest.get('seed')}, {result.manifest.get('source', 'sim')})"
    )
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
