"""The tracker: who is online, and a random subset of them for each announce (BEP 3)."""

from __future__ import annotations

import numpy as np


class Tracker:
    """Online peers in a swap-remove list, so add, remove and sampling are O(1) / O(k)."""

    def __init__(self, n_peers: int, rng: np.random.Generator):
        self.rng = rng
        self._members: list[int] = []
        self._where = np.full(n_peers, -1, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._members)

    def add(self, peer: int) -> None:
        self._where[peer] = len(self._members)
        self._members.append(peer)

    def remove(self, peer: int) -> None:
        k = int(self._where[peer])
        last = self._members.pop()
        if last != peer:
            self._members[k] = last
            self._where[last] = k
        self._where[peer] = -1

    def sample(self, peer: int, k: int) -> list[int]:
        """Up to ``k`` random online peers other than ``peer``, in random order."""
        n = len(self._members)
        take = min(k + 1, n)
        picks = (
            self.rng.choice(n, size=take, replace=False) if take < n else self.rng.permutation(n)
        )
        out = [self._members[x] for x in picks.tolist() if self._members[x] != peer]
        return out[:k]
