"""Transfers at flow level: who uploads which piece to whom, at what rate, finishing when.

A ``Flow`` exists while an uploader unchokes an interested downloader; it is *active* while it
carries a ``Download`` (one piece for one peer). A download finishes at
``t + remaining / rate``; when a rate changes the download is settled (bytes credited up to now)
and rescheduled, the stale call being ignored when it fires. That is one event per piece,
never per block. A flow that goes straight on to its next piece keeps its rate, so the common
case re-rates nothing. Choked mid-piece, a download keeps its whole 16 KiB blocks as a partial
piece that the next uploader can finish.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from swarmsim.engine.clock import Call, Clock

# libtorrent's per-connection rate meter (``stat_channel::second_tick``): each second
# avg = avg * 4/5 + sample / 5, i.e. an exponential average decaying by 4/5 per second
RATE_DECAY_PER_S = math.log(5 / 4)


def decayed(estimate, rate, dt):
    """An exponential rate estimate after ``dt`` seconds at a steady ``rate`` (scalars or
    arrays alike: the scalar and the batched paths round the same way)."""
    return rate + (estimate - rate) * np.exp(-RATE_DECAY_PER_S * dt)


class Download:
    """A piece being fetched by ``peer``. Several flows share it in endgame, and when it is
    ``shared``: picked block by block, so the downloader's other connections may fetch other
    blocks of it (libtorrent outside whole-piece mode); their bytes add up."""

    __slots__ = (
        "peer",
        "piece",
        "size",
        "remaining",
        "t",
        "rate",
        "flows",
        "event",
        "start",
        "shared",
    )

    def __init__(
        self, peer: int, piece: int, size: int, remaining: float, now: float, shared: bool
    ):
        self.peer = peer
        self.piece = piece
        self.size = size
        self.remaining = remaining
        self.t = now
        self.start = now
        self.rate = 0.0
        self.flows: list[Flow] = []
        self.event: Call | None = None
        self.shared = shared


class Flow:
    """Uploader ``up`` serves interested ``down``: it unchokes it, or it chokes it and serves
    its BEP 6 allowed-fast pieces (``fast``). ``s_up``/``s_down`` are the connection's slots in
    each side's row of the connection table. ``queue`` holds the pieces the downloader has
    reserved on this connection beyond the one in flight (its request pipeline)."""

    __slots__ = (
        "up",
        "down",
        "s_up",
        "s_down",
        "i_in",
        "i_out",
        "rate",
        "dl",
        "alive",
        "weight",
        "t0",
        "queue",
        "fast",
    )

    def __init__(
        self,
        up: int,
        down: int,
        s_up: int,
        s_down: int,
        width: int,
        weight: float = 1.0,
        t0: float = 0.0,
        fast: bool = False,
    ):
        self.up = up
        self.down = down
        self.s_up = s_up
        self.s_down = s_down
        # the connection's cells in the flattened (peer, slot) tables, ``width`` slots a row:
        # one integer index is 40 % cheaper than a (row, column) pair at every settle
        self.i_in = down * width + s_down
        self.i_out = up * width + s_up
        self.rate = 0.0
        self.dl: Download | None = None
        self.alive = True
        self.weight = weight  # the uploader's share for it (chokers such as propshare set it)
        self.t0 = t0  # when the uploader unchoked the downloader
        self.queue: list[int] = []
        self.fast = fast


def _flat(table: np.ndarray) -> np.ndarray:
    """A 1-D view of a (peer, slot) table (never a copy: writes must reach the table)."""
    flat = table.view()
    flat.shape = (-1,)
    return flat


def _columns(rows: list[tuple]) -> tuple[np.ndarray, ...]:
    """Per-flow tuples as one numpy array per field (index and value columns)."""
    return tuple(np.array(c) for c in zip(*rows, strict=True))


class Network:
    """Flows, downloads and their rates for every peer, plus the byte counters they feed."""

    # stale completion entries tolerated before sweeping the heap: a small heap stays in cache
    # (propshare, which re-rates every flow each round, ran 10 % faster at 4,096 than 50,000)
    compact_floor = 4096
    # re-ratings from this many changed flows on are written with numpy (``_rerate_batch``)
    batch_rerate = 64

    def __init__(
        self,
        clock: Clock,
        n_peers: int,
        up_bps,
        down_bps,
        conns,
        allocator,
        block_bytes: int,
        on_done: Callable[[Download], None],
        on_abandon: Callable[[Download, float], None],
        estimate_rates: bool = False,
        ack_share: float = 0.0,
    ):
        self.clock = clock
        self._fire_call = self._fire  # one bound method: compaction tells our calls by it
        self.up_bps = [float(x) for x in up_bps]
        self.down_bps = [float(x) for x in down_bps]
        self.ack_share = ack_share  # see bandwidth.FlowNet
        self.width = conns.max_conn
        # flat views of the (peer, slot) tables the flows write (cell = flow.i_in / i_out)
        self.recv_f, self.sent_f, self.last_recv_f = map(
            _flat, (conns.recv, conns.sent, conns.last_recv)
        )
        self.t_in_f, self.t_out_f = _flat(conns.t_in), _flat(conns.t_out)
        self.rate_in_f, self.rate_out_f = _flat(conns.rate_in), _flat(conns.rate_out)
        # the download-rate estimate of each connection, kept only when a picker reads it
        self.estimate_rates = estimate_rates
        self.est_f, self.est_t_f = _flat(conns.rate_est_in), _flat(conns.rate_est_t)
        self.allocator = allocator
        self.block_bytes = block_bytes
        self.on_done = on_done
        self.on_abandon = on_abandon
        self.on_close: Callable[[Flow], None] = lambda f: None
        self.out_flows: list[dict[int, Flow]] = [{} for _ in range(n_peers)]
        self.in_flows: list[dict[int, Flow]] = [{} for _ in range(n_peers)]
        self.act_out: list[dict[int, Flow]] = [{} for _ in range(n_peers)]
        self.act_in: list[dict[int, Flow]] = [{} for _ in range(n_peers)]
        self.downloads: list[dict[int, Download]] = [{} for _ in range(n_peers)]
        # the weights of each peer's active uploads, summed as they come and go (exact for
        # the usual weight 1); allocators divide the upload capacity by it
        self.out_weight = [0.0] * n_peers
        self.uploaded = np.zeros(n_peers)
        self.downloaded = np.zeros(n_peers)
        self.discarded = np.zeros(n_peers)  # bytes of cut blocks and of partials lost on leaving
        self._dirty_up: dict[int, None] = {}
        self._dirty_down: dict[int, None] = {}
        # Aggregate upload rate and its time integral, for the time series.
        self._stale = 0  # superseded completion calls still in the clock's queue
        self._compact_at = self.compact_floor
        self.rate_sum = 0.0
        self._integral = 0.0
        self._t_integral = 0.0

    # --- flows ---------------------------------------------------------------------------
    def open_flow(
        self, up: int, down: int, s_up: int, s_down: int, weight: float = 1.0, fast: bool = False
    ) -> Flow:
        f = Flow(up, down, s_up, s_down, self.width, weight, self.clock.now, fast)
        self.out_flows[up][down] = f
        self.in_flows[down][up] = f
        return f

    def close_flow(self, f: Flow, keep_partial: bool = True) -> None:
        """End a flow (choke, lost interest, disconnect); its piece becomes partial if cut."""
        f.alive = False
        self.on_close(f)
        del self.out_flows[f.up][f.down]
        del self.in_flows[f.down][f.up]
        dl = f.dl
        if dl is not None:
            self.settle(dl)
            self.release(f)
            if dl.flows:
                self._reschedule(dl)
            elif self.downloads[dl.peer].get(dl.piece) is dl:  # still in flight: abandon it
                self._abandon(dl, keep_partial)

    def start(self, peer: int, piece: int, size: int, kept: float, shared: bool) -> Download:
        dl = Download(peer, piece, size, size - kept, self.clock.now, shared)
        self.downloads[peer][piece] = dl
        return dl

    def assign(self, f: Flow, dl: Download) -> None:
        """Point flow ``f`` at ``dl``. A flow coming straight from a finished piece keeps its
        rate and its place among the active flows, so nothing else needs re-rating."""
        old = f.dl
        if dl.flows:
            self.settle(dl)
        dl.flows.append(f)
        f.dl = dl
        if old is None:
            self.act_out[f.up][f.down] = f
            self.act_in[f.down][f.up] = f
            self.out_weight[f.up] += f.weight
            self._dirty_up[f.up] = None
            self._dirty_down[f.down] = None
        dl.rate += f.rate
        self._reschedule(dl)

    def reweight(self, f: Flow, weight: float) -> None:
        """The uploader changed this flow's share: its active flows need new rates."""
        if weight != f.weight:
            if f.dl is not None:
                self.out_weight[f.up] += weight - f.weight
                self._dirty_up[f.up] = None
            f.weight = weight

    def release(self, f: Flow) -> None:
        """``f`` stops carrying a download (finished, cut, or nothing left to fetch from it)."""
        dl = f.dl
        if f in dl.flows:
            dl.flows.remove(f)
            dl.rate = sum(g.rate for g in dl.flows)
        self._set_rate(f, 0.0)
        f.dl = None
        out = self.act_out[f.up]
        del out[f.down]
        del self.act_in[f.down][f.up]
        self.out_weight[f.up] = self.out_weight[f.up] - f.weight if out else 0.0
        self._dirty_up[f.up] = None
        self._dirty_down[f.down] = None

    def _abandon(self, dl: Download, keep_partial: bool) -> None:
        """A download lost its last source: keep its whole blocks (none if the peer left)."""
        del self.downloads[dl.peer][dl.piece]
        dl.event = None
        got = dl.size - dl.remaining
        kept = (got // self.block_bytes) * self.block_bytes if keep_partial else 0.0
        self.discarded[dl.peer] += got - kept
        self.on_abandon(dl, kept)

    # --- time and bytes --------------------------------------------------------------------
    def _set_rate(self, f: Flow, rate: float) -> None:
        now = self.clock.now
        self._integral += self.rate_sum * (now - self._t_integral)
        self._t_integral = now
        self.rate_sum += rate - f.rate
        f.rate = rate
        if self.estimate_rates:
            self._fold_estimate(f.i_in, now)
        self.rate_in_f[f.i_in] = rate
        self.rate_out_f[f.i_out] = rate
        self.t_in_f[f.i_in] = now  # callers settle first: credited up to now
        self.t_out_f[f.i_out] = now

    def _fold_estimate(self, cell, now: float) -> None:
        """Bring a connection's rate estimate up to ``now`` at its current rate (call before
        the rate changes)."""
        self.est_f[cell] = decayed(self.est_f[cell], self.rate_in_f[cell], now - self.est_t_f[cell])
        self.est_t_f[cell] = now

    def rate_estimate(self, cell) -> float:
        """The downloader's estimate of a connection's download rate now (libtorrent's
        ``download_payload_rate``), in bytes per second."""
        dt = self.clock.now - self.est_t_f[cell]
        return float(decayed(self.est_f[cell], self.rate_in_f[cell], dt))

    def uploaded_integral(self) -> float:
        """Bytes uploaded by everyone so far, in-flight bytes included."""
        return self._integral + self.rate_sum * (self.clock.now - self._t_integral)

    def settle(self, dl: Download) -> None:
        """Credit the bytes each source sent since the download was last settled."""
        now = self.clock.now
        dt = now - dl.t
        if dt <= 0.0:
            return
        dl.t = now
        j = dl.peer
        t_in, t_out, recv, sent = self.t_in_f, self.t_out_f, self.recv_f, self.sent_f
        for f in dl.flows:
            b = f.rate * dt
            i_in, i_out = f.i_in, f.i_out
            t_in[i_in] = now
            t_out[i_out] = now
            if b > 0.0:
                recv[i_in] += b
                sent[i_out] += b
                self.last_recv_f[i_in] = now
                self.uploaded[f.up] += b
                self.downloaded[j] += b
                dl.remaining -= b

    def complete(self, dl: Download) -> list[Flow]:
        """Credit the last bytes exactly (float residue shared by rate) and retire ``dl``;
        its flows still point at it until ``assign`` or ``release`` moves them on."""
        self.settle(dl)
        residue = dl.remaining
        if residue != 0.0 and dl.rate > 0.0:
            for f in dl.flows:
                b = residue * f.rate / dl.rate
                self.recv_f[f.i_in] += b
                self.sent_f[f.i_out] += b
                self.uploaded[f.up] += b
                self.downloaded[dl.peer] += b
        dl.remaining = 0.0
        del self.downloads[dl.peer][dl.piece]
        dl.event = None
        flows, dl.flows = dl.flows, []
        return flows

    def reflow(self) -> None:
        """Give new rates to the flows the last event could have changed; reschedule them."""
        if not self._dirty_up and not self._dirty_down:
            return
        up, down = self._dirty_up, self._dirty_down
        self._dirty_up, self._dirty_down = {}, {}
        changes = [(f, r) for f, r in self.allocator.reallocate(self, up, down) if r != f.rate]
        if not changes:
            return
        touched: dict[int, Download] = {}
        for f, _ in changes:
            touched.setdefault(id(f.dl), f.dl)
        if len(changes) < self.batch_rerate:
            # settle first: bytes are credited at the old rates up to now
            settle, set_rate = self.settle, self._set_rate
            for dl in touched.values():
                settle(dl)
            for f, r in changes:
                set_rate(f, r)
        else:
            self._rerate_batch(touched.values(), changes)
        for dl in touched.values():
            flows = dl.flows  # one flow outside endgame: its rate, without a generator
            dl.rate = flows[0].rate if len(flows) == 1 else sum(g.rate for g in flows)
            self._reschedule(dl)

    def _rerate_batch(self, downloads, changes: list) -> None:
        """``settle`` every download, then ``_set_rate`` every change, with the per-slot
        writes done as a few numpy calls (a rechoke batch re-rates thousands of flows).
        Each flow owns its cells, so the fancy writes never collide, and ``np.add.at``
        adds the per-peer byte totals in the scalar path's order: the results are bit for
        bit those of ``settle`` and ``_set_rate``."""
        now = self.clock.now
        cells: list[tuple[int, int, int, int, float]] = []  # i_in, i_out, down, up, bytes
        for dl in downloads:
            dt = now - dl.t
            if dt <= 0.0:
                continue
            dl.t = now
            j = dl.peer
            for f in dl.flows:
                b = f.rate * dt
                cells.append((f.i_in, f.i_out, j, f.up, b))
                if b > 0.0:
                    dl.remaining -= b
        if cells:
            i_in, i_out, d, u, b = _columns(cells)
            self.t_in_f[i_in] = now
            self.t_out_f[i_out] = now
            moved = b > 0.0
            i_in, i_out, d, u, b = i_in[moved], i_out[moved], d[moved], u[moved], b[moved]
            self.recv_f[i_in] += b
            self.sent_f[i_out] += b
            self.last_recv_f[i_in] = now
            np.add.at(self.uploaded, u, b)
            np.add.at(self.downloaded, d, b)
        self._integral += self.rate_sum * (now - self._t_integral)
        self._t_integral = now
        rated: list[tuple[int, int, float]] = []  # i_in, i_out, rate
        rate_sum = self.rate_sum
        for f, r in changes:
            rate_sum += r - f.rate
            f.rate = r
            rated.append((f.i_in, f.i_out, r))
        self.rate_sum = rate_sum
        i_in, i_out, r = _columns(rated)
        if self.estimate_rates:
            dt = now - self.est_t_f[i_in]
            self.est_f[i_in] = decayed(self.est_f[i_in], self.rate_in_f[i_in], dt)
            self.est_t_f[i_in] = now
        self.rate_in_f[i_in] = r
        self.rate_out_f[i_out] = r
        self.t_in_f[i_in] = now
        self.t_out_f[i_out] = now

    def _reschedule(self, dl: Download) -> None:
        if dl.rate <= 0.0:
            dl.event = None
            return
        if dl.event is not None:
            self._stale += 1
            if self._stale > self._compact_at:
                self._compact()
        clock = self.clock
        # the payload is new each time: the call that fires is current only if it is still
        # the download's (a rate change leaves the old one queued: calls cannot be cancelled)
        dl.event = clock.at_time(
            clock.now + max(dl.remaining, 0.0) / dl.rate, self._fire_call, (dl,)
        )

    def _compact(self) -> None:
        """Drop superseded completion calls from the clock's queue.

        A call cannot be cancelled, so a rescheduled download leaves its old call in the
        heap until its (often distant) time; with many rate changes the heap fills with them
        and every push gets slower. Rebuilding it without them is O(n), done when they
        outnumber the queue's other entries."""
        fire = self._fire_call
        left = self.clock.compact(lambda c: c.fn is fire and c.payload[0].event is not c)
        self._stale = 0
        self._compact_at = max(self.compact_floor, left)

    def _fire(self, due: tuple[Download]) -> None:
        dl = due[0]
        if dl.event is not None and dl.event.payload is due:
            self.on_done(dl)
