"""Chokers: which interested neighbours a peer uploads to.

A choker object serves every peer that uses it and keeps their private state in arrays
indexed by peer id (``setup(n_peers, max_connections)``). ``rechoke(view, rng)`` gets a
``ChokeView`` of B peers rechoking at one instant and returns an ``Unchoke``: the (B, C) mask
of the slots to unchoke (or weights) and the mask of those that are optimistic (None for a
choker without optimistic unchokes), vectorised over the batch. The engine calls it every
``interval_s`` per peer (``view.periodic``; ``view.round`` counts those calls) and,
coalesced, after a connection with an unchoked peer closes or an unchoked peer loses interest
(mainline's ``connection_lost`` / ``not_interested``). The mask must lie within
``view.interested``: swarmsim keeps "unchoked peers are interested" as an invariant, where
mainline also unchokes uninterested peers it walks past (they then start at once when they
become interested).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from swarmsim.api import Choker, ChokeView, Unchoke
from swarmsim.registry import Registry

CHOKERS = Registry("choker", "who gets unchoked (upload slots)")


class ChokerParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    interval_s: float = Field(10.0, gt=0, description="seconds between periodic rechokes")
    unchoke_slots: int = Field(4, ge=1, description="upload slots, optimistic ones included")


# --- row-wise helpers -----------------------------------------------------------------------


def first_k(order: np.ndarray, mask: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Per row, the first ``k[b]`` slots of ``order[b]`` (column indices) that ``mask`` allows."""
    rows = np.arange(order.shape[0])[:, None]  # plain fancy indexing: the *_along_axis
    allowed = mask[rows, order]  # helpers cost 10 us more per call in small batches
    taken = allowed & (np.cumsum(allowed, axis=1) <= np.asarray(k).reshape(-1, 1))
    out = np.zeros_like(mask)
    out[rows, order] = taken
    return out


def smallest_k(keys: tuple[np.ndarray, ...], mask: np.ndarray, k) -> np.ndarray:
    """Per row, the first ``k[b]`` allowed slots in the order of ``keys`` (most significant
    first, smaller first, ties to the lower column, NaN last): ``first_k`` over a stable
    sort, computed the cheapest way. A few rows sort only each row's allowed slots (numpy's
    per-call cost is what counts there). Big batches take ``k`` rounds of masked minima,
    2-5x faster than sorting 80 columns of 1,000 rows for k <= 4; from k = 6 (and with NaN
    keys) the whole-row sort is cheaper."""
    b = mask.shape[0]
    k = np.asarray(k)
    if k.ndim == 0:
        k = np.full(b, k)
    if b <= 8:
        return _smallest_k_by_rows(keys, mask, k)
    kmax = int(k.max())
    if kmax > 5 or any(np.isnan(key).any() for key in keys):
        if len(keys) == 1:
            return first_k(np.argsort(keys[0], axis=1, kind="stable"), mask, k)
        return first_k(np.lexsort(keys[::-1], axis=1), mask, k)
    out = np.zeros_like(mask)
    left = mask.copy()
    rows = np.arange(b)
    for rank in range(kmax):
        cand = left & (k > rank)[:, None]
        for key in keys:
            least = np.where(cand, key, np.inf).min(axis=1)
            cand &= key == least[:, None]
        col = cand.argmax(axis=1)
        hit = cand[rows, col]
        if not hit.any():
            break
        out[rows[hit], col[hit]] = True
        left[rows[hit], col[hit]] = False
    return out


def _smallest_k_by_rows(keys, mask, k) -> np.ndarray:
    out = np.zeros_like(mask)
    for r in range(mask.shape[0]):
        cols = mask[r].nonzero()[0]
        n = max(int(k[r]), 0)
        if cols.size > n:  # a stable sort of the allowed slots keeps the row order's ties
            if len(keys) == 1:
                order = np.argsort(keys[0][r, cols], kind="stable")
            else:
                order = np.lexsort(tuple(key[r, cols] for key in keys[::-1]))
            cols = cols[order[:n]]
        out[r, cols] = True
    return out


def top_k(score: np.ndarray, tie: np.ndarray, mask: np.ndarray, k) -> np.ndarray:
    """Per row, the ``k`` allowed slots with the highest ``score``, ties to the lowest ``tie``."""
    return smallest_k((-score, tie), mask, k)


class Rotation:
    """Mainline's connection list, kept as a float position per (peer, slot).

    Newcomers go in at ``randrange(-2, n + 1)`` clamped at 0 (mainline 3.x, BEP 3, Transmission),
    so the head, where optimistic unchokes start, is three times as likely for them as any
    other place; with ``head_bias`` off they go in uniformly (mainline 4.x ``connection_made``).
    """

    def __init__(self, head_bias: bool = True):
        self.head_bias = head_bias
        self.pos = np.zeros((0, 0))
        self.owner = np.zeros((0, 0), dtype=np.int64)

    def setup(self, n_peers: int, max_connections: int) -> None:
        self.pos = np.zeros((n_peers, max_connections))
        self.owner = np.full((n_peers, max_connections), -1, dtype=np.int64)

    def positions(self, view: ChokeView, rng: np.random.Generator) -> np.ndarray:
        """(B, C) rotation positions, +inf on free slots; newly connected peers inserted."""
        owner = self.owner[view.peers]
        new = view.valid & (owner != view.nbr)
        for b, s in zip(*np.nonzero(new), strict=True):
            self._insert(
                int(view.peers[b]), int(s), int(view.nbr[b, s]), view.valid[b], new[b], rng
            )
        return np.where(view.valid, self.pos[view.peers], np.inf)

    def _insert(self, peer, slot, nbr, valid, new, rng) -> None:
        row = self.pos[peer]
        known = np.sort(row[valid & ~new])
        n = known.size
        k = max(int(rng.integers(-2, n + 1)) if self.head_bias else int(rng.integers(0, n + 1)), 0)
        if n == 0:
            p = 0.0
        elif k == 0:
            p = known[0] - 1.0
        elif k == n:
            p = known[-1] + 1.0
        else:
            p = 0.5 * (known[k - 1] + known[k])
            if not known[k - 1] < p < known[k]:  # float gap used up: renumber 0..n-1 first
                live = valid & ~new
                row[live] = np.argsort(np.argsort(row[live], kind="stable"), kind="stable")
                p = k - 0.5
        row[slot] = p
        self.owner[peer, slot] = nbr
        new[slot] = False

    def rotate_after(self, view: ChokeView, pos: np.ndarray, rows: np.ndarray, head: np.ndarray):
        """For each row in ``rows``, move the slots before position ``head`` behind the others
        (so ``head`` becomes the first); returns the updated (B, C) positions."""
        if rows.size == 0:
            return pos
        sub = pos[rows]
        finite = np.where(np.isfinite(sub), sub, np.nan)
        span = np.nanmax(finite, axis=1) - np.nanmin(finite, axis=1) + 1.0
        moved = np.isfinite(sub) & (sub < head[:, None])
        sub = np.where(moved, sub + span[:, None], sub)
        pos[rows] = sub
        peers = view.peers[rows]
        self.pos[peers] = np.where(np.isfinite(sub), sub, self.pos[peers])
        return pos


@CHOKERS.register("mainline")
class Mainline(Choker):
    """BitTorrent mainline's choker, 4.x (``BitTorrent/Choker.py``, BEP 3, Legout et al. 2006).

    Leecher state: of the interested, not snubbed neighbours, the ``unchoke_slots - 1`` that sent
    us most over the last ``rate_window_s`` stay unchoked; then ``max(1, min_uploads - preferred)``
    more interested peers are unchoked in rotation order (optimistic). Every ``optimistic_every``
    rounds the rotation moves the first choked interested peer to the head. Snubbed = no payload
    from them for ``snub_s``, new connections included (mainline ``is_snubbed``; the code's default
    is 30 s, Cohen 2003 says 60 s).

    Seed state (4.x ``_rechoke_seed``): each round owes ``(slots + 2) // 3`` new unchokes per three
    rounds (0 + 1 + 1 for 4 slots), less those already made by event rechokes. Peers unchoked
    within the last two rounds rank first, most recent first, then the rest by our upload rate to
    them; the top ``slots - new`` stay unchoked and the free slots go round robin along the
    rotation, which then continues after the last one served (Legout et al.: about equal service
    time per leecher).
    """

    class Params(ChokerParams):
        min_uploads: int = Field(
            4,
            ge=1,
            description="unchoke at least this many (mainline "
            "min_uploads: 4 in 3.x; 4.x's default of 2 leaves slots idle)",
        )
        optimistic_every: int = Field(3, ge=1, description="rounds between optimistic rotations")
        rate_window_s: float = Field(20.0, gt=0, description="rate window (max_rate_period)")
        snub_s: float = Field(60.0, gt=0, description="no payload for this long = snubbed")
        newcomer_head_bias: bool = Field(
            True,
            description="newcomers 3x as likely at the rotation's head (3.x randrange(-2, n+1))",
        )

    def __init__(self, params: Params):
        super().__init__(params)
        self.rotation = Rotation(params.newcomer_head_bias)
        self._window = min(
            ChokeView.rounds_kept, max(1, round(params.rate_window_s / params.interval_s))
        )
        self._unchokes_since_last = np.zeros(0, dtype=np.int64)

    def setup(self, n_peers: int, max_connections: int) -> None:
        self.rotation.setup(n_peers, max_connections)
        self._unchokes_since_last = np.zeros(n_peers, dtype=np.int64)

    def rechoke(self, view: ChokeView, rng: np.random.Generator) -> Unchoke:
        return self._rechoke(view, rng, None)

    def _rechoke(self, view: ChokeView, rng, allowed: np.ndarray | None) -> Unchoke:
        """``allowed`` (B, C), if given, further limits whom leechers may unchoke."""
        pos = self.rotation.positions(view, rng)
        if not view.is_seed.any():
            return self._leechers(view, pos, allowed)
        out = np.zeros(view.nbr.shape, dtype=bool)
        optimistic = np.zeros(view.nbr.shape, dtype=bool)  # seeds have no optimistic slot
        seeds = np.flatnonzero(view.is_seed)
        leechers = np.flatnonzero(~view.is_seed)
        out[seeds] = self._seeds(view.take(seeds), pos[seeds])
        if leechers.size:
            sub = None if allowed is None else allowed[leechers]
            out[leechers], optimistic[leechers] = self._leechers(
                view.take(leechers), pos[leechers], sub
            )
        return Unchoke(out, optimistic)

    def _leechers(self, view: ChokeView, pos: np.ndarray, allowed=None) -> Unchoke:
        p = self.params
        interested = view.interested if allowed is None else view.interested & allowed
        if view.periodic:
            rows = np.flatnonzero(view.round % p.optimistic_every == 0)
            if rows.size:  # rotate: the first choked interested peer becomes the head
                head = np.where(~view.unchoked[rows] & interested[rows], pos[rows], np.inf).min(
                    axis=1
                )
                keep = np.isfinite(head)
                pos = self.rotation.rotate_after(view, pos, rows[keep], head[keep])
        eligible = interested & ~view.snubbed(p.snub_s)
        preferred = top_k(view.received_rate_bps(self._window), pos, eligible, p.unchoke_slots - 1)
        n_opt = np.maximum(1, p.min_uploads - preferred.sum(axis=1))
        optimistic = smallest_k((pos,), interested & ~preferred, n_opt)
        return Unchoke(preferred | optimistic, optimistic)

    def _seeds(self, view: ChokeView, pos: np.ndarray) -> np.ndarray:
        slots = self.params.unchoke_slots
        peers = view.peers
        since = self._unchokes_since_last[peers]
        if view.periodic:
            owed = (slots + 2) // 3
            forced = np.maximum(0, (owed + view.round % 3) // 3 - since)
        else:
            forced = np.zeros(len(peers), dtype=np.int64)
        interested = view.interested
        kept_now = view.unchoked & interested
        recent = (view.now_s - view.last_unchoked_s) < 2.5 * self.interval_s
        # mainline's sort key: recent -> (-unchoke_time, -rate), others -> (1, -rate)
        key_recent = np.where(recent, -view.last_unchoked_s, np.inf)
        order = np.lexsort((-view.sent_rate_bps(self._window), key_recent, ~kept_now), axis=1)
        preferred = first_k(order, kept_now, np.maximum(slots - forced, 0))
        free = slots - preferred.sum(axis=1)
        self._unchokes_since_last[peers] = 0 if view.periodic else since + free
        walk = np.argsort(pos, axis=1, kind="stable")
        served = first_k(walk, interested & ~preferred, free)
        # the next walk starts after the last peer served (when every free slot was filled)
        full = np.flatnonzero((served.sum(axis=1) == free) & (free > 0))
        if full.size:
            last = np.where(served[full], pos[full], -np.inf).max(axis=1)
            self.rotation.rotate_after(view, pos, full, np.nextafter(last, np.inf))
        return preferred | served
