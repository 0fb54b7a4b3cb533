"""Headline metrics of a run, computed from its tables only (never from engine objects)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def download_times(peers: pd.DataFrame) -> pd.Series:
    """Completion minus join time of every peer that downloaded the whole file."""
    done = peers[~peers["starts_as_seed"] & peers["complete_s"].notna()]
    return done["complete_s"] - done["join_s"]


def upload_utilisation(peers: pd.DataFrame, end_s: float) -> float:
    """Bytes uploaded / bytes the online peers could have uploaded (free-riders excluded)."""
    leave = peers["leave_s"].fillna(end_s).clip(upper=end_s)
    online = (leave - peers["join_s"]).clip(lower=0.0)
    uploading = peers["uploaded_bytes"] > 0
    capacity = float((peers["upload_bps"] * online)[uploading | (peers["upload_bps"] > 0)].sum())
    return float(peers["uploaded_bytes"].sum()) / capacity if capacity > 0 else math.nan


def time_average(ts: pd.DataFrame, column: str, start_s: float = 0.0) -> float:
    """Time average of a sampled step function from ``start_s`` to the last sample."""
    ts = ts[ts["t_s"] >= start_s]
    if len(ts) < 2:
        return math.nan
    t = ts["t_s"].to_numpy()
    v = ts[column].to_numpy(dtype=float)
    return float(np.sum(v[:-1] * np.diff(t)) / (t[-1] - t[0]))


def summarize(peers: pd.DataFrame, timeseries: pd.DataFrame, end_s: float) -> dict:
    """The numbers the CLI prints and golden files pin."""
    leechers = peers[~peers["starts_as_seed"]]
    times = download_times(peers)
    seeded = (peers["leave_s"].fillna(end_s) - peers["complete_s"])[leechers.index].dropna()
    out = {
        "peers": int(len(peers)),
        "leechers": int(len(leechers)),
        "completed": int(len(times)),
        "aborted": int(peers["aborted"].sum()),
        "sim_time_s": float(end_s),
        "mean_download_s": float(times.mean()) if len(times) else math.nan,
        "median_download_s": float(times.median()) if len(times) else math.nan,
        "p90_download_s": float(times.quantile(0.9)) if len(times) else math.nan,
        "max_download_s": float(times.max()) if len(times) else math.nan,
        "last_completion_s": float(peers["complete_s"].max()) if len(times) else math.nan,
        "mean_seeding_s": float(seeded.mean()) if len(seeded) else math.nan,
        "upload_utilisation": upload_utilisation(peers, end_s),
        "uploaded_bytes": float(peers["uploaded_bytes"].sum()),
    }
    for name, group in leechers.groupby("peer_class", sort=True):
        t = download_times(group)
        out[f"mean_download_s[{name}]"] = float(t.mean()) if len(t) else math.nan
    return out
