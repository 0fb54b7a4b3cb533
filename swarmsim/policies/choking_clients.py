"""Chokers of real clients other than mainline: libtorrent (2.0) and Transmission.

Both follow their source, read at libtorrent v2.0.13 (``src/choker.cpp``,
``src/session_impl.cpp``, ``src/peer_connection.cpp``; the same in 2.1.0) and Transmission
``libtransmission/peer-mgr.cc``; comments name the function each rule comes from.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from swarmsim.api import Unchoke
from swarmsim.api.views import ChokeView
from swarmsim.policies.choking import CHOKERS, Choker, ChokerParams, first_k


class SlotState:
    """Per (peer, slot) flags a choker keeps, reset when a slot gets a new connection."""

    def __init__(self) -> None:
        self.owner = np.zeros((0, 0), dtype=np.int64)

    def setup(self, n_peers: int, max_connections: int, **arrays) -> None:
        self.owner = np.full((n_peers, max_connections), -1, dtype=np.int64)
        self._defaults = arrays
        for name, default in arrays.items():
            setattr(self, name, np.full((n_peers, max_connections), default))

    def rows(self, view: ChokeView) -> dict[str, np.ndarray]:
        """The state of the view's rows; new connections get the defaults."""
        fresh = view.valid & (self.owner[view.peers] != view.nbr)
        if fresh.any():
            rows, cols = np.nonzero(fresh)
            peers = view.peers[rows]
            self.owner[peers, cols] = view.nbr[rows, cols]
            for name, default in self._defaults.items():
                getattr(self, name)[peers, cols] = default
        return {name: getattr(self, name)[view.peers] for name in self._defaults}

    def store(self, view: ChokeView, **values) -> None:
        for name, value in values.items():
            getattr(self, name)[view.peers] = value


SECOND_TICK_S = 1.0  # libtorrent runs its choker from the session's once-a-second tick


def _catch_up(timers: np.ndarray, peers: np.ndarray, interval: float, now: float) -> np.ndarray:
    """The peers' round times, those missed by a tick or more (the engine asks a peer only
    once it has connections, and such a round would have found no candidate) moved on by
    whole intervals to their next time at or after ``now``."""
    t = timers[peers]
    missed = now - t >= SECOND_TICK_S - 1e-9
    if missed.any():
        t[missed] += np.ceil((now - t[missed]) / interval - 1e-9) * interval
        timers[peers] = t
    return t


@CHOKERS.register("libtorrent")
class Libtorrent(Choker):
    """libtorrent's choker (``session_impl::recalculate_unchoke_slots``,
    ``recalculate_optimistic_unchoke_slots``, ``choker.cpp``), so a scenario can mirror a live
    libtorrent peer one to one.

    Two timers per peer run on the session's 1 s tick, the first round of each one tick after
    the peer starts. Every ``interval_s`` (``unchoke_interval``) the regular round ranks the
    interested peers by bytes they sent us since the last regular round (``compare_peers``),
    ties by the seed algorithm: ``round_robin`` (peers unchoked for over 60 s that were sent
    more than ``seeding_piece_quota`` pieces' worth since rank last, then bytes we sent them
    that round, counted for unchoked peers only, then longest since unchoked, or since
    connected),
    ``fastest_upload`` or ``anti_leech`` (peers near 0 % or 100 % of the torrent first). Slots
    are ``unchoke_slots`` (``fixed_slots``) or, ``rate_based``, one per peer whose upload rate
    that round (bytes over the time since the last round) clears a threshold starting at
    ``rate_choker_initial_threshold`` and rising 2048 B/s per slot, plus one. Of the slots,
    the optimistic ones are kept back (as many as are optimistic now, or ``max(1, slots / 5)``)
    and the rest go to the best-ranked peers; an optimistic peer that ranks among them is
    promoted and forces an optimistic round at once. Every ``optimistic_interval_s`` the
    optimistic slots (``optimistic_slots``, 0 = ``max(1, slots / 5)``) go to the interested
    peers, choked or optimistic now, that waited longest since their last optimistic unchoke,
    never-tried first; the optimistic peers not chosen again are choked. When an unchoked peer
    is lost (not interested, gone) the round it held a slot of runs at the next tick.
    ``fixed_slots`` also unchokes a peer that has just connected or become interested at once
    while a slot is free (``preemptive_unchoke``); an optimistic round that leaves more peers
    unchoked than slots is followed by a regular round at the next tick. Peers choked by us
    may still fetch their BEP 6 allowed-fast pieces (``allowed_fast_set_size``).
    """

    rechoke_on_interest = True
    events_at_tick = True

    class Params(ChokerParams):
        interval_s: float = Field(15.0, gt=0, description="unchoke_interval")
        unchoke_slots: int = Field(8, ge=1, description="unchoke_slots_limit")
        optimistic_interval_s: float = Field(30.0, gt=0, description="optimistic_unchoke_interval")
        optimistic_slots: int = Field(
            0, ge=0, description="num_optimistic_unchoke_slots (0 = max(1, slots / 5))"
        )
        choking_algorithm: Literal["fixed_slots", "rate_based"] = "fixed_slots"
        seed_choking_algorithm: Literal["round_robin", "fastest_upload", "anti_leech"] = (
            "round_robin"
        )
        seeding_piece_quota: int = Field(20, ge=0)
        rate_choker_initial_threshold: float = Field(1024.0, ge=0)
        allowed_fast_set_size: int = Field(
            5,
            ge=0,
            description="BEP 6 allowed-fast set: pieces a choked, interested peer may still "
            "fetch from us (0 = off)",
        )

    def __init__(self, params: Params):
        super().__init__(params)
        self.allowed_fast_set_size = params.allowed_fast_set_size
        self.state = SlotState()
        self._slots = np.zeros(0, dtype=np.int64)
        self._next_regular = np.zeros(0)
        self._next_optimistic = np.zeros(0)
        self._last_round = np.zeros(0)

    def setup(self, n_peers: int, max_connections: int) -> None:
        self.state.setup(
            n_peers,
            max_connections,
            optimistic=False,
            mine=False,  # we unchoked it (regular or optimistic) at our last decision
            was_interested=False,  # it was interested at our last decision
            sent_at_unchoke=0.0,  # bytes we had sent it when we last unchoked it
            last_optimistic=-np.inf,
            recv_at_round=0.0,
            sent_at_round=0.0,
        )
        self._slots = np.full(n_peers, self.params.unchoke_slots, dtype=np.int64)
        self._next_regular = np.full(n_peers, np.inf)
        self._next_optimistic = np.full(n_peers, np.inf)
        self._last_round = np.zeros(n_peers)

    def start(self, peer: int, now_s: float) -> float:
        """Both timers start with the session: their first rounds come one tick later."""
        self._next_regular[peer] = self._next_optimistic[peer] = now_s + SECOND_TICK_S
        self._last_round[peer] = now_s
        return SECOND_TICK_S

    def next_round_s(self, peers: np.ndarray) -> np.ndarray:
        return np.minimum(self._next_regular[peers], self._next_optimistic[peers])

    def has_free_slot(self, peer: int, n_unchoked: int) -> bool:
        # session_impl::preemptive_unchoke: fixed slots only
        return self.params.choking_algorithm == "fixed_slots" and n_unchoked < self._slots[peer]

    def slots(self, view: ChokeView, sent_rate: np.ndarray) -> np.ndarray:
        """Upload slots per row: fixed, or the rate-based choker's threshold walk over the
        interested peers' upload rates (``unchoke_sort``)."""
        p = self.params
        b = view.nbr.shape[0]
        if p.choking_algorithm == "fixed_slots":
            return np.full(b, p.unchoke_slots, dtype=np.int64)
        rate = np.where(view.interested, sent_rate, -np.inf)
        ranked = -np.sort(-rate, axis=1)  # fastest first
        k = np.arange(ranked.shape[1])
        passes = ranked >= p.rate_choker_initial_threshold + 2048.0 * k  # threshold per slot
        return np.argmin(np.concatenate([passes, np.zeros((b, 1), bool)], axis=1), axis=1) + 1

    def _order(
        self, view: ChokeView, received: np.ndarray, sent: np.ndarray, since_unchoke: np.ndarray
    ) -> np.ndarray:
        """Slots best first: bytes received last round, then the seed algorithm's keys, then
        the longest since the last unchoke (or since connecting, for never-unchoked peers)."""
        p = self.params
        since = np.where(np.isfinite(view.last_unchoked_s), view.last_unchoked_s, view.connected_s)
        if p.seed_choking_algorithm == "round_robin":  # quota: bytes since the unchoke
            quota_done = (
                view.unchoked
                & (since_unchoke > p.seeding_piece_quota * view.piece_bytes)
                & (view.now_s - view.last_unchoked_s > 60.0)
            )
            keys = (since, -np.where(view.unchoked, sent, 0.0), quota_done)
        elif p.seed_choking_algorithm == "fastest_upload":
            keys = (since, -sent)
        else:  # anti_leech_score: what we sent a peer counts as pieces it has, up to half
            half = view.n_pieces / 2.0
            sent_pieces = view.sent_total_bytes() / view.piece_bytes
            have = np.maximum(np.minimum(sent_pieces, half), np.maximum(view.have_counts, 0))
            score = np.abs(have - half) * 1000.0 / max(half, 1.0)
            keys = (since, -score)
        return np.lexsort((*keys, -received), axis=1)

    def rechoke(self, view: ChokeView, rng: np.random.Generator) -> Unchoke:
        p = self.params
        peers, now = view.peers, view.now_s
        st = self.state.rows(view)
        interested = view.interested
        unchoked = view.unchoked & interested
        optimistic = st["optimistic"] & unchoked
        # an unchoked peer that lost interest or left since our last decision: libtorrent's
        # choke_this_peer / remove_peer trigger a regular round (and an optimistic one if it
        # held an optimistic slot) at the next tick, whatever happens to it meanwhile
        lost = view.lost_unchoked & st["mine"]
        regular_at = _catch_up(self._next_regular, peers, self.interval_s, now)
        optimistic_at = _catch_up(self._next_optimistic, peers, p.optimistic_interval_s, now)
        regular_due = (now >= regular_at - 1e-9) | lost.any(axis=1)
        optimistic_due = (now >= optimistic_at - 1e-9) | (lost & st["optimistic"]).any(axis=1)
        out = unchoked.copy()
        if regular_due.any():
            rows = np.flatnonzero(regular_due)
            sub = view.take(rows)
            got = sub.received_total_bytes()
            gave = sub.sent_total_bytes()
            received = np.where(sub.is_seed[:, None], 0.0, got - st["recv_at_round"][rows])
            sent = gave - st["sent_at_round"][rows]
            elapsed = np.maximum(now - self._last_round[peers[rows]], 1e-9)
            slots = self.slots(sub, sent / elapsed[:, None])
            self._slots[peers[rows]] = slots
            opt = optimistic[rows]
            n_opt = np.where(opt.any(axis=1), opt.sum(axis=1), np.maximum(1, slots // 5))
            order = self._order(sub, received, sent, gave - st["sent_at_unchoke"][rows])
            regular = first_k(order, sub.interested, np.maximum(slots - n_opt, 0))
            promoted = regular & opt
            optimistic[rows] &= ~promoted
            optimistic_due[rows] |= promoted.any(axis=1)  # the next optimistic round is now
            out[rows] = regular | optimistic[rows]
            st["recv_at_round"][rows] = got
            st["sent_at_round"][rows] = gave
            self._last_round[peers[rows]] = now
            self._next_regular[peers[rows]] = now + self.interval_s
        if optimistic_due.any():
            rows = np.flatnonzero(optimistic_due)
            n_opt = (
                np.full(len(rows), p.optimistic_slots)
                if p.optimistic_slots
                else np.maximum(1, self._slots[peers[rows]] // 5)
            )
            candidates = interested[rows] & (~out[rows] | optimistic[rows])
            waited = np.where(candidates, st["last_optimistic"][rows], np.inf)
            # partial_sort over the session's connections keeps equals in the session's
            # order (a std::set by the connection's address, in the order they were made):
            # the earliest connection first
            made = (view.connected_s[rows], view.nbr[rows])
            chosen = first_k(np.lexsort((*made[::-1], waited), axis=1), candidates, n_opt)
            fresh = chosen & ~optimistic[rows]
            st["last_optimistic"][rows] = np.where(fresh, now, st["last_optimistic"][rows])
            out[rows] = (out[rows] & ~optimistic[rows]) | chosen
            optimistic[rows] = chosen
            self._next_optimistic[peers[rows]] = now + p.optimistic_interval_s
            # more unchoked than slots (preemptive unchokes, then this round): libtorrent
            # trims them in a regular round at the next tick
            over = out[rows].sum(axis=1) > self._slots[peers[rows]]
            self._next_regular[peers[rows[over]]] = now
        idle = ~(regular_due | optimistic_due)
        if idle.any() and p.choking_algorithm == "fixed_slots":
            # preemptive unchoke (maybe_unchoke_this_peer): a peer that has just become
            # interested, or just connected, takes a free slot at once
            rows = np.flatnonzero(idle)
            sub = view.take(rows)
            free = np.maximum(self._slots[peers[rows]] - out[rows].sum(axis=1), 0)
            gave = sub.sent_total_bytes()
            order = self._order(
                sub,
                sub.received_total_bytes() - st["recv_at_round"][rows],
                gave - st["sent_at_round"][rows],
                gave - st["sent_at_unchoke"][rows],
            )
            fresh = sub.interested & ~st["was_interested"][rows] & ~out[rows]
            out[rows] |= first_k(order, fresh, free)
        newly = out & ~view.unchoked
        st["sent_at_unchoke"] = np.where(newly, view.sent_total_bytes(), st["sent_at_unchoke"])
        st["was_interested"] = interested
        st["optimistic"] = optimistic & out
        st["mine"] = out
        self.state.store(view, **st)
        return Unchoke(out, st["optimistic"])


@CHOKERS.register("transmission")
class Transmission(Choker):
    """Transmission's ``rechokeUploads`` (peer-mgr): every 10 s the ``unchoke_slots``
    interested peers with the best rate (download from them while leeching, upload to them
    when seeding; a ``rate_window_s`` window, 2 s in Transmission) are unchoked, previously
    unchoked peers first on ties; one optimistic unchoke drawn at random among the other
    interested peers, newcomers (connected under 45 s) three times as likely, is kept for
    ``optimistic_rounds`` rechokes (Transmission 2.x-3.x; 4.x dropped the newcomer weight)."""

    class Params(ChokerParams):
        unchoke_slots: int = Field(8, ge=1, description="upload_slots_per_torrent")
        optimistic_rounds: int = Field(4, ge=1, description="OPTIMISTIC_UNCHOKE_MULTIPLIER")
        newcomer_s: float = Field(
            45.0,
            ge=0,
            description="connections younger than this count three times in the optimistic draw",
        )

    def __init__(self, params: Params):
        super().__init__(params)
        self.state = SlotState()
        self._left = np.zeros(0, dtype=np.int64)

    def setup(self, n_peers: int, max_connections: int) -> None:
        self.state.setup(n_peers, max_connections, optimistic=False)
        self._left = np.zeros(n_peers, dtype=np.int64)

    def rechoke(self, view: ChokeView, rng: np.random.Generator) -> Unchoke:
        p = self.params
        st = self.state.rows(view)
        interested = view.interested
        optimistic = st["optimistic"] & interested
        rate = np.where(view.is_seed[:, None], view.sent_rate_bps(1), view.received_rate_bps(1))
        salt = rng.random(rate.shape)
        order = np.lexsort((salt, ~view.unchoked, -rate), axis=1)
        regular = first_k(
            order, interested & ~optimistic, np.full(len(view.peers), p.unchoke_slots)
        )
        left = self._left[view.peers] - (1 if view.periodic else 0)
        need = (~optimistic.any(axis=1)) | (left <= 0)
        if view.periodic and need.any():
            young = (view.now_s - view.connected_s) < p.newcomer_s
            weight = np.where(interested & ~regular, np.where(young, 3.0, 1.0), 0.0)
            for b in np.flatnonzero(need & (weight.sum(axis=1) > 0)).tolist():
                k = rng.choice(weight.shape[1], p=weight[b] / weight[b].sum())
                optimistic[b] = False
                optimistic[b, k] = True
                left[b] = p.optimistic_rounds
        self._left[view.peers] = left
        self.state.store(view, optimistic=optimistic)
        return Unchoke(regular | optimistic, optimistic)
