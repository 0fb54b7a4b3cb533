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


def gini(values) -> float:
    """Gini coefficient of non-negative amounts (0 = equal, -> 1 = one holds everything)."""
    x = np.sort(np.clip(np.asarray(values, dtype=float), 0.0, None))
    if x.size == 0 or x.sum() == 0:
        return 0.0
    n = x.size
    return float((2 * np.arange(1, n + 1) - n - 1).dot(x) / (n * x.sum()))


def availability(ts: pd.DataFrame) -> float:
    """Share of the sampled time during which every piece had a copy online."""
    if len(ts) < 2:
        return math.nan
    t = ts["t_s"].to_numpy()
    ok = (ts["min_piece_copies"].to_numpy() >= 1).astype(float)
    return float(np.sum(ok[:-1] * np.diff(t)) / (t[-1] - t[0])) if t[-1] > t[0] else math.nan


def lifetime(ts: pd.DataFrame) -> float:
    """Last sampled time at which a full copy was online (the torrent's death, or the end)."""
    alive = ts[ts["min_piece_copies"] >= 1]
    return float(alive["t_s"].max()) if len(alive) else 0.0


def token_flows(peers: pd.DataFrame, payments: pd.DataFrame) -> pd.DataFrame:
    """Per peer: tokens earned and spent (initial endowments excluded)."""
    moves = payments[payments["reason"] != "initial"]
    earned = moves.groupby("payee")["amount"].sum()
    spent = moves.groupby("payer")["amount"].sum()
    ids = peers["peer_id"]
    return pd.DataFrame(
        {
            "peer_class": peers["peer_class"].to_numpy(),
            "earned": earned.reindex(ids, fill_value=0.0).to_numpy(),
            "spent": spent.reindex(ids, fill_value=0.0).to_numpy(),
        }
    )


def seed_copies(peers: pd.DataFrame, file_bytes: int) -> float:
    """Copies of the file the initial seeds uploaded: 1.0 means every byte left them once,
    more means they sent some pieces several times (a seed-bound swarm ends after about
    ``seed_copies * file_bytes / seed upload``)."""
    return float(peers.loc[peers["starts_as_seed"], "uploaded_bytes"].sum()) / file_bytes


def summarize(
    peers: pd.DataFrame,
    timeseries: pd.DataFrame,
    end_s: float,
    payments: pd.DataFrame | None = None,
    auctions: pd.DataFrame | None = None,
    *,
    file_bytes: int,
) -> dict:
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
        "seed_copies": seed_copies(peers, file_bytes),
        "availability": availability(timeseries),
        "lifetime_s": lifetime(timeseries),
    }
    for name, group in leechers.groupby("peer_class", sort=True):
        t = download_times(group)
        out[f"mean_download_s[{name}]"] = float(t.mean()) if len(t) else math.nan
    if payments is not None and len(payments):
        moves = payments[payments["reason"] != "initial"]
        out["tokens_minted"] = float(moves.loc[moves["payer"] == -1, "amount"].sum())
        out["tokens_between_peers"] = float(
            moves.loc[(moves["payer"] >= 0) & (moves["payee"] >= 0), "amount"].sum()
        )
        out["gini_tokens_end"] = gini(peers["tokens_end"])
        flows = token_flows(peers, payments).groupby("peer_class").mean(numeric_only=True)
        for name, row in flows.iterrows():
            out[f"tokens_earned[{name}]"] = float(row["earned"])
            out[f"tokens_spent[{name}]"] = float(row["spent"])
    if auctions is not None and len(auctions):
        out["mean_clearing_price_per_mib"] = float(auctions["price_per_byte"].mean() * 2**20)
    return out


def progress_curve(result, grid: np.ndarray) -> np.ndarray:
    """Share of all (leecher, piece) pairs done by each time of ``grid``."""
    leechers = int((~result.peers.starts_as_seed).sum())
    sc = result.scenario["torrent"]
    total = leechers * int(np.ceil(sc["file_bytes"] / sc["piece_bytes"]))
    t = np.sort(result.pieces.t_s.to_numpy())
    return np.searchsorted(t, grid, side="right") / max(total, 1)
