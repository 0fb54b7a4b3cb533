"""Published findings about choking, reproduced as direction and rough size.

Each test names the figure or claim it mirrors and why its tolerance is what it is. They run
the scenarios in scenarios/ with a few seeds each.
"""

from __future__ import annotations

import numpy as np
import pytest

import swarmsim

SEEDS = (1, 2, 3)


def up_down_ratio(result, peer_class):
    p = result.peers[result.peers.peer_class == peer_class]
    return p.uploaded_bytes.sum() / p.downloaded_bytes.sum()


def test_bittyrant_client_beats_mainline_client_of_same_capacity(scenario_run):
    """Piatek et al. (NSDI 2007): a BitTyrant client in a mainline swarm downloads faster than
    a mainline client of the same capacity; they report a median +70 % for a 1 Mbit/s client
    on live swarms. In bittyrant-mix.yaml (Bharambe's mix, 3 of 25 fast clients strategic)
    swarmsim measures about +20 % over seeds 1-4; we require the BitTyrant class to be faster
    on average over three seeds, by at least 5 % (live swarms are more skewed than this mix,
    so we test the direction and a clear margin, not the 70 %)."""
    gains = []
    for seed in SEEDS:
        s = scenario_run("bittyrant-mix", seed=seed).summary
        gains.append(s["mean_download_s[fast]"] / s["mean_download_s[fast_bt]"])
    assert np.mean(gains) >= 1.05, gains


# The fairness findings at half the swarm (10 dsl, 20 cable, 12 fast, 8 fibre) and half the
# file (100 pieces) in the default suite: fibre's up/down ratio under rate-based TFT measured
# 1.86-2.35 and under block TFT 0.99-1.08 for seeds 1-4 (full size: 1.98-2.04 and 1.06);
# -m slow runs the scenario as shipped.
FAIRNESS_SIZES = {
    "half": [
        "peers[1].count=10",
        "peers[2].count=20",
        "peers[3].count=12",
        "peers[4].count=8",
        "torrent.file_bytes=26214400",
    ],
    "full": [],
}


@pytest.fixture(scope="module", params=["half", pytest.param("full", marks=pytest.mark.slow)])
def fairness_runs(request):
    return {
        choker: [
            swarmsim.simulate(
                "scenarios/block-tft-fairness.yaml",
                seed=seed,
                overrides=[*FAIRNESS_SIZES[request.param], f"choker={{name: {choker}}}"],
            )
            for seed in (1, 2)
        ]
        for choker in ("mainline", "block_tft")
    }


def test_rate_based_tft_lets_fast_peers_give_far_more_than_they_get(fairness_runs):
    """Bharambe et al. (INFOCOM 2006): under their bandwidth mix, rate-based tit-for-tat lets
    high-capacity peers upload several times what they download (they serve the slow through
    optimistic unchokes and are not reciprocated at their rate). swarmsim: fibre peers upload
    about 2x what they download with leave-on-completion; we require >= 1.6x."""
    ratios = [up_down_ratio(r, "fibre") for r in fairness_runs["mainline"]]
    assert np.mean(ratios) >= 1.6, ratios


def test_block_tft_brings_the_ratio_near_one(fairness_runs):
    """Bharambe et al.: block-level TFT (delta = 2 blocks) makes each peer's upload match its
    download. swarmsim lets a peer overshoot by up to one piece (16 blocks) before choking it,
    so we allow fibre's ratio within 0.85..1.2 (measured 1.06) and require it to fall by
    at least a third from rate-based TFT's."""
    tft = [up_down_ratio(r, "fibre") for r in fairness_runs["block_tft"]]
    base = [up_down_ratio(r, "fibre") for r in fairness_runs["mainline"]]
    assert 0.85 <= np.mean(tft) <= 1.2, tft
    assert np.mean(tft) <= np.mean(base) * 2 / 3


@pytest.fixture(scope="module")
def clustering_runs(scenario_run):
    """scenarios/clustering.yaml under mainline, seeds 1-3, read by two findings (seed 1 is
    the golden's run)."""
    return [scenario_run("clustering", seed=s) for s in SEEDS]


def seed_service_cv(result):
    """Spread of the seed's unchoke time over the leechers, before anyone completes."""
    t_end = result.peers.complete_s.min()
    u = result.unchokes[result.unchokes.uploader == 0]
    served = (u.end_s.clip(upper=t_end) - u.start_s.clip(upper=t_end)).groupby(u.downloader).sum()
    leechers = result.peers.peer_id[~result.peers.starts_as_seed]
    served = served.reindex(leechers, fill_value=0.0)
    return served.std() / served.mean()


def test_mainline_seed_gives_leechers_about_equal_service_time(clustering_runs):
    """Legout et al. (IMC 2006): mainline's seed algorithm serves leechers for about equal
    time instead of favouring the ones it uploads to fastest. clustering.yaml (Legout 2007's
    three upload classes); over the window before the first completion, the spread
    (coefficient of variation) of the seed's unchoke time per leecher is 0.6-1.0 for mainline
    against 1.0-1.3 for libtorrent's fastest_upload seed rule, which keeps the peers it sent
    most to in the last round. Every leecher here can take more than a seed slot gives, so
    fastest_upload ranks near-equal byte counts and rotates more than a strictly "fastest"
    rule would; we require mainline's spread under 1 and under 0.8 of fastest_upload's. The
    foil has no BEP 6 allowed-fast set, as the clients of that study had none: the finding
    is about the choking rule."""
    mainline = [seed_service_cv(r) for r in clustering_runs]
    fastest = [
        seed_service_cv(
            swarmsim.simulate(
                "scenarios/clustering.yaml",
                seed=s,
                overrides=[
                    "choker={name: libtorrent, seed_choking_algorithm: fastest_upload, "
                    "unchoke_slots: 4, allowed_fast_set_size: 0}"
                ],
            )
        )
        for s in SEEDS
    ]
    assert np.mean(mainline) < 1.0, mainline
    assert np.mean(mainline) < 0.8 * np.mean(fastest), (mainline, fastest)


def same_class_share(result):
    """Per class: the share of its leechers' uploads that went to leechers of the same class."""
    cls = result.peers.set_index("peer_id").peer_class
    t = result.transfers.assign(
        up=lambda d: d.uploader.map(cls), down=lambda d: d.downloader.map(cls)
    )
    t = t[(t.up != "seed") & (t.down != "seed")]
    m = t.pivot_table(index="up", columns="down", values="bytes", aggfunc="sum").fillna(0.0)
    share = m.div(m.sum(axis=1), axis=0)
    return np.array([share.loc[k, k] for k in ("slow", "medium", "fast")])


def test_peers_cluster_with_peers_of_their_own_capacity(clustering_runs):
    """Legout et al. (SIGMETRICS 2007): with a well-provisioned seed, leechers exchange mostly
    with leechers of similar upload capacity. With three equal-sized classes a choker blind to
    rates sends about a third of each class's uploads to its own class; we require mainline's
    same-class share to exceed the random choker's by at least 0.05 on average (measured:
    0.43-0.47 against 0.31-0.32)."""
    ml = np.mean([same_class_share(r) for r in clustering_runs])
    rnd = np.mean(
        [
            same_class_share(
                swarmsim.simulate(
                    "scenarios/clustering.yaml", seed=s, overrides=["choker={name: random}"]
                )
            )
            for s in SEEDS
        ]
    )
    assert ml >= rnd + 0.05, (ml, rnd)
