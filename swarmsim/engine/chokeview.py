"""The engine's ``ChokeView`` over a batch of peers: each (B, C) array is gathered from the
swarm on first use only, so a choker pays for what it reads. Byte counts include bytes in
flight, as a client's block-level rate meters would."""

from __future__ import annotations

import numpy as np

from swarmsim.api.views import ChokeView


class SwarmChokeView(ChokeView):
    _SLOT_ARRAYS = {
        "unchoked": "unchoked",
        "upload_share": "share",
        "connected_s": "connected_s",
        "last_unchoked_s": "last_unchoke",
        "pieces_sent_since_unchoke": "sent_pieces",
        "lost_unchoked": "lost_unchoke",
    }

    def __init__(self, swarm, peers: np.ndarray, periodic: bool):
        self._swarm = swarm
        c = self._conns = swarm.conns
        self.now_s = swarm.clock.now
        self.periodic = periodic
        self.n_pieces = swarm.pieces.n_pieces
        self.piece_bytes = swarm.scenario.torrent.piece_bytes
        self.peers = peers
        self.nbr = c.nb[peers]
        self.valid = self.nbr >= 0
        self.is_seed = swarm.pieces.is_seed[peers]
        self.round = swarm.rounds[peers]
        self.upload_bps = swarm.up_bps[peers]
        self.have_pieces = swarm.pieces.have[peers]
        # the round whose window we measure: an event rechoke looks like the next round
        self._k = self.round + (0 if periodic else 1)
        self._cache: dict = {}

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        c, peers = self._conns, self.peers
        if name in self._SLOT_ARRAYS:
            value = getattr(c, self._SLOT_ARRAYS[name])[peers]
        elif name == "interested":
            value = self._swarm.pieces.interest_matrix(peers, self.nbr, self.valid)
        elif name == "last_received_s":
            value = np.where(c.rate_in[peers] > 0.0, self.now_s, c.last_recv[peers])
        elif name == "have_counts":
            value = np.where(self.valid, self._swarm.pieces.have[np.maximum(self.nbr, 0)], 0)
        else:
            raise AttributeError(name)
        self.__dict__[name] = value
        return value

    def take(self, rows: np.ndarray) -> ChokeView:
        return SwarmChokeView(self._swarm, self.peers[rows], self.periodic)

    def received_now(self) -> np.ndarray:
        if "recv" not in self._cache:
            c, p = self._conns, self.peers
            self._cache["recv"] = c.recv[p] + c.rate_in[p] * (self.now_s - c.t_in[p])
        return self._cache["recv"]

    def sent_now(self) -> np.ndarray:
        if "sent" not in self._cache:
            c, p = self._conns, self.peers
            self._cache["sent"] = c.sent[p] + c.rate_out[p] * (self.now_s - c.t_out[p])
        return self._cache["sent"]

    def received_total_bytes(self) -> np.ndarray:
        return self.received_now()

    def sent_total_bytes(self) -> np.ndarray:
        return self.sent_now()

    def _index(self, rounds: int) -> np.ndarray:
        if not 1 <= rounds <= self.rounds_kept:
            raise ValueError(f"rate windows cover 1..{self.rounds_kept} rounds, not {rounds}")
        return np.maximum(self._k - rounds, 0) % self.rounds_kept

    def _snap(self, table: np.ndarray, rounds: int) -> np.ndarray:
        idx = self._index(rounds)
        return table[self.peers[:, None], np.arange(table.shape[1])[None, :], idx[:, None]]

    def received_bytes(self, rounds: int) -> np.ndarray:
        return self.received_now() - self._snap(self._conns.snap_recv, rounds)

    def sent_bytes(self, rounds: int) -> np.ndarray:
        return self.sent_now() - self._snap(self._conns.snap_sent, rounds)

    def window_s(self, rounds: int) -> np.ndarray:
        start = self._swarm.snap_t[self.peers, self._index(rounds)]
        return self.now_s - np.maximum(start[:, None], self.connected_s)
