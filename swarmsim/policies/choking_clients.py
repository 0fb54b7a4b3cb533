"""Chokers of real clients other than mainline: libtorrent (2.0) and Transmission.

Both follow their source, read at libtorrent v2.0.13 (``src/choker.cpp``,
``src/session_impl.cpp``, ``src/peer_connection.cpp``; the same in 2.1.0) and Transmission
``libtransmission/peer-mgr.cc``; comments name the function each rule comes from.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from swarmsim.engine.views import ChokeView
from swarmsim.policies.choking import CHOKERS, BaseChoker, ChokerParams, first_k


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


@CHOKERS.register("libtorrent")
class Libtorrent(BaseChoker):
    """libtorrent's choker, so a scenario can mirror a live libtorrent peer one to one.

    Every ``interval_s`` (``unchoke_interval``, 15 s) ``recalculate_unchoke_slots``: slots are
    ``unchoke_slots`` (``fixed_slots``) or, ``rate_based``, one per peer whose upload rate last
    round clears a threshold starting at 1024 B/s and rising 2048 B/s per slot, plus one.
    ``max(1, slots / 5)`` of them are optimistic; the rest go to the interested peers ranked by
    bytes they sent us last round (``compare_peers``), ties by the seed algorithm:
    ``round_robin`` (peers unchoked for over 60 s that got more than ``seeding_piece_quota``
    pieces rank last, then bytes we sent them last round, then longest since unchoked),
    ``fastest_upload`` or ``anti_leech`` (peers near 0 % or 100 % of the torrent first).
    Every ``optimistic_interval_s`` the optimistic slots go to the interested peers that waited
    longest since their last optimistic unchoke, never-tried first (round robin, no newcomer
    weight). ``fixed_slots`` also unchokes a newly interested peer at once while a slot is free
    (``preemptive_unchoke``); a peer that loses interest is choked at once.
    """

    rechoke_on_interest = True

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

    def __init__(self, params: Params):
        super().__init__(params)
        self.state = SlotState()
        self._opt_every = max(1, round(params.optimistic_interval_s / params.interval_s))
        self._slots = np.zeros(0, dtype=np.int64)

    def setup(self, n_peers: int, max_connections: int) -> None:
        self.state.setup(n_peers, max_connections, optimistic=False, last_optimistic=-np.inf)
        self._slots = np.full(n_peers, self.params.unchoke_slots, dtype=np.int64)

    def has_free_slot(self, peer: int, n_unchoked: int) -> bool:
        # session_impl::preemptive_unchoke: fixed slots only
        return self.params.choking_algorithm == "fixed_slots" and n_unchoked < self._slots[peer]

    def slots(self, view: ChokeView) -> np.ndarray:
        """Upload slots per row: fixed, or the rate-based choker's threshold walk."""
        p = self.params
        b = view.nbr.shape[0]
        if p.choking_algorithm == "fixed_slots":
            return np.full(b, p.unchoke_slots, dtype=np.int64)
        rate = np.where(view.interested, view.sent_rate_bps(1), -np.inf)
        ranked = -np.sort(-rate, axis=1)  # fastest first
        k = np.arange(ranked.shape[1])
        passes = ranked >= p.rate_choker_initial_threshold + 2048.0 * k  # threshold per slot
        return np.argmin(np.concatenate([passes, np.zeros((b, 1), bool)], axis=1), axis=1) + 1

    def _seed_key(self, view: ChokeView) -> tuple[np.ndarray, ...]:
        """Secondary sort keys, most significant last (for np.lexsort), smaller = better."""
        p = self.params
        waited = view.last_unchoked_s  # older unchoke first: ascending
        sent = view.sent_bytes(1)
        if p.seed_choking_algorithm == "round_robin":
            quota_done = (
                view.unchoked
                & (view.pieces_sent_since_unchoke > p.seeding_piece_quota)
                & (view.now_s - view.last_unchoked_s > 60.0)
            )
            sent_now = np.where(view.unchoked, sent, 0.0)
            return (waited, -sent_now, quota_done)
        if p.seed_choking_algorithm == "fastest_upload":
            return (waited, -sent)
        half = view.n_pieces / 2.0
        score = np.abs(np.maximum(view.have_counts, 0) - half) * 1000.0 / max(half, 1.0)
        return (waited, -score)

    def rechoke(self, view: ChokeView, rng: np.random.Generator) -> np.ndarray:
        p = self.params
        st = self.state.rows(view)
        optimistic = st["optimistic"] & view.interested  # losing interest ends it at once
        interested = view.interested
        slots = self.slots(view)
        self._slots[view.peers] = slots
        n_opt = (
            np.full_like(slots, p.optimistic_slots)
            if p.optimistic_slots
            else np.maximum(1, slots // 5)
        )
        if not view.periodic:  # preemptive unchoke: keep who is unchoked, fill free slots
            keep = view.unchoked & interested
            free = (
                np.maximum(slots - keep.sum(axis=1), 0)
                if p.choking_algorithm == "fixed_slots"
                else 0
            )
            order = np.lexsort((*self._seed_key(view), -view.received_bytes(1)), axis=1)
            out = keep | first_k(order, interested & ~keep, np.broadcast_to(free, slots.shape))
            self.optimistic = optimistic & out
            self.state.store(view, optimistic=self.optimistic)
            return out
        # recalculate_unchoke_slots: regular slots by bytes received last round (0 for seeds)
        received = np.where(view.is_seed[:, None], 0.0, view.received_bytes(1))
        order = np.lexsort((*self._seed_key(view), -received), axis=1)
        regular = first_k(order, interested, np.maximum(slots - n_opt, 0))
        optimistic &= ~regular  # promoted out of the optimistic slots
        if (view.round % self._opt_every == 0).any():  # recalculate_optimistic_unchoke_slots
            rows = view.round % self._opt_every == 0
            wait = np.where(interested & ~regular, st["last_optimistic"], np.inf)
            picks = first_k(np.argsort(wait, axis=1, kind="stable"), interested & ~regular, n_opt)
            optimistic[rows] = picks[rows]
            last = st["last_optimistic"]
            last[rows] = np.where(picks[rows], view.now_s, last[rows])
            self.state.store(view, last_optimistic=last)
        self.state.store(view, optimistic=optimistic)
        self.optimistic = optimistic
        return regular | optimistic


@CHOKERS.register("transmission")
class Transmission(BaseChoker):
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

    def rechoke(self, view: ChokeView, rng: np.random.Generator) -> np.ndarray:
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
        self.optimistic = optimistic
        return regular | optimistic
