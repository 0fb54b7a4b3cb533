"""When each peer rechokes: the timers, not the decisions."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from swarmsim.engine.clock import Clock


class RechokeTimers:
    """Owns every peer's rechoke timers. Periodic rechokes fire on the ``tick_s`` grid
    (libtorrent's 1 s tick), so peers due in the same tick rechoke as one vectorised batch; a
    peer has one periodic call scheduled at a time, and scheduling it anew leaves its older
    entry stale. Event-driven rechokes are coalesced into one batch after the current event,
    or at the next tick for re-rankings that can wait as long as libtorrent's own choker tick.
    The clock calls ``on_periodic(key)`` and ``on_events(batch)``; they take their peers from
    here with ``take_periodic`` and ``take_events``."""

    def __init__(
        self,
        clock: Clock,
        tick_s: float,
        n_peers: int,
        on_periodic: Callable[[object], None],
        on_events: Callable[[set[int] | None], None],
    ):
        self.clock = clock
        self.tick_s = tick_s
        self.on_periodic = on_periodic
        self.on_events = on_events
        self._periodic: dict = {}  # tick key -> the peers due then (some stale)
        self._key: list = [None] * n_peers  # the batch each peer's next periodic call is in
        self._pending: set[int] = set()  # rechokes due after the current event
        self._at_tick: set[int] = set()  # rechokes due at the next tick

    def periodic(self, u: int, delay: float) -> None:
        """``u``'s next periodic rechoke, ``delay`` seconds from now (rounded up to a tick)."""
        t = self.clock.now + delay
        tick = self.tick_s
        key = math.ceil(t / tick - 1e-9) if tick > 0 else t
        if self._key[u] == key:
            return
        self._key[u] = key
        batch = self._periodic.get(key)
        if batch is None:
            self._periodic[key] = [u]
            at = key * tick if tick > 0 else t
            self.clock.at(max(at - self.clock.now, 0.0), self.on_periodic, key)
        else:
            batch.append(u)

    def take_periodic(self, key, online: np.ndarray) -> np.ndarray:
        """The online peers whose periodic rechoke is batch ``key`` (their timers now spent)."""
        due = self._key
        peers = np.array([u for u in self._periodic.pop(key) if due[u] == key], dtype=np.int64)
        peers = peers[online[peers]]
        for u in peers.tolist():
            due[u] = None
        return peers

    def has_periodic(self, u: int) -> bool:
        """Whether ``u`` has a periodic rechoke scheduled."""
        return self._key[u] is not None

    def soon(self, u: int) -> None:
        """Rechoke ``u`` right after the current event, in one batch with the others due."""
        if not self._pending:
            self.clock.at(0.0, self.on_events, None)
        self._pending.add(u)

    def next_tick(self, u: int) -> None:
        """Rechoke ``u`` at the next tick, in one batch with every peer due then."""
        if self.tick_s <= 0:
            self.soon(u)
            return
        if not self._at_tick:
            t = (math.floor(self.clock.now / self.tick_s + 1e-9) + 1) * self.tick_s
            self.clock.at(t - self.clock.now, self.on_events, self._at_tick)
        self._at_tick.add(u)

    def take_events(self, batch: set[int] | None, online: np.ndarray) -> np.ndarray:
        """The online peers of an event batch (``None``: the after-this-event one), sorted."""
        pending = self._pending if batch is None else batch
        peers = np.array(sorted(pending), dtype=np.int64)
        pending.clear()
        return peers[online[peers]]
