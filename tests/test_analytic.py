"""The simulator against the analytic models (Kumar & Ross; Qiu & Srikant)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import swarmsim
from swarmsim.analysis.analytic import (
    client_server_time,
    kumar_ross_tmin,
    qiu_srikant_steady_state,
    qiu_srikant_trajectory,
)
from swarmsim.analysis.metrics import download_times, time_average
from tests.conftest import run

MiB = 1024 * 1024


def test_formulas_reproduce_the_reference_examples():
    assert kumar_ross_tmin(100e6, 10e6 / 8, [1e6 / 8] * 1000, 10e6 / 8) == pytest.approx(
        792.08, abs=0.01
    )
    ss = qiu_srikant_steady_state(1.0, 1 / 800, 1 / 200, 1 / 500)
    assert (ss.download_s, ss.leechers, ss.seeds) == pytest.approx((300, 300, 500))
    _, x, y = qiu_srikant_trajectory(0.1, 1 / 800, 1 / 200, 1 / 500, t_end_s=30000)
    assert (x[-1], y[-1]) == pytest.approx((30, 50), rel=1e-3)


def flash(n, peer_up, seed_up, down, file_bytes=32 * MiB, seed=1, **extra):
    data = {
        "name": "kr",
        "seed": seed,
        "torrent": {"file_bytes": file_bytes, "piece_bytes": 262144},
        "peers": [
            {
                "class": "seed",
                "count": 1,
                "upload_bps": seed_up,
                "download_bps": down,
                "starts_as": "seed",
            },
            {
                "class": "peer",
                "count": n,
                "upload_bps": peer_up,
                "download_bps": down,
                "free_rider": peer_up == 0,
            },
        ],
        "departure": {"name": "stay"},
        "stop": {"all_done": True, "max_time_s": 100000},
        "record": {"sample_every_s": 30, "pieces": False},
    }
    data.update(extra)
    return data


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_homogeneous_flash_crowd_within_one_and_a_half_kumar_ross(seed):
    """Kumar & Ross: T_min = max(F/u_s, F/d, N F/(u_s + N u)) = 246 s here (N=100, 128 pieces).
    mainline + rarest first must never beat it and should come within 1.5x: the slack covers
    the first rechoke (10 s) before any leecher has a piece to trade, the random-first pieces,
    piece granularity at the end (a 256 KiB piece takes 8 s at a 32 KiB/s slot) and the endgame
    tail; with 128 pieces and 10 s rounds these add up to about 20 % (measured 1.20-1.22x for seeds 1-3)."""
    n, u, us, d = 100, 131072, 524288, 1048576
    data = flash(n, u, us, d, seed=seed)
    tmin = kumar_ross_tmin(32 * MiB, us, [u] * n, d)
    r = swarmsim.simulate(data)
    times = download_times(r.peers)
    assert len(times) == n
    assert r.peers.complete_s.max() >= tmin
    assert r.peers.complete_s.max() <= 1.5 * tmin, (r.peers.complete_s.max(), tmin)


LIBTORRENT_PEERS = {
    "choker": {"name": "libtorrent", "unchoke_slots": 4},
    "picker": {"name": "libtorrent"},
    "bandwidth": {"name": "max_min"},
    "wire": {"handshake_s": 3.0, "header_overhead": True},
}


def test_libtorrent_peers_stay_within_one_and_a_half_kumar_ross():
    """The same crowd of libtorrent peers (docs/validation.md): the 3 s set-up, the 2.7 %
    header overhead, 15 s rounds, allowed-fast pieces and whole-piece runs cost more than
    mainline's rounds do (measured 1.24-1.30x for seeds 1-3 against 1.20-1.22x), still within
    1.5x; never below the bound. Small seed-bound swarms sit further out, at 1.5x and more
    (docs/validation.md): there the seed's repeated pieces, not the peers, set the pace."""
    n, u, us, d = 100, 131072, 524288, 1048576
    tmin = kumar_ross_tmin(32 * MiB, us, [u] * n, d)
    r = swarmsim.simulate(flash(n, u, us, d, seed=1, **LIBTORRENT_PEERS))
    last = r.peers.complete_s.max()
    assert tmin <= last <= 1.5 * tmin, (last, tmin)
    assert last > 1.22 * tmin  # slower than mainline's model: set-up, overhead, 15 s rounds


def test_heterogeneous_flash_crowds_never_beat_the_bound(tiny):
    for seed in range(3):
        r = run(tiny, seed=seed)
        peers = r.peers[~r.peers.starts_as_seed]
        tmin = kumar_ross_tmin(
            tiny["torrent"]["file_bytes"],
            200_000,
            peers.upload_bps.tolist(),
            peers.download_bps.min(),
        )
        assert r.peers.complete_s.max() >= tmin


def test_without_peer_upload_the_swarm_is_client_server():
    """Free-riding peers only: the seed serves all N copies, so the last finishes near
    N F / u_s (within 10 %: the seed's 4 slots keep it busy except at the very start)."""
    n, us, d = 20, 500_000, 2_000_000
    data = flash(n, 0, us, d, file_bytes=8 * MiB)
    r = run(data)
    t_cs = client_server_time(8 * MiB, us, n, d)
    last = r.peers.complete_s.max()
    assert t_cs <= last <= 1.10 * t_cs


def _steady(seed):
    return swarmsim.simulate(
        "scenarios/poisson-steady.yaml", seed=seed, overrides=["stop.max_time_s=5000"]
    )


@pytest.fixture(scope="module")
def steady_run():
    """scenarios/poisson-steady.yaml, seed 1, over 5,000 s (fluid: T = 300 s, x = 30, y = 50)."""
    return _steady(1)


@pytest.fixture(scope="module")
def steady_runs(steady_run):
    """Three replications (seeds 1-3) of the same; seed 1 is the run above."""
    return [steady_run, _steady(2), _steady(3)]


def _steady_metrics(r, warmup=2000.0):
    ts = r.timeseries
    x = time_average(ts, "leechers", warmup)
    y = time_average(ts, "seeds", warmup)
    p = r.peers
    done = p[(p.join_s >= warmup) & p.complete_s.notna() & ~p.starts_as_seed]
    return x, y, float((done.complete_s - done.join_s).mean())


@pytest.mark.slow
def test_poisson_swarm_settles_at_the_fluid_steady_state(steady_runs):
    """Qiu & Srikant: leechers, seeds and download time within 15 % of the fluid steady state.
    The 15 % covers the model's idealisations (eta = 1: every leecher's upload fully used,
    no choking rounds, no piece granularity) -- the simulator's T runs some 5-10 % above 300 s
    -- plus sampling noise: the 95 % confidence interval of the mean over replications must
    overlap the +/-15 % band and the mean itself must lie inside it. Slow: no single
    replication is a smaller case of this (seed 2 alone has 26 % more leechers)."""
    ss = qiu_srikant_steady_state(0.1, 1 / 800, 1 / 200, 1 / 500)
    metrics = np.array([_steady_metrics(r) for r in steady_runs])
    for k, (name, target) in enumerate(
        [("leechers", ss.leechers), ("seeds", ss.seeds), ("download_s", ss.download_s)]
    ):
        values = metrics[:, k]
        mean = values.mean()
        half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
        assert abs(mean - target) <= 0.15 * target, (name, mean, target)
        assert mean - half <= 1.15 * target and mean + half >= 0.85 * target, (name, mean, half)


def check_littles_law(r):
    warmup, end = 2000.0, r.manifest["sim_time_s"]
    p = r.peers[~r.peers.starts_as_seed]
    x = time_average(r.timeseries, "leechers", warmup)
    left_leecher = p.complete_s.fillna(p.leave_s).fillna(end).clip(upper=end)
    inside = p[(p.join_s >= warmup)]
    lam = len(inside) / (end - warmup)
    sojourn = (left_leecher[inside.index] - inside.join_s).mean()
    assert x == pytest.approx(lam * sojourn, rel=0.10)


def test_littles_law_holds_on_the_output(steady_run):
    """Time-averaged leechers = arrival rate x mean time spent as a leecher (Little), within 10 %
    over the window after warm-up: both sides come from different tables (time series vs peers).
    One replication here (measured 2.9 % off); -m slow checks all three."""
    check_littles_law(steady_run)


@pytest.mark.slow
def test_littles_law_holds_on_every_replication(steady_runs):
    for r in steady_runs:
        check_littles_law(r)


@pytest.mark.slow
def test_fluid_steady_state_with_more_replications_and_a_longer_horizon():
    """The same check as above with 6 replications over 10,000 s (8,000 s after warm-up):
    tighter confidence intervals, and the download time still within 15 % of 300 s."""
    ss = qiu_srikant_steady_state(0.1, 1 / 800, 1 / 200, 1 / 500)
    runs = [
        swarmsim.simulate(
            "scenarios/poisson-steady.yaml",
            seed=s,
            overrides=["stop.max_time_s=10000", "peers[1].count=1100"],
        )
        for s in range(10, 16)
    ]
    metrics = np.array([_steady_metrics(r) for r in runs])
    for k, target in enumerate((ss.leechers, ss.seeds, ss.download_s)):
        assert abs(metrics[:, k].mean() - target) <= 0.15 * target
