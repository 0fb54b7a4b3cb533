"""Amount tests: the exact tokens each incentive policy moves, on hand-built ledgers and
contexts whose payments can be worked out by hand (issue 18).

Every test states the arithmetic it checks. Units: P = one 256 KiB piece, MiB = 2**20 bytes.
The policies are called directly (``setup``, ``adjust``, ``on_piece``, ``on_interval``); one
test runs a tiny swarm to pin the engine's wiring of ``pay_per_piece``.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from swarmsim.api.tables import Rows
from swarmsim.api.views import ChokeView
from swarmsim.ledger import MINT, Ledger
from swarmsim.policies.incentives import INCENTIVES, IncentiveContext
from tests.conftest import TINY, assert_invariants_ok, run

P = 262144  # piece bytes
MiB = 1024 * 1024
RNG = np.random.default_rng(0)


def build(name, params, n, *, balances=(), credit=0.0, file_bytes=100 * P, **arrays):
    """The policy ``name`` set up on an ``n``-peer ledger. ``balances`` grants peers 0, 1, ...
    their starting tokens; ``arrays`` overrides the context's per-peer arrays."""
    policy = INCENTIVES.build(name, params)
    ledger = Ledger(n, credit_limit=credit, reasons=policy.reasons)
    for peer, amount in enumerate(balances):
        if amount:
            ledger.grant(peer, float(amount))
    tables: dict[str, Rows] = {}
    fields = {
        "online": np.ones(n, dtype=bool),
        "is_seed": np.zeros(n, dtype=bool),
        "have": np.full(n, 10),
        "uploaded": np.zeros(n),
        "downloaded": np.zeros(n),
        "group": np.full(n, -1),
        "self_dealing_bps": np.zeros(n),
    }
    fields.update({k: np.asarray(v) for k, v in arrays.items()})
    ctx = IncentiveContext(
        ledger=ledger,
        rows=lambda table: tables.setdefault(table.name, Rows(table)),
        file_bytes=file_bytes,
        piece_bytes=P,
        **fields,
    )
    policy.setup(ctx)
    return policy, ledger, tables


def paid(ledger, reason):
    """(payer, payee, amount) of every payment with ``reason``, in order."""
    t = ledger.payments_table()
    t = t[t.reason == reason]
    return list(zip(t.payer.tolist(), t.payee.tolist(), t.amount.tolist(), strict=True))


def unchoked(policy, view, out=None):
    """The slots ``policy.adjust`` leaves unchoked in row 0 of ``view``."""
    if out is None:
        out = np.ones(view.nbr.shape, dtype=bool)
    return np.flatnonzero(policy.adjust(view, out, RNG, None)[0] > 0).tolist()


# --- bid: BitTorrent Speed's uniform-price auction --------------------------------------------
#
# Provider 0; neighbours 1..5 in slots 0..4. Every bidder has 10 of 100 pieces, so
# remaining = 90 P and the automatic bid is balance / (90 P) tokens per byte (spending_rate 1):
# balances 360, 270, 180, 90, 0 bid 4/P, 3/P, 2/P, 1/P and nothing (peer 5 is not a bidder).
BIDDER_BALANCES = (0, 360, 270, 180, 90, 0)


def auction(paid_slots, balances=BIDDER_BALANCES, received_bps=None, **params):
    bid, ledger, tables = build("bid", {"paid_slots": paid_slots, **params}, 6, balances=balances)
    view = ChokeView.build(nbr=[1, 2, 3, 4, 5], peers=[0], received_bps=received_bps)
    got = unchoked(bid, view, np.zeros((1, 5), dtype=bool))
    return bid, ledger, tables["auctions"].frame(), got


@pytest.mark.parametrize(
    ("k", "winners", "price"),
    [
        (1, [1], 3.0),  # 1 slot: the bid of 4/P wins, pays the highest losing bid 3/P
        (2, [1, 2], 2.0),  # 2 slots: 4/P and 3/P win, both pay 2/P
        (3, [1, 2, 3], 1.0),  # 3 slots: the lowest bid 1/P loses and sets the price
        (4, [1, 2, 3, 4], 0.0),  # as many slots as bidders: no losing bid, price 0
        (5, [1, 2, 3, 4], 0.0),  # more slots than bidders: still price 0
    ],
)
def test_bid_k_winners_of_n_pay_the_highest_losing_bid_per_byte(k, winners, price):
    """Four bidders (4/P, 3/P, 2/P, 1/P per byte), k paid slots: the k highest win and each
    pays the (k+1)-th bid per byte (price 0 when k >= 4), not its own bid. A full piece from
    the provider costs a winner price/P x P = price tokens, half a piece price / 2; a loser,
    and a winner served by another uploader, pay nothing."""
    bid, ledger, auctions, got = auction(k)
    assert got == [w - 1 for w in winners]  # each winner's slot is unchoked
    assert auctions.bidders.tolist() == [4] and auctions.winners.tolist() == [len(winners)]
    assert auctions.price_per_byte.iloc[0] == pytest.approx(price / P, rel=1e-12)
    for peer in range(1, 6):
        bid.on_piece(1.0, 0, peer, P)  # one full piece to everyone
    bid.on_piece(2.0, 0, 1, P / 2)  # half a piece more to the top bidder
    bid.on_piece(3.0, 5, 1, P)  # a piece from peer 5, which held no auction
    want = {w: price for w in winners}
    want[1] += price / 2
    moved = {payee: 0.0 for payee in range(6)}
    for payer, payee, amount in paid(ledger, "bid"):
        assert payee == 0 and payer in winners
        moved[payer] += amount
    for peer in range(1, 6):
        assert moved[peer] == pytest.approx(want.get(peer, 0.0), rel=1e-12)
        assert ledger.balance[peer] == pytest.approx(BIDDER_BALANCES[peer] - moved[peer])
    assert ledger.balance[0] == pytest.approx(sum(want.values()), rel=1e-12)
    assert len(paid(ledger, "bid")) == (0 if price == 0 else len(winners) + 1)


@pytest.mark.parametrize(("rates", "winner"), [([0, 10, 20, 0, 0], 3), ([0, 20, 10, 0, 0], 2)])
def test_bid_tie_at_the_margin_goes_to_the_faster_uploader_and_sets_the_price(rates, winner):
    """Balances 360, 180, 180, 90 bid 4/P, 2/P, 2/P, 1/P; two paid slots. Peers 2 and 3 tie for
    the second slot: it goes to the one the provider receives faster from (the auction's tie
    key), and the tied loser's bid 2/P is the price, so that winner pays exactly its own bid:
    2 tokens per piece, as does the top bidder."""
    balances = (0, 360, 180, 180, 90, 0)
    bid, ledger, auctions, got = auction(2, balances=balances, received_bps=rates)
    assert got == [0, winner - 1]
    assert auctions.price_per_byte.iloc[0] == pytest.approx(2.0 / P, rel=1e-12)
    for peer in (1, 2, 3, 4):
        bid.on_piece(1.0, 0, peer, P)
    assert sorted((a, round(m, 9)) for a, _, m in paid(ledger, "bid")) == [(1, 2.0), (winner, 2.0)]


def test_bid_tie_at_the_top_pays_the_tied_bid():
    """One paid slot, two bids of 4/P (balances 360, 360): one wins and pays the other's bid,
    4/P per byte = 4 tokens per piece, the whole of its own bid."""
    bid, ledger, auctions, got = auction(1, balances=(0, 360, 360, 0, 0, 0))
    assert len(got) == 1 and auctions.price_per_byte.iloc[0] == pytest.approx(4.0 / P)
    bid.on_piece(1.0, 0, got[0] + 1, P)
    assert [round(m, 9) for _, _, m in paid(ledger, "bid")] == [4.0]


def test_bid_dry_wallet_pays_what_it_has_and_stops_bidding():
    """Two slots, price 2/P (from the 2/P bid). The top bidder (peer 1) spends all but 0.5 of
    its 360 tokens elsewhere; its next piece costs 2 tokens, so it pays 0.5, its bid drops
    to 0, and at the next round it is no bidder: three bidders 3/P, 2/P, 1/P, price 1/P."""
    bid, ledger, _, _ = auction(2)
    ledger.transfer(0.5, 1, 5, 359.5, "bid")  # peer 1 spends elsewhere
    bid.on_piece(1.0, 0, 1, P)
    assert paid(ledger, "bid")[-1] == (1, 0, 0.5)
    assert ledger.balance[1] == 0.0 and bid.bid[1] == 0.0
    # peer 5 now holds 359.5 tokens: bid 359.5 / (90 P), about 4/P; it is a bidder too
    view = ChokeView.build(nbr=[1, 2, 3, 4, 5], peers=[0], now_s=110.0)
    assert unchoked(bid, view, np.zeros((1, 5), dtype=bool)) == [1, 4]  # peers 2 and 5 win
    last = bid.auctions.frame().iloc[-1]
    assert last.bidders == 4 and last.price_per_byte == pytest.approx(2.0 / P)


def test_bid_rebids_only_on_a_change_above_ten_percent():
    """Two slots; peer 3's bid 2/P sets the price. When its balance falls 5 % (180 -> 171) its
    automatic bid 1.9/P is within 10 % of 2/P and is kept: the price stays 2/P. When it
    falls 15 % (-> 153) the bid moves to 1.7/P and so does the price."""
    bid, ledger, _, _ = auction(2)
    for t, spend, price in ((110.0, 9.0, 2.0), (120.0, 18.0, 1.7)):
        ledger.transfer(t, 3, 5, spend, "bid")
        view = ChokeView.build(nbr=[1, 2, 3, 4, -1], peers=[0], now_s=t)  # slot 4 free
        unchoked(bid, view, np.zeros((1, 5), dtype=bool))
        assert bid.price[0] == pytest.approx(price / P, rel=1e-12), t


# --- pay_per_piece ---------------------------------------------------------------------------


def test_pay_per_piece_charges_the_price_pro_rata_until_the_wallet_and_credit_run_out():
    """price_per_piece 2. Peer 1 (5 tokens) gets four full pieces from peer 0: it pays 2, 2,
    then the 1 it has left, then nothing. Peer 2 (5 tokens) gets a quarter piece (a short last
    piece): 2 x 1/4 = 0.5. Peer 3 (0 tokens, credit line 3) pays 2, then the 1 left of its
    credit, ending at -3."""
    ppp, ledger, _ = build(
        "pay_per_piece",
        {"price_per_piece": 2.0},
        4,
        balances=(0, 5, 5, 0),
        credit=np.array([0.0, 0.0, 0.0, 3.0]),
    )
    for t in range(4):
        ppp.on_piece(float(t), 0, 1, P)
    ppp.on_piece(5.0, 0, 2, P / 4)
    ppp.on_piece(6.0, 0, 3, P)
    ppp.on_piece(7.0, 0, 3, P)
    assert paid(ledger, "piece") == [
        (1, 0, 2.0),
        (1, 0, 2.0),
        (1, 0, 1.0),
        (2, 0, 0.5),
        (3, 0, 2.0),
        (3, 0, 1.0),
    ]
    assert ledger.balance.tolist() == [8.5, 0.0, 4.5, -3.0]
    assert ledger.check() == "ok"


def test_pay_per_piece_refuses_only_peers_who_cannot_pay_a_piece():
    """refuse_broke with price 2: a neighbour is served iff balance + credit >= 2. Peer 1 holds
    exactly 2 (served), peer 2 holds 1.5 (refused), peer 3 holds 0 with a credit line of 2
    (served), peer 4 holds 0 (refused). Without refuse_broke nobody is refused."""
    credit = np.array([0.0, 0.0, 0.0, 2.0, 0.0])
    balances = (0, 2.0, 1.5, 0, 0)
    view = ChokeView.build(nbr=[1, 2, 3, 4], peers=[0])
    strict, _, _ = build(
        "pay_per_piece",
        {"price_per_piece": 2.0, "refuse_broke": True},
        5,
        balances=balances,
        credit=credit,
    )
    assert unchoked(strict, view) == [0, 2]
    lax, _, _ = build(
        "pay_per_piece", {"price_per_piece": 2.0}, 5, balances=balances, credit=credit
    )
    assert unchoked(lax, view) == [0, 1, 2, 3]


def test_pay_per_piece_in_a_tiny_swarm_charges_every_delivered_piece_once():
    """TINY (16 leechers x 16 full pieces, 1,000 tokens each, price 1.5): every row of the
    pieces table is one payment of 1.5 from its downloader to the peer that delivered it, so
    each peer ends at start + 1.5 x (pieces it delivered - pieces it received); the seed,
    which received none, ends at 1.5 x its deliveries."""
    data = copy.deepcopy(TINY)
    data["incentive"] = {"name": "pay_per_piece", "price_per_piece": 1.5}
    for pc in data["peers"][1:]:
        pc["tokens"] = {"distribution": "fixed", "mean": 1000.0}
    r = run(data)
    assert_invariants_ok(r)
    pay = r.payments[r.payments.reason == "piece"]
    assert len(pay) == len(r.pieces) == 16 * 16
    assert np.allclose(pay.amount, 1.5)
    per_pair = pay.groupby(["payer", "payee"]).size()
    pieces = r.pieces.groupby(["peer_id", "from_peer"]).size()
    assert per_pair.to_dict() == pieces.to_dict()
    sent = r.pieces.groupby("from_peer").size().reindex(r.peers.peer_id, fill_value=0)
    got = r.pieces.groupby("peer_id").size().reindex(r.peers.peer_id, fill_value=0)
    expected = r.peers.tokens_start.to_numpy() + 1.5 * (sent.to_numpy() - got.to_numpy())
    assert np.allclose(r.peers.tokens_end.to_numpy(), expected)


# --- seeding_reward ---------------------------------------------------------------------------


def test_seeding_reward_per_byte_minted_pays_any_uploader():
    """basis bytes, rate 2 tokens per MiB, minted: a 256 KiB piece (1/4 MiB) earns its uploader
    0.5, a 64 KiB one 0.125, whether the uploader is a seed (peer 0) or a leecher (peer 1);
    the downloader pays nothing; all of it is minted."""
    sr, ledger, _ = build("seeding_reward", {"rate": 2.0}, 3, is_seed=[True, False, False])
    sr.on_piece(1.0, 0, 2, P)
    sr.on_piece(2.0, 1, 2, P)
    sr.on_piece(3.0, 0, 1, P / 4)
    assert paid(ledger, "seeding_reward") == [(MINT, 0, 0.5), (MINT, 1, 0.5), (MINT, 0, 0.125)]
    assert ledger.minted == 1.125 and ledger.balance.tolist() == [0.625, 0.5, 0.0]


def test_seeding_reward_per_byte_pool_runs_dry():
    """basis bytes, rate 2/MiB, a pool of 1.2 tokens: four pieces due 0.5 each are paid 0.5,
    0.5, the 0.2 left, then nothing; the pool ends empty and nothing more is minted."""
    sr, ledger, _ = build("seeding_reward", {"rate": 2.0, "funding": "pool", "pool_tokens": 1.2}, 2)
    pool = sr.source
    assert pool < MINT and ledger.pools[pool] == 1.2
    for t in range(4):
        sr.on_piece(float(t), 0, 1, P)
    amounts = [m for payer, _, m in paid(ledger, "seeding_reward") if payer == pool]
    assert amounts == pytest.approx([0.5, 0.5, 0.2], rel=1e-12)
    assert len(paid(ledger, "seeding_reward")) == 3
    assert ledger.pools[pool] == 0.0 and ledger.balance[0] == pytest.approx(1.2)
    assert ledger.minted == 1.2  # the pool's funding, nothing since


def test_seeding_reward_per_hour_pays_online_seeds_for_the_interval():
    """basis seconds, rate 6 tokens per seeding hour: a 60 s interval pays each online seed
    6 x 60 / 3600 = 0.1, a 30 s one 0.05. Peers 0 and 1 are online seeds; peer 2 is a seed
    offline, peers 3 and 4 are leechers: they get nothing. Pieces earn nothing per byte."""
    sr, ledger, _ = build(
        "seeding_reward",
        {"basis": "seconds", "rate": 6.0, "interval_s": 60.0},
        5,
        is_seed=[True, True, True, False, False],
        online=[True, True, False, True, True],
    )
    assert sr.interval_s == 60.0
    sr.on_piece(10.0, 0, 3, P)
    sr.on_interval(60.0, 60.0)
    sr.on_interval(90.0, 30.0)
    assert [(b, round(m, 12)) for _, b, m in paid(ledger, "seeding_reward")] == [
        (0, 0.1),
        (1, 0.1),
        (0, 0.05),
        (1, 0.05),
    ]
    assert ledger.balance[[2, 3, 4]].tolist() == [0.0, 0.0, 0.0]


def test_seeding_reward_per_hour_pool_runs_dry_in_peer_order():
    """basis seconds, rate 6/h, 60 s intervals, a pool of 0.25 and three online seeds: the
    first interval owes 0.1 each; seeds 0 and 1 get 0.1, seed 2 the 0.05 left; the second
    interval pays nobody."""
    sr, ledger, _ = build(
        "seeding_reward",
        {"basis": "seconds", "rate": 6.0, "funding": "pool", "pool_tokens": 0.25},
        3,
        is_seed=[True, True, True],
    )
    sr.on_interval(60.0, 60.0)
    sr.on_interval(120.0, 60.0)
    got = paid(ledger, "seeding_reward")
    assert [b for _, b, _ in got] == [0, 1, 2]
    assert [m for _, _, m in got] == pytest.approx([0.1, 0.1, 0.05], rel=1e-9)
    assert ledger.pools[sr.source] == pytest.approx(0.0, abs=1e-15)
    assert ledger.check() == "ok"


@pytest.mark.parametrize("verified", [False, True])
def test_seeding_reward_verified_ignores_uploads_inside_a_collusion_group(verified):
    """rate 2/MiB, groups [-1, 0, 0, 1]. A piece from 1 to 2 (same group) earns 0.5 unverified
    and nothing verified; a piece from 1 to 3 (other group) and from 0 to 1 (no group) earn
    0.5 either way. Claimed uploads: peers 1 and 2 each claim 1/8 MiB/s; over an 8 s interval
    unverified pays peer 1 2 x 1 MiB = 2 tokens as self_dealing (peer 2 is offline: nothing);
    verified pays no claims."""
    sr, ledger, _ = build(
        "seeding_reward",
        {"rate": 2.0, "verified": verified},
        4,
        group=[-1, 0, 0, 1],
        self_dealing_bps=[0.0, MiB / 8, MiB / 8, 0.0],
        online=[True, True, False, True],
    )
    sr.on_piece(1.0, 1, 2, P)
    sr.on_piece(2.0, 1, 3, P)
    sr.on_piece(3.0, 0, 1, P)
    sr.on_interval(8.0, 8.0)
    table = ledger.payments_table()
    rows = lambda reason: list(  # noqa: E731
        table[table.reason == reason][["t_s", "payee", "amount"]].itertuples(index=False, name=None)
    )
    if verified:  # the pieces at t = 2 (1 -> 3) and t = 3 (0 -> 1) only
        assert rows("seeding_reward") == [(2.0, 1, 0.5), (3.0, 0, 0.5)]
        assert rows("self_dealing") == []
    else:
        assert rows("seeding_reward") == [(1.0, 1, 0.5), (2.0, 1, 0.5), (3.0, 0, 0.5)]
        assert rows("self_dealing") == [(8.0, 1, 2.0)]


# --- ratio_credit ------------------------------------------------------------------------------
#
# A 16 MiB file, grace_fraction 0.5 (the ratio counts once an account downloaded more than
# 8 MiB), min_ratio 0.25, bonus points worth 1 MiB of upload each.
RATIO = {"min_ratio": 0.25, "grace_fraction": 0.5, "bonus_per_hour": 2.0}


def test_ratio_refusal_at_the_exact_boundaries():
    """Refused iff downloaded > 8 MiB and (upload + credit) / downloaded < 0.25:
    peer 1: 8 MiB down, 0 up: still in the grace (8 MiB is not more than 8 MiB): served;
    peer 2: 8 MiB + 1 B down, 0 up: refused;
    peer 3: 12 MiB down, 3 MiB up: ratio exactly 0.25: served;
    peer 4: 12 MiB down, 3 MiB - 1 B up: refused."""
    down = [0, 8 * MiB, 8 * MiB + 1, 12 * MiB, 12 * MiB]
    up = [0, 0, 0, 3 * MiB, 3 * MiB - 1]
    rc, _, _ = build("ratio_credit", RATIO, 5, file_bytes=16 * MiB, downloaded=down, uploaded=up)
    assert rc.ratio(np.array([3]))[0] == 0.25
    assert rc.barred(np.arange(1, 5)).tolist() == [False, True, False, True]
    view = ChokeView.build(nbr=[1, 2, 3, 4], peers=[0])
    assert unchoked(rc, view) == [0, 2]


def test_ratio_bonus_points_are_minted_per_seeding_hour_and_count_as_upload():
    """bonus_per_hour 2: a 1800 s interval mints 2 x 1800 / 3600 = 1 point to each online seed
    (peers 0 and 1; peer 2 is an offline seed, peer 3 a leecher: nothing), a 900 s one 0.5.
    Peer 1 downloaded 12 MiB and uploaded 2 MiB: ratio 2/12 < 0.25, refused; its first point
    adds 1 MiB of credit, (2 + 1) / 12 = 0.25: served again."""
    rc, ledger, _ = build(
        "ratio_credit",
        RATIO,
        4,
        file_bytes=16 * MiB,
        is_seed=[True, True, True, False],
        online=[True, True, False, True],
        downloaded=[0, 12 * MiB, 0, 0],
        uploaded=[0, 2 * MiB, 0, 0],
    )
    assert rc.barred(np.array([1])).tolist() == [True]
    rc.on_interval(1800.0, 1800.0)
    assert paid(ledger, "bonus") == [(MINT, 0, 1.0), (MINT, 1, 1.0)]
    assert rc.ratio(np.array([1]))[0] == 0.25
    assert rc.barred(np.array([1])).tolist() == [False]
    rc.on_interval(2700.0, 900.0)
    assert [m for _, _, m in paid(ledger, "bonus")][2:] == [0.5, 0.5]
    assert ledger.balance.tolist() == [1.5, 1.5, 0.0, 0.0]


def test_ratio_counts_the_fake_uploads_of_colluders():
    """Colluder peer 1 (group 0) claims 1 MiB per 64 s (16,384 B/s); it downloaded 12 MiB
    and uploaded nothing. After one 64 s interval its credit is 1 MiB (ratio 1/12: refused),
    after three it is 3 MiB (ratio 0.25: served). Bonus points are off."""
    rc, _, _ = build(
        "ratio_credit",
        {**RATIO, "bonus_per_hour": 0.0},
        2,
        file_bytes=16 * MiB,
        downloaded=[0, 12 * MiB],
        group=[-1, 0],
        self_dealing_bps=[0.0, MiB / 64],
    )
    rc.on_interval(64.0, 64.0)
    assert rc.fake_up[1] == MiB and rc.barred(np.array([1]))[0]
    rc.on_interval(128.0, 64.0)
    rc.on_interval(192.0, 64.0)
    assert rc.ratio(np.array([1]))[0] == 0.25
    assert not rc.barred(np.array([1]))[0]


# --- swap: Swarm's bilateral SWAP accounting ---------------------------------------------------
#
# Defaults: proximity 16, so a 4 KiB chunk costs (31 - 16 + 1) x 10,000 = 160,000 units and a
# 256 KiB piece (64 chunks) 10,240,000 units; payment threshold 13.5 M units, cheques past
# 50 % of it (6.75 M), refusal past 125 % (16.875 M); 4.5 M units/s forgiven; 1e-6 token/unit.
PIECE_UNITS = 10_240_000.0


def swap(balances=(100, 100, 100), **params):
    policy, ledger, _ = build("swap", params, 3, balances=balances)
    return policy, ledger


def debt(policy, debtor, creditor):
    return policy.debt.get((debtor, creditor), [0.0])[0]


@pytest.mark.parametrize(("proximity", "tokens"), [(16, 10.24), (0, 20.48), (31, None)])
def test_swap_chunk_price_by_proximity_without_allowance(proximity, tokens):
    """No allowance. One piece from 1 to 0 costs (31 - proximity + 1) x 10,000 x 64 units:
    proximity 16: 10.24 M > 6.75 M, a cheque of 10.24 tokens; proximity 0: 20.48 M, 20.48
    tokens; proximity 31: 640,000 units, under the threshold, no cheque (and after 11
    pieces, 7.04 M units: one cheque of 7.04 tokens)."""
    sw, ledger = swap(proximity=proximity, free_units_per_s=0.0)
    sw.on_piece(1.0, 1, 0, P, 1.0)
    if tokens is None:
        assert paid(ledger, "swap_cheque") == []
        assert debt(sw, 0, 1) == 640_000.0
        for t in range(2, 12):
            sw.on_piece(float(t), 1, 0, P, 1.0)
        tokens = 7.04
    (payer, payee, amount), *more = paid(ledger, "swap_cheque")
    assert (payer, payee, more) == (0, 1, [])
    assert amount == pytest.approx(tokens, rel=1e-12)
    assert ledger.balance[0] == pytest.approx(100 - tokens) and debt(sw, 0, 1) < 1e-6


def test_swap_allowance_forgives_free_units_per_second():
    """Default allowance 4.5 M units/s. A piece over 2 s: 10.24 M - 9 M = 1.24 M owed. The next
    over 1 s: 1.24 + 10.24 - 4.5 = 6.98 M > 6.75 M: a cheque of 6.98 tokens, debt back to 0.
    Idle until a piece over [18 s, 20 s]: the old debt (0) stays 0, then 10.24 - 9 = 1.24 M.
    A piece slower than the allowance (over 3 s: 10.24 - 13.5 < 0) leaves no debt."""
    sw, ledger = swap()
    sw.on_piece(2.0, 1, 0, P, 2.0)
    assert debt(sw, 0, 1) == 1_240_000.0
    sw.on_piece(3.0, 1, 0, P, 1.0)
    assert [(a, b, round(m, 9)) for a, b, m in paid(ledger, "swap_cheque")] == [(0, 1, 6.98)]
    assert debt(sw, 0, 1) == pytest.approx(0.0, abs=1e-6)
    sw.on_piece(20.0, 1, 0, P, 2.0)
    assert debt(sw, 0, 1) == pytest.approx(1_240_000.0, abs=1e-6)
    sw.on_piece(23.0, 2, 0, P, 3.0)
    assert debt(sw, 0, 2) == 0.0
    assert len(paid(ledger, "swap_cheque")) == 1


def test_swap_nets_mutual_debt():
    """No allowance, half pieces (5.12 M units). 1 -> 0: peer 0 owes 5.12 M. 0 -> 1: it nets
    against that debt: both owe 0. 1 -> 0 again: peer 0 owes 5.12 M (under 6.75 M: no
    cheque; without netting it would owe 10.24 M and pay). Then a full piece 0 -> 1 (10.24 M):
    5.12 M nets peer 0's debt, peer 1 owes the other 5.12 M. No token moves."""
    sw, ledger = swap(free_units_per_s=0.0)
    sw.on_piece(1.0, 1, 0, P / 2, 1.0)
    assert (debt(sw, 0, 1), debt(sw, 1, 0)) == (5_120_000.0, 0.0)
    sw.on_piece(2.0, 0, 1, P / 2, 1.0)
    assert (debt(sw, 0, 1), debt(sw, 1, 0)) == (0.0, 0.0)
    sw.on_piece(3.0, 1, 0, P / 2, 1.0)
    assert (debt(sw, 0, 1), debt(sw, 1, 0)) == (5_120_000.0, 0.0)
    sw.on_piece(4.0, 0, 1, P, 1.0)
    assert (debt(sw, 0, 1), debt(sw, 1, 0)) == (0.0, 5_120_000.0)
    assert paid(ledger, "swap_cheque") == []


def test_swap_settles_early_only_past_half_the_threshold():
    """No allowance. 172,800 bytes are 160,000 x 172,800 / 4,096 = 6,750,000 units, exactly
    50 % of the threshold: no cheque. One byte more (39.0625 units) crosses it: a cheque for
    the whole debt, 6.7500390625 tokens (early settlement: not waiting for the threshold)."""
    sw, ledger = swap(free_units_per_s=0.0)
    sw.on_piece(1.0, 1, 0, 172_800, 1.0)
    assert paid(ledger, "swap_cheque") == [] and debt(sw, 0, 1) == 6_750_000.0
    sw.on_piece(2.0, 1, 0, 1, 1.0)
    (_, _, amount), *more = paid(ledger, "swap_cheque")
    assert not more and amount == pytest.approx(6.7500390625, rel=1e-12)


def test_swap_paid_cheque_is_deducted_and_a_short_one_leaves_the_rest():
    """No allowance. A full piece (10.24 M units) is paid by a 10.24-token cheque and the debt
    drops to 0, so a half piece after it (5.12 M) owes 5.12 M and pays nothing (not a second
    cheque for 15.36 M). Peer 2, with 3 tokens, gets a piece: its cheque pays 3 tokens =
    3 M units, 7.24 M stay owed; a half piece more owes 12.36 M, and a broke peer pays nothing."""
    sw, ledger = swap(balances=(100, 100, 3), free_units_per_s=0.0)
    sw.on_piece(1.0, 1, 0, P, 1.0)
    sw.on_piece(2.0, 1, 0, P / 2, 1.0)
    assert debt(sw, 0, 1) == pytest.approx(5_120_000.0, abs=1e-6)
    sw.on_piece(3.0, 1, 2, P, 1.0)
    assert debt(sw, 2, 1) == pytest.approx(7_240_000.0, abs=1e-6)
    sw.on_piece(4.0, 1, 2, P / 2, 1.0)
    assert debt(sw, 2, 1) == pytest.approx(12_360_000.0, abs=1e-6)
    got = [(a, round(m, 9)) for a, _, m in paid(ledger, "swap_cheque")]
    assert got == [(0, 10.24), (2, 3.0)]
    assert ledger.balance.tolist() == pytest.approx([89.76, 113.24, 0.0])


def test_swap_disconnects_a_debtor_only_past_125_percent_of_the_threshold():
    """No allowance; peer 0 is broke. 432,000 bytes cost 16,875,000 units, exactly 125 % of
    13.5 M: its cheque moves nothing and creditor 1 still serves it. One byte more: 16.875 M
    + 39.0625 units, and 1 chokes it; peer 2, which owes nothing, stays unchoked."""
    sw, ledger = swap(balances=(0, 100, 100), free_units_per_s=0.0)
    sw.on_piece(1.0, 1, 0, 432_000, 1.0)
    assert debt(sw, 0, 1) == 16_875_000.0 and paid(ledger, "swap_cheque") == []
    view = ChokeView.build(nbr=[0, 2], peers=[1], now_s=5.0)
    assert unchoked(sw, view) == [0, 1]
    sw.on_piece(6.0, 1, 0, 1, 1.0)
    assert unchoked(sw, ChokeView.build(nbr=[0, 2], peers=[1], now_s=7.0)) == [1]


def test_swap_allowance_lets_a_refused_debtor_back_in():
    """Default allowance; broke peer 0 receives two pieces at t = 10 s at once (duration 0):
    20.48 M units owed. At 10.8 s the allowance has forgiven 3.6 M: 16.88 M > 16.875 M, still
    refused; at 10.81 s 3.645 M: 16.835 M, served again."""
    sw, _ = swap(balances=(0, 100, 100))
    sw.on_piece(10.0, 1, 0, 2 * P, 0.0)
    assert debt(sw, 0, 1) == 20_480_000.0
    assert unchoked(sw, ChokeView.build(nbr=[0, 2], peers=[1], now_s=10.8)) == [1]
    assert unchoked(sw, ChokeView.build(nbr=[0, 2], peers=[1], now_s=10.81)) == [0, 1]


def test_swap_debt_does_not_depend_on_a_rechoke_during_the_transfer():
    """Default allowance. Peer 0 has a (zero) debt to 1 from a first half piece. A piece over
    [10 s, 12 s] costs 10.24 M - 2 s x 4.5 M = 1.24 M whether or not creditor 1 rechokes at
    11 s and looks at the debt (a look that moved the debt's clock would leave
    10.24 - 4.5 = 5.74 M)."""
    sw, _ = swap()
    sw.on_piece(2.0, 1, 0, P / 2, 2.0)  # 5.12 M - 9 M: the pair's entry exists, owing 0
    unchoked(sw, ChokeView.build(nbr=[0, 2], peers=[1], now_s=11.0))
    sw.on_piece(12.0, 1, 0, P, 2.0)
    assert debt(sw, 0, 1) == pytest.approx(1_240_000.0)
