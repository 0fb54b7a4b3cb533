"""Chokers: which interested neighbours a peer uploads to.

A choker is one object per peer (it may keep private state such as a rotation order) with an
``interval_s`` and ``rechoke(view, rng) -> ids to unchoke``. The engine calls it every
``interval_s`` (``view.periodic`` true, ``view.round`` counting those calls) and, coalesced, when a
connection opens or closes or an unchoked peer loses interest, as mainline's ``Choker`` does.
It must return a subset of the interested neighbours (``view.peers[view.interested]``).
"""

from __future__ import annotations

from typing import Literal, Protocol

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
    unchoke_slots: int = Field(4, ge=1, description="upload slots, optimistic one included")


def rank_desc(values: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Indices of ``order`` sorted by ``values`` descending, ties kept in ``order``'s order."""
    return order[np.argsort(-values[order], kind="stable")]


class RotationList:
    """Mainline's connection list: newcomers go in at ``randrange(-2, n + 1)`` clamped at 0, so
    the head, where optimistic unchokes start, is three times as likely for them as any other
    place (mainline 3.x/4.x ``Choker.connection_made``)."""

    def __init__(self) -> None:
        self.order: list[int] = []

    def sync(self, peers: np.ndarray, rng: np.random.Generator) -> None:
        present = set(peers.tolist())
        if len(self.order) != len(present) or not present.issuperset(self.order):
            self.order = [p for p in self.order if p in present]
            known = set(self.order)
            for p in peers.tolist():
                if p not in known:
                    self.order.insert(max(int(rng.integers(-2, len(self.order) + 1)), 0), p)

    def rotate_to_first(self, wanted: set[int]) -> None:
        """Rotate so the first element in ``wanted`` is at the head (mainline ``_round_robin``)."""
        for i, p in enumerate(self.order):
            if p in wanted:
                self.order = self.order[i:] + self.order[:i]
                return

    def positions(self, peers: np.ndarray) -> np.ndarray:
        """Index of each view slot, sorted by rotation order."""
        where = {p: i for i, p in enumerate(peers.tolist())}
        return np.fromiter((where[p] for p in self.order), dtype=np.int64, count=len(self.order))


@CHOKERS.register("mainline")
class Mainline:
    """BitTorrent mainline's choker (BEP 3; mainline 4.x as measured by Legout et al. IMC 2006).

    Leecher state, every ``interval_s``: the ``unchoke_slots - 1`` interested, not snubbed
    neighbours that sent us most over the last ``rate_window_s`` stay unchoked (reciprocation);
    the rest of the slots go to interested peers taken in rotation order (the optimistic
    unchoke), the rotation advancing every ``optimistic_every`` rounds to the first choked
    interested peer. Snubbed = nothing received for ``snub_s`` (Cohen 2003: 60 s).

    Seed state ``mainline4`` (Legout et al. IMC 2006, mainline 4.x ``_rechoke_seed``): peers
    unchoked within the last two rounds rank first, most recent first, the rest by our upload
    rate to them; in two rounds of three the first ``slots - 1`` stay unchoked plus one choked
    interested peer at random, in the third the first ``slots``. That gives every leecher about
    equal service time. ``upload_rate`` is BEP 3's seed rule: rank by upload rate to them.
    """

    rechoke_on_interest = False

    class Params(ChokerParams):
        optimistic_every: int = Field(3, ge=1, description="rounds between optimistic rotations (30 s)")
        rate_window_s: float = Field(20.0, gt=0, description="rate estimation window (max_rate_period)")
        snub_s: float = Field(60.0, gt=0, description="no payload for this long = snubbed")
        seed_mode: Literal["mainline4", "upload_rate"] = Field(
            "mainline4", description="seed-state algorithm"
        )

    def __init__(self, params: Params):
        self.params = params
        self.interval_s = params.interval_s
        self.rotation = RotationList()
        self._window_rounds = max(1, round(params.rate_window_s / params.interval_s))

    def rechoke(self, view: ChokeView, rng: np.random.Generator) -> np.ndarray:
        p = self.params
        self.rotation.sync(view.peers, rng)
        if view.is_seed and p.seed_mode == "mainline4":
            return self._seed_rechoke(view, rng)
        if view.periodic and view.round % p.optimistic_every == 0:
            self.rotation.rotate_to_first(set(view.peers[~view.unchoked & view.interested].tolist()))
        order = self.rotation.positions(view.peers)
        if view.is_seed:
            rate = view.sent_rate_bps(self._window_rounds)
            eligible = view.interested
        else:
            rate = view.received_rate_bps(self._window_rounds)
            eligible = view.interested & ~view.snubbed(p.snub_s)
        ranked = rank_desc(rate, order[eligible[order]])
        chosen = list(ranked[: p.unchoke_slots - 1])
        taken = set(chosen)
        # Optimistic unchoke(s): walk the rotation until the slots are full and at least one
        # peer was unchoked regardless of its rate (mainline _rechoke's "count < min or not hit").
        optimistic = 0
        for i in order:
            if len(chosen) >= p.unchoke_slots and optimistic >= 1:
                break
            if view.interested[i] and i not in taken:
                chosen.append(i)
                taken.add(i)
                optimistic += 1
        return view.peers[np.asarray(chosen, dtype=np.int64)]

    def _seed_rechoke(self, view: ChokeView, rng: np.random.Generator) -> np.ndarray:
        slots = self.params.unchoke_slots
        order = self.rotation.positions(view.peers)
        order = order[view.interested[order]]
        if order.size == 0:
            return view.peers[:0]
        recent = view.unchoked & (view.now_s - view.last_unchoked_s < 2 * self.interval_s)
        rec = order[recent[order]]
        rec = rec[np.argsort(-view.last_unchoked_s[rec], kind="stable")]
        rest = rank_desc(view.sent_rate_bps(self._window_rounds), order[~recent[order]])
        ranked = np.concatenate([rec, rest])
        keep = slots if (not view.periodic or view.round % 3 == 2) else slots - 1
        chosen = list(ranked[:keep])
        if len(chosen) < slots:
            pool = [i for i in ranked[keep:] if not view.unchoked[i]] or list(ranked[keep:])
            if pool:
                chosen.append(pool[int(rng.integers(len(pool)))])
        return view.peers[np.asarray(chosen, dtype=np.int64)]
