"""Transfers at flow level: who uploads which piece to whom, at what rate, finishing when.

A ``Flow`` exists while an uploader unchokes an interested downloader; it is *active* while it
carries a ``Download`` (one piece for one peer). A download finishes at
``t + remaining / rate``; when a rate changes the download is settled (bytes credited up to now)
and rescheduled, the stale SimPy event being ignored when it fires. That is one event per piece,
never per block. Choked mid-piece, a download keeps its whole 16 KiB blocks as a partial piece
that the next uploader can finish (DESIGN.md "Torrent").
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import simpy
from simpy.events import Timeout


class Download:
    """A piece being fetched by ``peer``; several flows only in endgame."""

    __slots__ = ("peer", "piece", "size", "remaining", "t", "rate", "flows", "event")

    def __init__(self, peer: int, piece: int, size: int, remaining: float, now: float):
        self.peer = peer
        self.piece = piece
        self.size = size
        self.remaining = remaining
        self.t = now
        self.rate = 0.0
        self.flows: list[Flow] = []
        self.event: Timeout | None = None


class Flow:
    """Uploader ``up`` unchokes interested ``down``; ``s_up``/``s_down`` are the connection's
    slots in each side's row of the connection table."""

    __slots__ = ("up", "down", "s_up", "s_down", "rate", "dl", "alive")

    def __init__(self, up: int, down: int, s_up: int, s_down: int):
        self.up = up
        self.down = down
        self.s_up = s_up
        self.s_down = s_down
        self.rate = 0.0
        self.dl: Download | None = None
        self.alive = True


class Network:
    """Flows, downloads and their rates for every peer, plus the byte counters they feed.

    ``recv[j, s]`` (owned by the connection table) accumulates the payload bytes peer ``j``
    received over its connection slot ``s``; ``uploaded`` / ``downloaded`` count per peer.
    """

    def __init__(self, env: simpy.Environment, n_peers: int, up_bps, down_bps, recv: np.ndarray,
                 last_recv: np.ndarray, allocator, block_bytes: int,
                 on_done: Callable[[Download], None],
                 on_abandon: Callable[[Download, float], None]):
        self.env = env
        self.up_bps = list(map(float, up_bps))
        self.down_bps = list(map(float, down_bps))
        self.recv = recv
        self.last_recv = last_recv
        self.allocator = allocator
        self.on_done = on_done
        self.on_abandon = on_abandon
        self.block_bytes = block_bytes
        self.out_flows: list[dict[int, Flow]] = [{} for _ in range(n_peers)]
        self.in_flows: list[dict[int, Flow]] = [{} for _ in range(n_peers)]
        self.act_out: list[dict[int, Flow]] = [{} for _ in range(n_peers)]
        self.act_in: list[dict[int, Flow]] = [{} for _ in range(n_peers)]
        self.downloads: list[dict[int, Download]] = [{} for _ in range(n_peers)]
        self.uploaded = np.zeros(n_peers)
        self.downloaded = np.zeros(n_peers)
        self.discarded = np.zeros(n_peers)  # partial blocks lost when a flow was cut
        self._dirty_up: dict[int, None] = {}
        self._dirty_down: dict[int, None] = {}
        # Aggregate upload rate and its integral, for the time series' utilisation.
        self.rate_sum = 0.0
        self.bytes_integral = 0.0
        self._t_integral = 0.0

    # FlowNet protocol, for allocators
    def active_out(self, peer: int):
        return self.act_out[peer].values()

    def active_in(self, peer: int):
        return self.act_in[peer].values()

    # --- flows -------------------------------------------------------------------------
    def open_flow(self, up: int, down: int, s_up: int, s_down: int) -> Flow:
        f = Flow(up, down, s_up, s_down)
        self.out_flows[up][down] = f
        self.in_flows[down][up] = f
        return f

    def close_flow(self, f: Flow, keep_partial: bool = True) -> None:
        """End a flow (choke, lost interest, disconnect); its piece becomes partial if cut."""
        f.alive = False
        del self.out_flows[f.up][f.down]
        del self.in_flows[f.down][f.up]
        if f.dl is not None:
            dl = f.dl
            self.settle(dl)
            self._detach(f)
            if not dl.flows:
                self._abandon(dl, keep_partial)
            else:
                self._reschedule(dl)

    def attach(self, f: Flow, dl: Download) -> None:
        if dl.flows:
            self.settle(dl)
        dl.flows.append(f)
        f.dl = dl
        self.act_out[f.up][f.down] = f
        self.act_in[f.down][f.up] = f
        self._dirty_up[f.up] = None
        self._dirty_down[f.down] = None

    def _detach(self, f: Flow) -> None:
        dl = f.dl
        dl.flows.remove(f)
        self._set_rate(f, 0.0)
        dl.rate = sum(g.rate for g in dl.flows)
        f.dl = None
        del self.act_out[f.up][f.down]
        del self.act_in[f.down][f.up]
        self._dirty_up[f.up] = None
        self._dirty_down[f.down] = None

    def _abandon(self, dl: Download, keep_partial: bool) -> None:
        """A download lost its last source: keep its whole blocks (or nothing if the peer left)."""
        del self.downloads[dl.peer][dl.piece]
        dl.event = None
        got = dl.size - dl.remaining
        kept = (got // self.block_bytes) * self.block_bytes if keep_partial else 0.0
        self.discarded[dl.peer] += got - kept
        dl.remaining = dl.size - kept
        dl.flows = []
        self.on_abandon(dl, kept)

    def start(self, peer: int, piece: int, size: int, kept: float) -> Download:
        dl = Download(peer, piece, size, size - kept, self.env.now)
        self.downloads[peer][piece] = dl
        return dl

    # --- time and bytes ------------------------------------------------------------------
    def _set_rate(self, f: Flow, rate: float) -> None:
        now = self.env.now
        self.bytes_integral += self.rate_sum * (now - self._t_integral)
        self._t_integral = now
        self.rate_sum += rate - f.rate
        f.rate = rate

    def uploaded_integral(self) -> float:
        """Bytes uploaded by everyone so far, in-flight bytes included."""
        return self.bytes_integral + self.rate_sum * (self.env.now - self._t_integral)

    def settle(self, dl: Download) -> None:
        """Credit the bytes each source sent since the download was last settled."""
        now = self.env.now
        dt = now - dl.t
        if dt <= 0.0:
            return
        dl.t = now
        j = dl.peer
        for f in dl.flows:
            b = f.rate * dt
            if b > 0.0:
                self.recv[j, f.s_down] += b
                self.last_recv[j, f.s_down] = now
                self.uploaded[f.up] += b
                self.downloaded[j] += b
                dl.remaining -= b

    def finish(self, dl: Download) -> None:
        """Credit the last bytes exactly (float residue goes to the sources by rate)."""
        self.settle(dl)
        residue = dl.remaining
        if residue != 0.0:
            total = dl.rate if dl.rate > 0 else float(len(dl.flows))
            for f in dl.flows:
                b = residue * ((f.rate / total) if dl.rate > 0 else 1.0 / total)
                self.recv[dl.peer, f.s_down] += b
                self.uploaded[f.up] += b
                self.downloaded[dl.peer] += b
        dl.remaining = 0.0
        del self.downloads[dl.peer][dl.piece]
        dl.event = None
        for f in list(dl.flows):
            self._detach(f)

    def reflow(self) -> None:
        """Give new rates to the flows the last event could have changed; reschedule them."""
        if not self._dirty_up and not self._dirty_down:
            return
        up, down = self._dirty_up, self._dirty_down
        self._dirty_up, self._dirty_down = {}, {}
        changes = [(f, r) for f, r in self.allocator.reallocate(self, up, down) if r != f.rate]
        touched: dict[int, Download] = {}
        for f, _ in changes:
            touched[id(f.dl)] = f.dl
        for dl in touched.values():
            self.settle(dl)
        for f, r in changes:
            self._set_rate(f, r)
        for dl in touched.values():
            dl.rate = sum(f.rate for f in dl.flows)
            self._reschedule(dl)

    def _reschedule(self, dl: Download) -> None:
        if dl.rate <= 0.0:
            dl.event = None
            return
        delay = max(dl.remaining, 0.0) / dl.rate
        ev = Timeout(self.env, delay if math.isfinite(delay) else 0.0, dl)
        ev.callbacks.append(self._fire)
        dl.event = ev

    def _fire(self, ev: Timeout) -> None:
        dl = ev._value
        if dl.event is ev:
            self.on_done(dl)
