"""The other chokers on hand-built views (no SimPy): each rule their source states."""

from __future__ import annotations

import numpy as np
import pytest

from swarmsim.api import Unchoke
from swarmsim.api.views import ChokeView
from swarmsim.policies.choking import CHOKERS


def build(name, c_slots, **params):
    c = CHOKERS.build(name, params)
    c.setup(4, c_slots)
    return c


def rng(seed=0):
    return np.random.default_rng(seed)


# --- libtorrent ------------------------------------------------------------------------------


def started(name="libtorrent", c_slots=12, now=0.0, **params):
    """A libtorrent choker for one peer whose session started at ``now``."""
    c = build(name, c_slots, **params)
    assert c.start(0, now) == 1.0  # both rounds come one tick after the start
    return c


def test_libtorrent_fixed_slots_seven_regular_plus_one_optimistic():
    c = started()
    got = np.arange(12, dtype=float) * 1000  # peer 11 sent us most since the start
    view = ChokeView.build(12, received_total=got, now_s=1.0)
    decision = c.rechoke(view, rng())
    mask, optimistic = decision.mask[0], decision.optimistic[0]
    assert mask.sum() == 8
    assert set(np.flatnonzero(mask)) >= set(range(5, 12))  # the 7 best senders
    assert optimistic.sum() == 1 and not (optimistic & (np.arange(12) >= 5)).any()
    assert list(c.next_round_s(np.array([0]))) == [16.0]  # regular 16 s, optimistic 31 s


def test_libtorrent_ranks_by_bytes_since_the_last_regular_round():
    c = started(c_slots=4, unchoke_slots=2, optimistic_slots=1)
    c.rechoke(ChokeView.build(4, received_total=[9e6, 0, 0, 0], now_s=1.0), rng())
    # at 16 s peer 0's old bytes no longer count: peer 3 sent most in the last 15 s
    view = ChokeView.build(4, received_total=[9e6 + 10, 0, 0, 5000], now_s=16.0)
    decision = c.rechoke(view, rng())
    regular = decision.mask[0] & ~decision.optimistic[0]
    assert list(np.flatnonzero(regular)) == [3]


def test_libtorrent_round_robin_demotes_a_peer_past_its_quota():
    """round_robin (choker.cpp unchoke_compare_rr): unchoked for over a minute and sent more
    than seeding_piece_quota pieces' worth of bytes since -> ranked after everyone else."""
    sent = np.full(10, 5000.0)

    def regular_round():
        c = started(c_slots=10, now=499.0, unchoke_slots=3, optimistic_slots=1)
        view = ChokeView.build(
            10,
            is_seed=True,
            now_s=500.0,
            sent_total=sent,
            unchoked=[True] + [False] * 9,
            last_unchoked_s=[300.0] + [-np.inf] * 9,
            connected_s=np.arange(10.0),
        )
        decision = c.rechoke(view, rng())
        return decision.mask[0] & ~decision.optimistic[0]

    sent[0] = 25 * 262144.0  # the fastest by far, but past its 20-piece quota
    regular = regular_round()
    assert not regular[0]
    assert list(np.flatnonzero(regular)) == [1, 2]  # choked peers: the longest connected first
    sent[0] = 15 * 262144.0  # under quota: it keeps its slot
    assert regular_round()[0]


@pytest.mark.parametrize(
    ("rates", "slots"),
    [
        ([5000, 4000, 3000, 100], 3),  # 5000 >= 1024, 4000 >= 3072, 3000 < 5120 -> 2 + 1
        ([100, 50, 0, 0], 1),  # nobody clears 1024 B/s -> 0 + 1
        ([20000, 15000, 9000, 7500], 5),  # thresholds 1024, 3072, 5120, 7168: all four + 1
    ],
)
def test_libtorrent_rate_based_opens_exactly_the_slots_its_thresholds_allow(rates, slots):
    c = build("libtorrent", 4, choking_algorithm="rate_based")
    view = ChokeView.build(4)
    assert c.slots(view, np.atleast_2d(np.asarray(rates, float)))[0] == slots


def test_libtorrent_rate_based_starts_with_one_optimistic_slot_and_grows_by_promotion():
    """A fresh rate_based peer has 1 slot, kept for the optimistic unchoke, so it unchokes
    nobody regularly; once the optimistic peer sends enough it is promoted to a regular slot
    and a new optimistic unchoke follows at once (recalculate_unchoke_slots)."""
    c = started(c_slots=6, choking_algorithm="rate_based")
    decision = c.rechoke(ChokeView.build(6, now_s=1.0), rng())
    mask = decision.mask[0]
    assert mask.sum() == 1 and decision.optimistic[0].sum() == 1  # the optimistic slot only
    first = int(np.flatnonzero(mask)[0])
    sent = np.zeros(6)
    sent[first] = 15 * 40000.0  # 40 kB/s over the 15 s round
    view = ChokeView.build(6, now_s=16.0, unchoked=mask, sent_total=sent)
    decision = c.rechoke(view, rng())
    mask, optimistic = decision.mask[0], decision.optimistic[0]
    assert mask[first] and not optimistic[first]  # promoted
    assert mask.sum() == 2 and optimistic.sum() == 1  # and a new optimistic peer


def test_libtorrent_optimistic_unchoke_goes_to_the_longest_waiting_peer():
    c = started(c_slots=6, unchoke_slots=2, optimistic_slots=1)
    got = np.array([9e9, 0, 0, 0, 0, 0])  # peer 0 holds the regular slot throughout
    picks, unchoked = [], np.zeros(6, bool)
    for k in range(5):
        view = ChokeView.build(
            6, received_total=got * (k + 1), unchoked=unchoked, now_s=1.0 + 30 * k
        )
        decision = c.rechoke(view, rng(k))
        unchoked = decision.mask[0]
        picks.append(int(np.flatnonzero(decision.optimistic[0])[0]))
    assert sorted(picks) == [1, 2, 3, 4, 5]  # every waiting peer once: never-tried first


def test_libtorrent_optimistic_ties_go_to_the_earliest_connection():
    """Among peers equally long without an optimistic unchoke, libtorrent's partial_sort over
    its connection set keeps the session's order: the earliest connection, then (made at the
    same time) the lowest peer index, whatever the random stream says."""
    picks = set()
    for seed in range(6):
        c = started(c_slots=6, unchoke_slots=2, optimistic_slots=1)
        view = ChokeView.build(6, now_s=1.0, connected_s=[0.5, 0.5, 0.5, 0.5, 0.5, 0.5])
        decision = c.rechoke(view, rng(seed))
        picks.add(int(np.flatnonzero(decision.optimistic[0])[0]))
    assert picks == {1}  # peer 0 takes the regular slot, peer 1 the optimistic, every time
    c = started(c_slots=6, unchoke_slots=2, optimistic_slots=1)
    view = ChokeView.build(6, now_s=1.0, connected_s=[0.5, 0.5, 0.9, 0.9, 0.2, 0.9])
    decision = c.rechoke(view, rng())
    # peer 4 connected first and takes the regular slot (longest since connecting); the
    # optimistic one is the earliest connection of the rest: peer 0 before peer 1
    assert int(np.flatnonzero(decision.optimistic[0])[0]) == 0


def test_libtorrent_preemptive_unchoke_fills_free_slots_only():
    c = started(c_slots=6, unchoke_slots=3)
    assert c.has_free_slot(0, 2) and not c.has_free_slot(0, 3)
    view = ChokeView.build(
        6,
        now_s=0.5,  # between rounds: an event rechoke
        periodic=False,
        unchoked=[True, True, False, False, False, False],
        interested=[True, True, False, True, False, False],
    )
    mask = c.rechoke(view, rng()).mask[0]
    assert list(np.flatnonzero(mask)) == [0, 1, 3]
    rb = build("libtorrent", 6, choking_algorithm="rate_based")
    assert not rb.has_free_slot(0, 0)  # rate_based never unchokes between rounds


def test_libtorrent_a_lost_unchoked_peer_triggers_a_regular_round():
    c = started(c_slots=4, unchoke_slots=2, optimistic_slots=1)
    got = np.array([3000.0, 2000.0, 1000.0, 0.0])
    decision = c.rechoke(ChokeView.build(4, received_total=got, now_s=1.0), rng())
    mask = decision.mask[0]
    regular = mask & ~decision.optimistic[0]
    assert regular[0]
    lost = np.array([False, True, True, True])  # peer 0 is no longer interested
    view = ChokeView.build(
        4, now_s=5.0, periodic=False, interested=lost, unchoked=mask & lost, lost_unchoked=~lost
    )
    after = c.rechoke(view, rng())
    assert (after.mask[0] & ~after.optimistic[0]).sum() == 1  # the freed regular slot is filled now
    assert c.next_round_s(np.array([0]))[0] == 20.0  # and the 15 s cycle restarts


def test_libtorrent_a_lost_peer_triggers_its_rounds_even_if_interested_again():
    """libtorrent's choke_this_peer triggers the regular round (and the optimistic one, for an
    optimistic peer) when the peer loses interest; the rounds run at the next tick whatever
    the peer does meanwhile. Here the optimistic peer lost interest and regained it before the
    tick: with one slot (rate_based's start) the optimistic round must still pick a peer,
    or the peer would upload to nobody until its next 30 s round."""
    c = started(c_slots=4, choking_algorithm="rate_based")
    first = c.rechoke(ChokeView.build(4, now_s=1.0), rng())
    (opt,) = np.flatnonzero(first.optimistic[0])
    gone = np.arange(4) == opt
    view = ChokeView.build(4, now_s=5.0, periodic=False, unchoked=False, lost_unchoked=gone)
    after = c.rechoke(view, rng())
    assert after.optimistic[0].sum() == 1
    assert c.next_round_s(np.array([0]))[0] == 20.0


def test_libtorrent_anti_leech_prefers_new_and_nearly_done_peers():
    c = started(c_slots=4, unchoke_slots=2, optimistic_slots=1, seed_choking_algorithm="anti_leech")
    view = ChokeView.build(4, is_seed=True, n_pieces=100, have_counts=[50, 2, 48, 97], now_s=1.0)
    decision = c.rechoke(view, rng())
    mask, optimistic = decision.mask[0], decision.optimistic[0]
    # score |have - half| * 2000 / total: 2 pieces -> 960, 97 -> 940, 48 -> 40, 50 -> 0
    assert list(np.flatnonzero(mask & ~optimistic)) == [1]
    assert list(np.flatnonzero(optimistic)) == [0]  # ties: the earliest connection


# --- transmission -------------------------------------------------------------------------------


def test_transmission_keeps_its_optimistic_unchoke_for_four_rounds():
    c = build("transmission", 12, unchoke_slots=2)
    recv = [900, 800] + [0] * 10
    picks = []
    for rnd in range(1, 10):
        view = ChokeView.build(12, received_bps=recv, round=rnd, now_s=100.0 + 10 * rnd)
        mask = c.rechoke(view, rng(rnd)).mask[0]
        assert mask[0] and mask[1]
        picks.append(int(np.flatnonzero(mask[2:])[0]) + 2)
    assert picks[0] == picks[1] == picks[2] == picks[3]  # held for 4 rechokes
    assert len(set(picks)) >= 2


def test_transmission_newcomers_three_times_as_likely():
    hits, trials = 0, 3000
    for t in range(trials):
        c = build("transmission", 5, unchoke_slots=1)
        view = ChokeView.build(
            5, received_bps=[900, 0, 0, 0, 0], round=1, now_s=100.0, connected_s=[0, 0, 0, 0, 90.0]
        )  # peer 4 connected 10 s ago
        mask = c.rechoke(view, rng(t)).mask[0]
        hits += mask[4]
    assert hits / trials == pytest.approx(3 / 6, abs=0.04)  # weights 1, 1, 1, 3


# --- strategic ------------------------------------------------------------------------------------


def test_bittyrant_adjusts_reciprocation_estimates_and_fills_its_capacity():
    c = build("bittyrant", 6, initial_u_bps=10_000, initial_d_bps=10_000)
    view = ChokeView.build(6, upload_bps=35_000, round=1, received_bps=[0] * 6)
    first = c.rechoke(view, rng()).mask[0]
    assert (first > 0).sum() == 3  # 3 x 10 kB/s fit in 35 kB/s, a fourth would not
    chosen = first > 0
    # next round: peer 0 reciprocated, the other chosen did not
    recv = np.zeros(6)
    recv[0] = 30_000
    view = ChokeView.build(6, upload_bps=35_000, round=2, received_bps=recv, unchoked=chosen)
    c.rechoke(view, rng())
    st = c.state.rows(view)
    assert st["u"][0, 0] == pytest.approx(10_000)  # reciprocated once: unchanged
    assert all(st["u"][0, k] == pytest.approx(12_000) for k in np.flatnonzero(chosen)[1:])
    assert st["d"][0, 0] == pytest.approx(30_000)
    for rnd in (3, 4):
        view = ChokeView.build(6, upload_bps=35_000, round=rnd, received_bps=recv, unchoked=chosen)
        c.rechoke(view, rng())
    assert c.state.rows(view)["u"][0, 0] == pytest.approx(9_000)  # 3 rounds running: x 0.9


def test_propshare_splits_in_proportion_to_what_peers_gave():
    c = build("propshare", 5)
    view = ChokeView.build(5, received_bps=[300, 100, 0, 0, 0], round=1)
    w = c.rechoke(view, rng()).mask[0]
    assert w[0] == pytest.approx(0.9 * 0.75) and w[1] == pytest.approx(0.9 * 0.25)
    assert (w[2:] > 0).sum() == 1 and w[2:].sum() == pytest.approx(0.1)


def test_propshare_holds_its_optimistic_peer_for_three_rounds_then_rotates():
    """The optimistic peer keeps its slot for optimistic_rounds (BitTorrent's 30 s), so that
    it can reciprocate; then the slot goes to the peer unchoked longest ago."""
    c = build("propshare", 4)
    last = np.array([50.0, 40.0, 30.0, 20.0])  # peer 3 waited longest since its last unchoke
    picks = []
    unchoked = np.zeros(4, dtype=bool)
    for rnd in range(1, 6):
        view = ChokeView.build(4, round=rnd, unchoked=unchoked, last_unchoked_s=last)
        w = c.rechoke(view, rng()).mask[0]
        unchoked = w > 0
        assert unchoked.sum() == 1 and w.sum() == pytest.approx(1.0)  # no contributor: all
        picks.append(int(np.flatnonzero(unchoked)[0]))
        last = np.where(unchoked & (last < 100.0), 100.0 + rnd, last)  # now unchoked
    assert picks == [3, 3, 3, 2, 2]


def test_propshare_keeps_its_shares_between_rounds():
    """An event rechoke (a peer lost interest) keeps the other peers' proportional shares;
    they are re-set only at the next round."""
    c = build("propshare", 4)
    view = ChokeView.build(
        4,
        periodic=False,
        unchoked=[True, True, True, False],
        interested=[True, True, False, True],
        upload_share=[0.6, 0.3, 0.1, 0.0],
    )
    assert list(c.rechoke(view, rng()).mask[0]) == pytest.approx([0.6, 0.3, 0.0, 0.0])


def test_block_tft_stops_serving_a_peer_too_far_in_our_debt():
    c = build("block_tft", 5, delta_blocks=2)
    sent = np.array([0, 0, 0, 10 * 16384, 0.0])
    recv = np.array([0, 0, 0, 0, 0.0])
    view = ChokeView.build(
        5, received_bps=[50, 40, 30, 60, 0], sent_total=sent, received_total=recv, round=1
    )
    mask = c.rechoke(view, rng()).mask[0]
    assert not mask[3]  # 10 blocks ahead of what it gave us
    assert c.rechoke_after_piece(3 * 16384, 0) and not c.rechoke_after_piece(2 * 16384, 0)


def test_fairtorrent_serves_lowest_deficits_and_swaps_one_per_piece():
    c = build("fairtorrent", 6, unchoke_slots=2)
    sent = np.array([5e5, 1e5, 0, 2e5, 0, 0])
    recv = np.array([6e5, 0, 0, 0, 0, 0])
    view = ChokeView.build(6, sent_total=sent, received_total=recv, round=1)
    mask = c.rechoke(view, rng()).mask[0]
    assert list(np.flatnonzero(mask)) == [0, 2]  # deficits -1e5 and 0 (earliest connected)
    after = ChokeView.build(
        6,
        sent_total=sent + [0, 0, 3e5, 0, 0, 0],
        received_total=recv,
        periodic=False,
        unchoked=mask,
    )
    mask2 = c.rechoke(after, rng()).mask[0]
    assert mask2.sum() == 2 and mask2[0] and not mask2[2]  # peer 2 now owes 3e5: swapped out


def test_random_choker_ignores_rates():
    c = build("random", 10, unchoke_slots=3)
    counts = np.zeros(10)
    for t in range(300):
        view = ChokeView.build(10, received_bps=[1e6] + [0] * 9, round=t)
        counts += c.rechoke(view, rng(t)).mask[0]
    assert counts.sum() == 900 and counts[0] < 2 * counts[1:].mean()


# --- every built-in -------------------------------------------------------------------------------

HAS_OPTIMISTIC = {"mainline", "block_tft", "libtorrent", "transmission"}


@pytest.mark.parametrize("name", CHOKERS.names())
def test_every_builtin_answers_an_unchoke_with_its_optimistic_set(name):
    """A leecher and a seed rechoking together: the mask lies within ``interested``, the
    optimistic set (for chokers that have one) within the mask, and the choker keeps no
    ``optimistic`` attribute beside its answer."""
    c = build(name, 6, unchoke_slots=2)
    for peer in (0, 1):
        c.start(peer, 99.0)
    interested = np.array([[True] * 5 + [False], [True, False] * 3])
    view = ChokeView.build(
        nbr=[[2, 3, 4, 5, 6, 7], [0, 2, 3, 4, 5, 6]],
        peers=[0, 1],
        is_seed=[False, True],
        interested=interested,
        received_bps=[[50, 40, 30, 20, 10, 0]] * 2,
    )
    decision = c.rechoke(view, rng())
    assert isinstance(decision, Unchoke)
    unchoked = decision.mask > 0
    assert unchoked.shape == (2, 6) and not (unchoked & ~interested).any()
    assert unchoked.any(axis=1).all()
    if name in HAS_OPTIMISTIC:
        assert decision.optimistic.dtype == bool and decision.optimistic.shape == (2, 6)
        assert not (decision.optimistic & ~unchoked).any()
        assert decision.optimistic[0].any()  # the leecher's
    else:
        assert decision.optimistic is None
    assert not hasattr(c, "optimistic")
