"""The overlay: who is connected to whom, with per-connection state in dense numpy arrays.

Row ``i`` of every array describes peer ``i``'s connection slots (``max_connections`` wide);
``nb[i, s]`` is the neighbour in slot ``s`` (-1 when free) and ``rev[i, s]`` the slot that
neighbour uses for ``i``. Slots are stable for a connection's lifetime, so flows and chokers
can key on them. ``rarity[i, p]`` is kept incrementally for the piece picker: copies of piece
``p`` among ``i``'s non-seed neighbours times ``n_pieces``, plus ``i``'s fixed random rank of
``p``; seeds are counted once, in ``seed_nbrs[i]`` (libtorrent ``piece_picker``).
"""

from __future__ import annotations

import numpy as np


class Connections:
    def __init__(
        self, n_peers: int, max_conn: int, n_pieces: int, rank: np.ndarray, rounds_kept: int
    ):
        shape = (n_peers, max_conn)
        self.n_pieces = n_pieces
        self.max_conn = max_conn
        self.nb = np.full(shape, -1, dtype=np.int64)
        self.rev = np.zeros(shape, dtype=np.int64)
        self.recv = np.zeros(shape)  # payload bytes the row peer received over the slot
        self.sent = np.zeros(shape)  # payload bytes the row peer sent over the slot
        # The flow over each slot, as the row peer sees it: rate in / out and the time up to
        # which recv / sent are credited; bytes in flight = rate * (now - t).
        self.rate_in = np.zeros(shape)
        self.t_in = np.zeros(shape)
        self.rate_out = np.zeros(shape)
        self.t_out = np.zeros(shape)
        # the downloader's exponential estimate of each connection's rate in, and when it was
        # last brought up to date (``Network.rate_estimate``)
        self.rate_est_in = np.zeros(shape)
        self.rate_est_t = np.zeros(shape)
        # the downloader's request pipeline still ramps up on this connection (slow start)
        self.slow_start = np.zeros(shape, dtype=bool)
        self.connected_s = np.zeros(shape)
        self.last_recv = np.full(shape, -np.inf)  # mainline: snubbed until the first block
        self.unchoked = np.zeros(shape, dtype=bool)  # row peer unchokes the slot's neighbour
        # an unchoked neighbour lost interest or left since the row peer's last rechoke
        self.lost_unchoke = np.zeros(shape, dtype=bool)
        self.share = np.zeros(shape)  # the choker's weight for that upload (0 = choked)
        self.last_unchoke = np.full(shape, -np.inf)
        self.sent_pieces = np.zeros(shape, dtype=np.int64)  # pieces sent since last unchoke
        self.pieces_recv = np.zeros(shape, dtype=np.int64)  # pieces received over the slot
        # Snapshots of recv / sent at the last ``rounds_kept`` periodic rechokes (rate windows).
        self.snap_recv = np.zeros((*shape, rounds_kept))
        self.snap_sent = np.zeros((*shape, rounds_kept))
        self.deg = np.zeros(n_peers, dtype=np.int64)
        self.seed_nbrs = np.zeros(n_peers, dtype=np.int64)
        dtype = np.int32 if (max_conn + 2) * n_pieces < 2**31 else np.int64
        self.rarity = rank.astype(dtype)
        self.nbr_sets: list[set[int]] = [set() for _ in range(n_peers)]
        self._cache: list[tuple[np.ndarray, np.ndarray, np.ndarray] | None] = [None] * n_peers

    def received_now(self, i: int, slots: np.ndarray, now: float) -> np.ndarray:
        """Bytes ``i`` received over ``slots``, in-flight bytes included (block-level meters)."""
        return self.recv[i][slots] + self.rate_in[i][slots] * (now - self.t_in[i][slots])

    def sent_now(self, i: int, slots: np.ndarray, now: float) -> np.ndarray:
        return self.sent[i][slots] + self.rate_out[i][slots] * (now - self.t_out[i][slots])

    def last_received(self, i: int, slots: np.ndarray, now: float) -> np.ndarray:
        """When payload last arrived over each slot (now, if a flow is delivering)."""
        return np.where(self.rate_in[i][slots] > 0.0, now, self.last_recv[i][slots])

    def neighbours(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids, slots, reverse slots) of ``i``'s connections, in slot order (cached)."""
        c = self._cache[i]
        if c is None:
            slots = np.flatnonzero(self.nb[i] >= 0)
            c = (self.nb[i][slots], slots, self.rev[i][slots])
            self._cache[i] = c
        return c

    def connect(self, i: int, j: int, now: float, bits: np.ndarray, is_seed: np.ndarray) -> None:
        si = int(np.argmin(self.nb[i] >= 0))
        sj = int(np.argmin(self.nb[j] >= 0))
        for a, sa, b, sb in ((i, si, j, sj), (j, sj, i, si)):
            self.nb[a, sa] = b
            self.rev[a, sa] = sb
            self.recv[a, sa] = self.sent[a, sa] = 0.0
            self.rate_in[a, sa] = self.rate_out[a, sa] = 0.0
            self.rate_est_in[a, sa] = 0.0
            self.rate_est_t[a, sa] = now
            self.slow_start[a, sa] = True
            self.snap_recv[a, sa] = self.snap_sent[a, sa] = 0.0
            self.connected_s[a, sa] = now
            self.last_recv[a, sa] = -np.inf
            self.unchoked[a, sa] = False
            self.last_unchoke[a, sa] = -np.inf
            self.sent_pieces[a, sa] = self.pieces_recv[a, sa] = 0
            self.deg[a] += 1
            self.nbr_sets[a].add(b)
            self._cache[a] = None
            if is_seed[b]:
                self.seed_nbrs[a] += 1
            else:
                self.rarity[a] += bits[b] * self.n_pieces

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

    def got_piece(self, i: int, piece: int) -> None:
        """``i`` announced ``piece`` (a HAVE message): it is one copy more for each neighbour."""
        ids = self.neighbours(i)[0]
        if ids.size:
            column = self.rarity[:, piece]  # a view: 2x faster than rarity[ids, piece]
            column[ids] += self.n_pieces
