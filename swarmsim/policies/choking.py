"""Chokers: which interested neighbours a peer uploads to.

A choker is one object per peer (it may keep private state, such as a rotation order) with an
``interval_s`` and ``rechoke(view, rng) -> rows of the view to unchoke``. The engine calls it
every ``interval_s`` (``view.periodic`` true, ``view.round`` counting those calls) and, coalesced,
after a connection with an unchoked peer closes or an unchoked peer loses interest (mainline's
``connection_lost`` / ``not_interested``). It returns only rows with ``view.interested`` true:
swarmsim keeps "unchoked peers are interested" as an invariant, where mainline also unchokes
uninterested peers it walks past (they then start at once when they become interested).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from swarmsim.engine.views import ChokeView
from swarmsim.registry import Registry

CHOKERS = Registry("choker", "who gets unchoked (upload slots)")


class Choker(Protocol):
    interval_s: float
    #: rechoke at once when a choked neighbour becomes interested (libtorrent fills free slots)
    rechoke_on_interest: bool

    def rechoke(self, view: ChokeView, rng: np.random.Generator) -> np.ndarray: ...


class ChokerParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    interval_s: float = Field(10.0, gt=0, description="seconds between periodic rechokes")
    unchoke_slots: int = Field(4, ge=1, description="upload slots, optimistic ones included")


def by_rate(rate: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``rows`` sorted by ``rate`` descending, ties kept in the given order."""
    return rows[np.argsort(-rate[rows], kind="stable")]


class Rotation:
    """Mainline's connection list, kept as a float position per connection slot.

    Newcomers go in at ``randrange(-2, n + 1)`` clamped at 0 (mainline 3.x, BEP 3, Transmission),
    so the head, where optimistic unchokes start, is three times as likely for them as any
    other place; with ``head_bias`` off they go in uniformly (mainline 4.x ``connection_made``).
    """

    def __init__(self, head_bias: bool = True):
        self.head_bias = head_bias
        self.pos = np.zeros(0)
        self.owner = np.zeros(0, dtype=np.int64)
        self._for: np.ndarray | None = None  # the view.peers array the cached order is for
        self._order = np.zeros(0, dtype=np.int64)

    def order(self, view: ChokeView, rng: np.random.Generator) -> np.ndarray:
        """View rows in rotation order (inserting newly connected peers first)."""
        slots, peers = view.slots, view.peers
        if peers is self._for:  # the engine hands out the same array until connections change
            return self._order
        if slots.size and slots.max() >= self.pos.size:
            grow = int(slots.max()) + 1 - self.pos.size
            self.pos = np.concatenate([self.pos, np.zeros(grow)])
            self.owner = np.concatenate([self.owner, np.full(grow, -1, dtype=np.int64)])
        new = np.flatnonzero(self.owner[slots] != peers)
        if new.size:
            self._insert(slots, new, peers, rng)
        self._for = peers
        self._order = np.argsort(self.pos[slots], kind="stable")
        return self._order

    def _insert(self, slots, new, peers, rng) -> None:
        fresh = np.zeros(slots.size, dtype=bool)
        fresh[new] = True
        known = np.sort(self.pos[slots[~fresh]])
        for row in new.tolist():
            n = known.size
            k = int(rng.integers(-2, n + 1)) if self.head_bias else int(rng.integers(0, n + 1))
            k = max(k, 0)
            if n == 0:
                p = 0.0
            elif k == 0:
                p = known[0] - 1.0
            elif k == n:
                p = known[-1] + 1.0
            else:
                p = 0.5 * (known[k - 1] + known[k])
                if not known[k - 1] < p < known[k]:  # float gap exhausted: renumber
                    known = np.arange(n, dtype=float)
                    self.pos[slots[~fresh]] = np.argsort(np.argsort(self.pos[slots[~fresh]]))
                    p = k - 0.5
            self.pos[slots[row]] = p
            self.owner[slots[row]] = peers[row]
            fresh[row] = False
            known = np.insert(known, k, p)

    def rotate_to(self, view: ChokeView, order: np.ndarray, k: int) -> np.ndarray:
        """Make ``order[k]`` the head; the rows before it move to the tail in the same order."""
        if k <= 0 or k >= order.size:
            return order
        p = self.pos[view.slots]
        span = p[order[-1]] - p[order[0]] + 1.0
        self.pos[view.slots[order[:k]]] += span
        self._order = np.concatenate([order[k:], order[:k]])
        return self._order


@CHOKERS.register("mainline")
class Mainline:
    """BitTorrent mainline's choker, 4.x (``BitTorrent/Choker.py``, BEP 3, Legout et al. 2006).

    Leecher state: of the interested, not snubbed neighbours, the ``unchoke_slots - 1`` that sent
    us most over the last ``rate_window_s`` stay unchoked; then ``max(1, min_uploads - preferred)``
    more interested peers are unchoked in rotation order (optimistic). Every ``optimistic_every``
    rounds the rotation moves the first choked interested peer to the head. Snubbed = no payload
    from them for ``snub_s``, new connections included (mainline ``is_snubbed``; the code's default
    is 30 s, Cohen 2003 says 60 s).

    Seed state (4.x ``_rechoke_seed``): each round owes ``(slots + 2) // 3`` new unchokes per three
    rounds (1+1+2 for 4 slots), less those already made by event rechokes. Peers unchoked within
    the last two rounds rank first, most recent first, then the rest by our upload rate to them;
    the top ``slots - new`` stay unchoked and the free slots go round robin along the rotation,
    which then continues after the last one served. Net effect: about equal service time per
    leecher, not a reward for the fastest (Legout et al.).
    """

    rechoke_on_interest = False

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
        self.params = params
        self.interval_s = params.interval_s
        self.rotation = Rotation(params.newcomer_head_bias)
        self._window = min(
            ChokeView.rounds_kept, max(1, round(params.rate_window_s / params.interval_s))
        )
        self._unchokes_since_last = 0

    def rechoke(self, view: ChokeView, rng: np.random.Generator) -> np.ndarray:
        order = self.rotation.order(view, rng)
        if view.is_seed:
            return self._seed(view, order)
        p = self.params
        interested = view.interested
        if view.periodic and view.round % p.optimistic_every == 0:
            first = np.flatnonzero(~view.unchoked[order] & interested[order])
            if first.size:
                order = self.rotation.rotate_to(view, order, int(first[0]))
        eligible = order[interested[order] & ~view.snubbed(p.snub_s)[order]]
        preferred = by_rate(view.received_rate_bps(self._window), eligible)[: p.unchoke_slots - 1]
        n_opt = max(1, p.min_uploads - preferred.size)
        rest = np.ones(view.peers.size, dtype=bool)
        rest[preferred] = False
        walk = order[interested[order] & rest[order]]
        return np.concatenate([preferred, walk[:n_opt]])

    def _seed(self, view: ChokeView, order: np.ndarray) -> np.ndarray:
        slots = self.params.unchoke_slots
        if view.periodic:
            owed = (slots + 2) // 3
            forced = max(0, (owed + view.round % 3) // 3 - self._unchokes_since_last)
        else:
            forced = 0
        interested = view.interested
        kept_now = order[view.unchoked[order] & interested[order]]
        recent = (view.now_s - view.last_unchoked_s) < 2.5 * self.interval_s
        rate = view.sent_rate_bps(self._window)
        # sort key (mainline): recent -> (-unchoke_time, -rate); others -> (1, -rate)
        key_recent = np.where(recent, -view.last_unchoked_s, np.inf)
        ranked = kept_now[np.lexsort((-rate[kept_now], key_recent[kept_now]))]
        preferred = ranked[: max(slots - forced, 0)]
        free = slots - preferred.size
        if view.periodic:
            self._unchokes_since_last = 0
        else:
            self._unchokes_since_last += free
        rest = np.ones(view.peers.size, dtype=bool)
        rest[preferred] = False
        walk = np.flatnonzero(interested[order] & rest[order])
        served = walk[:free]
        if free > 0 and served.size == free:
            self.rotation.rotate_to(view, order, int(served[-1]) + 1)
        return np.concatenate([preferred, order[served]])
