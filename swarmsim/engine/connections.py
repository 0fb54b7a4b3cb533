"""The overlay: who is connected to whom, with per-connection state in dense numpy arrays.

Row ``i`` of every array describes peer ``i``'s connection slots (``max_connections`` wide);
``nb[i, s]`` is the neighbour in slot ``s`` (-1 when free) and ``rev[i, s]`` the slot that
neighbour uses for ``i``. Slots are stable for a connection's lifetime, so flows can point at
them. The table also keeps, incrementally, what a piece picker and an interest check need:

- ``want[i, s]``: pieces neighbour ``nb[i, s]`` has that ``i`` lacks (``i`` is interested iff > 0);
- ``rarity[i, p]``: copies of piece ``p`` among ``i``'s non-seed neighbours, times ``n_pieces``,
  plus ``i``'s fixed random rank of ``p`` (seeds are counted once, in ``seed_nbrs[i]``, as
  libtorrent's ``piece_picker`` does).
"""

from __future__ import annotations

import numpy as np


class Connections:
    def __init__(self, n_peers: int, max_conn: int, n_pieces: int, rank: np.ndarray):
        shape = (n_peers, max_conn)
        self.n_pieces = n_pieces
        self.max_conn = max_conn
        self.nb = np.full(shape, -1, dtype=np.int32)
        self.rev = np.zeros(shape, dtype=np.int32)
        self.want = np.zeros(shape, dtype=np.int32)
        self.recv = np.zeros(shape)  # payload bytes received over the slot, cumulative
        self.connected_s = np.zeros(shape)
        self.last_recv = np.zeros(shape)
        self.unchoked = np.zeros(shape, dtype=bool)  # row peer unchokes the slot's neighbour
        self.last_unchoke = np.full(shape, -np.inf)
        self.sent_pieces = np.zeros(shape, dtype=np.int32)  # pieces sent since last unchoke
        self.pieces_recv = np.zeros(shape, dtype=np.int32)  # pieces received over the slot
        self.deg = np.zeros(n_peers, dtype=np.int32)
        self.seed_nbrs = np.zeros(n_peers, dtype=np.int32)
        dtype = np.int32 if (max_conn + 2) * n_pieces < 2**31 else np.int64
        self.rarity = rank.astype(dtype)
        self.nbr_sets: list[set[int]] = [set() for _ in range(n_peers)]
        self._cache: list[tuple[np.ndarray, np.ndarray, np.ndarray] | None] = [None] * n_peers

    def neighbours(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids, slots, reverse slots) of ``i``'s connections, in slot order (cached)."""
        c = self._cache[i]
        if c is None:
            slots = np.flatnonzero(self.nb[i] >= 0)
            c = (self.nb[i, slots].astype(np.int64), slots, self.rev[i, slots].astype(np.int64))
            self._cache[i] = c
        return c

    def slot_of(self, i: int, j: int) -> int:
        return int(np.flatnonzero(self.nb[i] == j)[0])

    def connect(self, i: int, j: int, now: float, bits: np.ndarray, is_seed: np.ndarray) -> tuple[int, int]:
        si = int(np.flatnonzero(self.nb[i] < 0)[0])
        sj = int(np.flatnonzero(self.nb[j] < 0)[0])
        for a, sa, b, sb in ((i, si, j, sj), (j, sj, i, si)):
            self.nb[a, sa] = b
            self.rev[a, sa] = sb
            self.want[a, sa] = np.count_nonzero(bits[b] & ~bits[a])
            self.recv[a, sa] = 0.0
            self.connected_s[a, sa] = now
            self.last_recv[a, sa] = now
            self.unchoked[a, sa] = False
            self.last_unchoke[a, sa] = -np.inf
            self.sent_pieces[a, sa] = 0
            self.pieces_recv[a, sa] = 0
            self.deg[a] += 1
            self.nbr_sets[a].add(b)
            self._cache[a] = None
            if is_seed[b]:
                self.seed_nbrs[a] += 1
            else:
                self.rarity[a] += bits[b] * self.n_pieces
        return si, sj

    def disconnect(self, i: int, si: int, bits: np.ndarray, is_seed: np.ndarray) -> None:
        j = int(self.nb[i, si])
        sj = int(self.rev[i, si])
        for a, sa, b in ((i, si, j), (j, sj, i)):
            self.nb[a, sa] = -1
            self.unchoked[a, sa] = False
            self.deg[a] -= 1
            self.nbr_sets[a].discard(b)
            self._cache[a] = None
            if is_seed[b]:
                self.seed_nbrs[a] -= 1
            else:
                self.rarity[a] -= bits[b] * self.n_pieces

    def became_seed(self, i: int) -> None:
        """``i`` completed: count it once as a seed in each neighbour instead of per piece."""
        ids, _, _ = self.neighbours(i)
        if ids.size:
            self.rarity[ids] -= self.n_pieces
            self.seed_nbrs[ids] += 1

    def got_piece(self, i: int, piece: int, bits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Update interest and rarity after ``i`` got ``piece`` (its HAVE message).

        Returns (neighbours ``i`` stopped being interested in, neighbours that became interested
        in ``i``). Vectorised over ``i``'s connections: O(degree) numpy work, no Python loop.
        """
        ids, slots, revs = self.neighbours(i)
        if ids.size == 0:
            return ids, ids
        has = bits[ids, piece]
        self.rarity[ids, piece] += self.n_pieces
        w = self.want
        s_has = slots[has]
        w[i, s_has] -= 1
        lost = ids[has][w[i, s_has] == 0]
        lack = ~has
        ids_l, revs_l = ids[lack], revs[lack]
        before = w[ids_l, revs_l]
        w[ids_l, revs_l] = before + 1
        gained = ids_l[before == 0]
        return lost, gained
