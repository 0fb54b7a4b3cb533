"""Simulator against live libtorrent on the same scenario: completion-time errors with the live
run-to-run spread beside them, the Kolmogorov-Smirnov distance between the two completion-time
distributions, and swarm progress curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from swarmsim.analysis.metrics import download_times, progress_curve


def _per_peer(results) -> pd.DataFrame:
    """Download time of every leecher (rows) in every run (columns), by peer id."""
    cols = {}
    for k, r in enumerate(results):
        p = r.peers[~r.peers.starts_as_seed].set_index("peer_id")
        cols[k] = p.complete_s - p.join_s
    return pd.DataFrame(cols)


def compare(sim: list, live: list) -> dict:
    """The numbers ``swarmsim validate`` reports and gates on."""

    def medians(results, q):
        return np.array([np.quantile(download_times(r.peers), q) for r in results])

    sim_med, live_med = medians(sim, 0.5), medians(live, 0.5)
    sim_p90, live_p90 = medians(sim, 0.9), medians(live, 0.9)
    per_sim, per_live = _per_peer(sim).mean(axis=1), _per_peer(live).mean(axis=1)
    common = per_sim.index.intersection(per_live.index)
    per_err = ((per_sim[common] - per_live[common]) / per_live[common]).dropna()
    pooled_sim = np.concatenate([download_times(r.peers).to_numpy() for r in sim])
    pooled_live = np.concatenate([download_times(r.peers).to_numpy() for r in live])
    end = max(max(float(r.manifest["sim_time_s"]) for r in sim + live), 1.0)
    grid = np.linspace(0.0, end, 101)
    return {
        "sim_runs": len(sim),
        "live_runs": len(live),
        "median_s": {
            "sim": float(sim_med.mean()),
            "live": float(live_med.mean()),
            "error": float(sim_med.mean() / live_med.mean() - 1.0),
            "live_spread": float(live_med.std(ddof=1) / live_med.mean()) if len(live) > 1 else None,
        },
        "p90_s": {
            "sim": float(sim_p90.mean()),
            "live": float(live_p90.mean()),
            "error": float(sim_p90.mean() / live_p90.mean() - 1.0),
        },
        "per_peer_error": {
            "median_abs": float(per_err.abs().median()) if len(per_err) else None,
            "max_abs": float(per_err.abs().max()) if len(per_err) else None,
            "by_peer": {str(k): float(v) for k, v in per_err.items()},
        },
        "ks_distance": float(stats.ks_2samp(pooled_sim, pooled_live).statistic),
        "progress": {
            "t_s": grid.tolist(),
            "sim": np.mean([progress_curve(r, grid) for r in sim], axis=0).tolist(),
            "live": np.mean([progress_curve(r, grid) for r in live], axis=0).tolist(),
        },
    }
