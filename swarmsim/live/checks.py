"""The live harness checks itself: the rate caps held on loopback, the host did not slow
the seed, and nothing else on the host competed for its CPU. A run that fails is marked
``invalid`` and left out of comparisons."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from swarmsim.engine.swarm import payload_share
from swarmsim.scenario import Scenario

RATE_WINDOW_S = 3.0  # libtorrent's limiter is a ~3 s token bucket: compare over >= 3 s


def measured_rates(
    samples: list[tuple[float, float]], window_s: float = RATE_WINDOW_S
) -> np.ndarray:
    """Upload rates over consecutive windows of at least ``window_s`` (bytes per second)."""
    out, i = [], 0
    for j in range(1, len(samples)):
        if samples[j][0] - samples[i][0] >= window_s:
            out.append((samples[j][1] - samples[i][1]) / (samples[j][0] - samples[i][0]))
            i = j
    return np.asarray(out)


BUCKET_S = 3.0  # libtorrent's rate limiter is a token bucket about this many seconds deep


def rate_check(sc: Scenario, cls, starts_seed, rates, first_done: float = np.inf) -> dict:
    """Requested vs measured upload rate per peer. The caps must apply on loopback: over any
    span of >= 3 s a peer may not send more than its cap allows plus one full token bucket,
    with 5 % slack (``excess`` is the worst ratio). A seed slower than every leecher's
    download capacity is never short of demand while every leecher still downloads, so until
    the first completion (``first_done``) its payload must run within 5 % of what its cap
    leaves for payload (``payload_share``: libtorrent's caps count headers; median of its 3 s
    windows once busy; the host adds no throttling of its own). Other peers' uploads are
    bounded by demand too, so only their caps are checked.

    The seed's windows start one bucket depth after its first payload: until then it may
    still be spending tokens banked while connections were being set up. (Windows counted from
    the end of the first 3 s instead once read 8 % over the cap on live-tiny, with every
    span within the cap plus one bucket.)"""
    per_peer, valid = {}, True
    share = payload_share(sc.torrent.block_bytes)
    slowest_download = min(c.download_bps for c in sc.peers if c.starts_as == "leecher")
    for k, samples in rates.items():
        cap = sc.peers[cls[k]].upload_bps
        w = measured_rates(samples)
        if w.size == 0:
            continue
        t = np.array([x[0] for x in samples])
        b = np.array([x[1] for x in samples])
        span = t[None, :] - t[:, None]
        sent = b[None, :] - b[:, None]
        ok_span = span >= RATE_WINDOW_S
        excess = float((sent / (cap * (span + BUCKET_S)))[ok_span].max()) if ok_span.any() else 0.0
        peak = float(w.max())
        ok = excess <= 1.05
        row = {
            "requested_bps": cap,
            "peak_bps": peak,
            "median_bps": float(np.median(w)),
            "excess": excess,
        }
        bound = starts_seed[k] and cap < slowest_download
        busy = _busy_windows(samples, first_done) if bound else np.empty(0)
        if busy.size:
            # while leechers download, such a seed is never short of demand: it runs at its cap
            row["busy_bps"] = float(np.median(busy))
            row["expected_busy_bps"] = cap * share
            ok &= abs(row["busy_bps"] - cap * share) <= 0.05 * cap * share
        row["ok"] = bool(ok)
        valid &= ok
        per_peer[str(k)] = row
    return {"valid": bool(valid), "window_s": RATE_WINDOW_S, "tolerance": 0.05, "peers": per_peer}


def _busy_windows(samples: list[tuple[float, float]], until: float) -> np.ndarray:
    """A seed's rate windows from one token-bucket depth after its first payload byte until
    ``until``."""
    first = next((t for t, b in samples if b > 0), None)
    if first is None:
        return np.empty(0)
    return measured_rates([x for x in samples if first + BUCKET_S <= x[0] <= until])


# Other processes may use this much CPU (in cores, averaged over the run) before a live run is
# marked invalid: the sessions' network and disk threads share the host's cores, and a
# competing process delays how fast they answer requests and announce pieces.
HOST_BUSY_LIMIT = 0.25


def _cpu_seconds() -> tuple[float, float] | None:
    """(busy CPU seconds of the whole host, CPU seconds of this process) now; None where the
    host does not publish its CPU time (no /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    ticks = [int(x) for x in fields[1:9]]  # user nice system idle iowait irq softirq steal
    busy = sum(ticks) - ticks[3] - ticks[4]
    own = os.times()
    return busy / os.sysconf("SC_CLK_TCK"), own.user + own.system


class HostLoad:
    """The CPU the rest of the host used while a live run went on (``check`` after the run)."""

    def __init__(self):
        self.start = _cpu_seconds()

    def check(self, wall_s: float) -> dict:
        end = _cpu_seconds()
        if self.start is None or end is None or wall_s <= 0:
            return {"measured": False, "ok": True}
        host = end[0] - self.start[0]
        own = end[1] - self.start[1]
        other = max(host - own, 0.0) / wall_s
        return {
            "measured": True,
            "other_cores": other,
            "own_cores": own / wall_s,
            "limit_cores": HOST_BUSY_LIMIT,
            "ok": bool(other <= HOST_BUSY_LIMIT),
        }
