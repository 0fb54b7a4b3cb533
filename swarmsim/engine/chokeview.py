"""The engine's ``ChokeView``: each array is computed from the swarm on first use only, so a
choker pays for what it reads (a rechoke runs for every peer every 10-15 s). Byte counts
include bytes in flight, as a client's block-level rate meters would."""

from __future__ import annotations

import numpy as np

from swarmsim.engine.views import ChokeView


class SwarmChokeView(ChokeView):
    _LAZY = (
        "interested",
        "unchoked",
        "connected_s",
        "last_unchoked_s",
        "last_received_s",
        "pieces_sent_since_unchoke",
        "have_counts",
    )

    def __init__(self, swarm, u: int, periodic: bool, ids, slots):
        self._swarm = swarm
        self._conns = swarm.conns
        self.now_s = swarm.env.now
        self.peer = u
        self.is_seed = bool(swarm.is_seed[u])
        self.periodic = periodic
        self.round = int(swarm.rounds[u])
        self.upload_bps = float(swarm.up_bps[u])
        self.have_pieces = int(swarm.have[u])
        self.n_pieces = swarm.n_pieces
        self.peers = ids
        self.slots = slots
        self._k = self.round + (0 if periodic else 1)  # the round whose window we measure

    def __getattr__(self, name: str):
        if name not in self._LAZY:
            raise AttributeError(name)
        c, u, slots = self._conns, self.peer, self.slots
        if name == "interested":
            value = self._swarm.interest_in(u, self.peers)
        elif name == "unchoked":
            value = c.unchoked[u][slots]
        elif name == "connected_s":
            value = c.connected_s[u][slots]
        elif name == "last_unchoked_s":
            value = c.last_unchoke[u][slots]
        elif name == "last_received_s":
            value = c.last_received(u, slots, self.now_s)
        elif name == "pieces_sent_since_unchoke":
            value = c.sent_pieces[u][slots]
        else:
            value = self._swarm.have[self.peers]
        self.__dict__[name] = value
        return value

    def _index(self, rounds: int) -> int:
        if not 1 <= rounds <= self.rounds_kept:
            raise ValueError(f"rate windows cover 1..{self.rounds_kept} rounds, not {rounds}")
        return max(self._k - rounds, 0) % self.rounds_kept

    def received_bytes(self, rounds: int) -> np.ndarray:
        c, u = self._conns, self.peer
        return (
            c.received_now(u, self.slots, self.now_s)
            - c.snap_recv[u, :, self._index(rounds)][self.slots]
        )

    def sent_bytes(self, rounds: int) -> np.ndarray:
        c, u = self._conns, self.peer
        return (
            c.sent_now(u, self.slots, self.now_s)
            - c.snap_sent[u, :, self._index(rounds)][self.slots]
        )

    def window_s(self, rounds: int) -> np.ndarray:
        start = self._swarm.snap_t[self.peer, self._index(rounds)]
        return self.now_s - np.maximum(start, self.connected_s)
