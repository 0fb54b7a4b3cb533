"""Incentive policies: the claims their designs' papers and the analytic models make
about them, checked on small swarms."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

import swarmsim
from swarmsim.analysis.metrics import time_average
from tests.conftest import TINY, assert_invariants_ok, run


def with_incentive(block, tokens=None, **extra):
    data = copy.deepcopy(TINY)
    data["incentive"] = block
    for pc in data["peers"][1:]:
        if tokens is not None:
            pc["tokens"] = tokens
    data.update(extra)
    return data


def test_bid_with_no_tokens_anywhere_is_plain_bittorrent():
    plain = run(with_incentive({"name": "none"}))
    broke = run(with_incentive({"name": "bid"}))
    pd.testing.assert_frame_equal(plain.peers, broke.peers)
    pd.testing.assert_frame_equal(plain.pieces, broke.pieces)
    assert broke.payments.empty and broke.auctions.empty


def test_bid_moves_tokens_from_requesters_to_providers_at_the_clearing_price():
    r = run(with_incentive({"name": "bid", "paid_slots": 2}, tokens={"mean": 50}))
    assert_invariants_ok(r)
    bids = r.payments[r.payments.reason == "bid"]
    assert len(bids) > 0 and len(r.auctions) > 0
    assert (r.auctions.winners <= 2).all()
    assert (r.auctions.price_per_byte >= 0).all()
    assert ((r.auctions.bidders > r.auctions.winners) == (r.auctions.price_per_byte > 0)).all()
    # requesters pay, providers earn; nobody ends below zero (no credit granted)
    assert (r.peers.tokens_end >= -1e-9).all()
    total = r.peers.tokens_start.sum()
    assert r.peers.tokens_end.sum() == pytest.approx(total)


def test_pay_per_piece_charges_every_piece_until_wallets_run_dry():
    r = run(with_incentive({"name": "pay_per_piece", "price_per_piece": 2.0}, tokens={"mean": 20}))
    assert_invariants_ok(r)
    paid = r.payments[r.payments.reason == "piece"]
    # 16 pieces at 2 tokens cost 32 > 20: wallets that sold too little run dry, and their
    # last pieces go unpaid (the uploader does not refuse them: refuse_broke is off)
    assert paid.amount.max() == pytest.approx(2.0)
    assert len(paid) < len(r.pieces)
    leechers = r.peers[~r.peers.starts_as_seed]
    assert (leechers.tokens_end >= -1e-9).all() and (leechers.tokens_end < 1e-9).any()


def test_credit_line_is_used_and_respected():
    r = run(
        with_incentive(
            {"name": "pay_per_piece", "price_per_piece": 2.0, "credit_tokens": 5.0},
            tokens={"mean": 20},
        )
    )
    assert_invariants_ok(r)
    assert r.peers.tokens_end.min() >= -5.0 - 1e-9
    assert r.peers.tokens_end.min() < 0


def test_seeding_reward_pool_runs_out():
    r = run(
        with_incentive(
            {
                "name": "seeding_reward",
                "basis": "bytes",
                "rate": 1.0,
                "funding": "pool",
                "pool_tokens": 10.0,
            }
        )
    )
    paid = r.payments[r.payments.reason == "seeding_reward"]
    assert paid.amount.sum() == pytest.approx(10.0)  # the pool, and not a token more
    assert_invariants_ok(r)


def test_sybils_farm_an_unverified_per_byte_reward(scenario_run):
    """20 identities claiming 50 kB/s to each other earn about twice an honest peer's reward;
    verifying that a peer outside the group received the bytes removes the gain."""
    farmed = scenario_run("sybil-attack")  # the golden's run
    checked = scenario_run("sybil-attack", overrides=("incentive.verified=true",))
    per = lambda r: r.peers.groupby("peer_class").tokens_end.mean()  # noqa: E731
    assert per(farmed)["sybil"] > 1.5 * per(farmed)["honest"]
    assert per(checked)["sybil"] < 1.2 * per(checked)["honest"]
    assert (farmed.payments.reason == "self_dealing").any()
    assert not (checked.payments.reason == "self_dealing").any()


def test_ratio_enforcement_refuses_accounts_under_the_ratio():
    """Free-riders (ratio 0) are barred once past the grace; sharers clear a low minimum.
    Refusal takes effect at the uploaders' next rechoke, so a barred peer may still receive up
    to one rechoke interval's worth (10 s at 200 kB/s) after crossing the grace."""
    data = with_incentive(
        {"name": "ratio_credit", "min_ratio": 0.05, "grace_fraction": 0.25, "bonus_per_hour": 0.0}
    )
    data["peers"][1]["free_rider"] = True  # these can never raise their ratio
    data["stop"]["max_time_s"] = 1500
    r = run(data)
    riders = r.peers[r.peers.peer_class == "slow"]
    sharers = r.peers[r.peers.peer_class == "fast"]
    assert riders.complete_s.isna().all()
    grace = 0.25 * TINY["torrent"]["file_bytes"]
    assert (riders.downloaded_bytes <= grace + 10 * 200_000 + 262144).all()
    assert sharers.complete_s.notna().all()


def test_swap_allowance_forgives_most_traffic_and_one_sided_flows_pay():
    """SWAP: the time-based allowance (4.5 M units/s, about 110 kB/s of chunks at proximity
    16) forgives balanced or slow traffic; without it every byte is billed. The allowance
    must cut the tokens paid in cheques by at least half, and the seed, which only gives,
    must be paid."""
    cheques = lambda r: r.payments[r.payments.reason == "swap_cheque"]  # noqa: E731
    free = run(with_incentive({"name": "swap"}, tokens={"mean": 100}))
    billed = run(with_incentive({"name": "swap", "free_units_per_s": 0.0}, tokens={"mean": 100}))
    assert cheques(free).amount.sum() < 0.5 * cheques(billed).amount.sum()
    assert (cheques(billed).payee == 0).any()
    assert_invariants_ok(billed)


def _leechers_over_time(result, start, end):
    return time_average(result.timeseries[result.timeseries.t_s <= end], "leechers", start)


MISSING_PIECE = {
    "name": "missing-piece",
    "seed": 3,
    "torrent": {"file_bytes": 2 * 1024 * 1024, "piece_bytes": 65536},  # 32 pieces
    "peers": [
        {
            "class": "seed",
            "count": 1,
            "upload_bps": 8192,
            "download_bps": 8192,
            "starts_as": "seed",
        },
        {
            "class": "peer",
            "count": 800,
            "upload_bps": 32768,
            "download_bps": 262144,
            "arrival": {"name": "poisson", "rate_per_s": 0.3},
            "seeding_cost_per_hour": {"mean": 1.0},
        },
    ],
    "tracker": {"max_connections": 40},
    "stop": {"all_done": False, "max_time_s": 2400},
    "record": {"sample_every_s": 20, "pieces": False},
}


@pytest.mark.parametrize("seed", [3, pytest.param(4, marks=pytest.mark.slow)])
def test_missing_piece_syndrome_and_its_cure(seed):
    """Hajek & Zhu: one fixed seed at U_s = 0.125 pieces/s, arrivals at 0.3/s > U_s, peers leave
    on completion: the leechers missing the same last piece (the one-club) pile up, so the
    population keeps growing (last third averages over 1.5x the middle third). With a seeding
    reward worth more than the peers' cost, economic peers seed on for a while (at least one
    piece-upload time, 2 s here) and the population stays bounded (last third within 1.3x of
    the middle third)."""
    sick = copy.deepcopy(MISSING_PIECE)
    sick["seed"] = seed
    sick["departure"] = {"name": "leave"}
    cured = copy.deepcopy(sick)
    cured["departure"] = {"name": "economic", "min_seed_s": 30, "max_s": 120}
    cured["incentive"] = {
        "name": "seeding_reward",
        "basis": "seconds",
        "rate": 10.0,
        "interval_s": 10.0,
    }
    a, b = swarmsim.simulate(sick), swarmsim.simulate(cured)
    for r in (a, b):
        assert r.manifest["status"] == "ok"
    growth = lambda r: _leechers_over_time(r, 1600, 2400) / _leechers_over_time(r, 800, 1600)  # noqa: E731
    assert growth(a) > 1.5, growth(a)
    assert growth(b) < 1.3, growth(b)
    seeded = (b.peers.leave_s - b.peers.complete_s).dropna()
    assert seeded.min() >= 30 - 1e-6


def mean_seeding_by_reward(size, replications=(1, 2)):
    """Mean seeding time (over the replications) at a per-hour reward of 0, 3, 6, 12."""
    means = []
    for rate in (0.0, 3.0, 6.0, 12.0):
        runs = [
            swarmsim.simulate(
                "scenarios/seed-question-seeding_reward.yaml",
                seed=s,
                overrides=[f"incentive.rate={rate}", "stop.all_done=false", *size],
            )
            for s in replications
        ]
        seeded = [
            (r.peers.leave_s.fillna(r.manifest["sim_time_s"]) - r.peers.complete_s).dropna().mean()
            for r in runs
        ]
        means.append(float(np.mean(seeded)))
    return means


def test_raising_the_reward_lengthens_seeding_monotonically():
    """Economic departures: peers seed while the reward rate covers their own (exponentially
    distributed, mean 4 tokens/h) cost. A per-hour seeding reward of 0, 3, 6, 12 tokens keeps
    a growing share of peers seeding, so the mean seeding time must rise at every step; means
    over two replications, and each step must gain at least 5 % (the share of peers whose cost
    is under the reward grows from 0 % to 53 %, 78 % and 95 %). 40 peers, 8 MiB, 4,000 s
    (each step gains 14 % or more for seeds 1-6); -m slow runs 120 peers, 32 MiB, 6,000 s."""
    size = ["stop.max_time_s=4000", "peers[1].count=40", "torrent.file_bytes=8388608"]
    means = mean_seeding_by_reward(size)
    assert all(b >= 1.05 * a for a, b in zip(means, means[1:], strict=False)), means


@pytest.mark.slow
def test_raising_the_reward_lengthens_seeding_monotonically_full_size():
    means = mean_seeding_by_reward(["stop.max_time_s=6000", "peers[1].count=120"])
    assert all(b >= 1.05 * a for a, b in zip(means, means[1:], strict=False)), means


def test_scrip_economy_crashes_with_too_much_money():
    """Kash, Friedman & Halpern: with agents who work only while poorer than a threshold (20
    tokens here) and buyers who must pay, welfare (peers served within the horizon) rises with
    the money supply and collapses once everyone starts at or above the threshold."""
    done = {}
    for supply in (2, 15, 40):
        r = swarmsim.simulate(
            "scenarios/scrip-crash.yaml", overrides=[f"peers[1].tokens.mean={supply}"]
        )
        assert r.manifest["status"] == "ok"
        done[supply] = r.summary["completed"]
    assert done[15] > 2 * done[2], done
    assert done[40] < 0.5 * done[15], done


def test_bid_auction_leaves_the_optimistic_unchoke_alone_and_winners_hold_their_slots():
    """BitTorrent Token white paper: optimistic slots are not auctioned. Provider 0 proposes
    four unchokes (slots 0-3, slot 3 optimistic); bidders at slots 0, 1 and 4 win the three
    paid slots, and the one slot left goes to the optimistic pick, not to the better-rated
    tit-for-tat pick at slot 2. Winners keep their slots until the next round."""

    from swarmsim.api.views import ChokeView
    from swarmsim.ledger import Ledger
    from swarmsim.policies.incentives import AUCTIONS, INCENTIVES, IncentiveContext

    n = 7  # provider 0, neighbours 1..6 in slots 0..5
    ledger = Ledger(n, reasons=("bid",))
    for peer in (1, 2, 5):  # the bidders: neighbours in slots 0, 1 and 4
        ledger.grant(peer, 100.0)
    from swarmsim.api.tables import Rows

    auctions = Rows(AUCTIONS)
    ctx = IncentiveContext(
        ledger=ledger,
        rows=lambda table: auctions,
        file_bytes=100 * 262144,
        piece_bytes=262144,
        online=np.ones(n, dtype=bool),
        is_seed=np.zeros(n, dtype=bool),
        have=np.full(n, 10),
        uploaded=np.zeros(n),
        downloaded=np.zeros(n),
        group=np.full(n, -1),
        self_dealing_bps=np.zeros(n),
    )
    bid = INCENTIVES.build("bid", {"paid_slots": 3})
    bid.setup(ctx)
    view = ChokeView.build(nbr=np.arange(1, 7), peers=[0], received_bps=[50, 40, 30, 20, 10, 0])
    out = np.array([[True, True, True, True, False, False]])
    optimistic = np.array([[False, False, False, True, False, False]])
    got = bid.adjust(view, out, np.random.default_rng(0), optimistic)[0] > 0
    assert list(np.flatnonzero(got)) == [0, 1, 3, 4]  # paid 0, 1, 4; optimistic 3 kept
    # a choker that does not say: the best other pick by rate stays
    got = bid.adjust(view, out, np.random.default_rng(0), None)[0] > 0
    assert list(np.flatnonzero(got)) == [0, 1, 2, 4]
    assert len(auctions) == 2 and auctions.frame().winners.tolist() == [3, 3]
    # an event rechoke between rounds (say, someone lost interest): the choker alone would
    # drop the paid slot 4; the winners keep what they paid for, and no new auction runs
    between = ChokeView.build(
        nbr=np.arange(1, 7), peers=[0], received_bps=[50, 40, 30, 20, 10, 0], periodic=False
    )
    got = bid.adjust(between, out, np.random.default_rng(0), optimistic)[0] > 0
    assert list(np.flatnonzero(got)) == [0, 1, 3, 4] and len(auctions) == 2
