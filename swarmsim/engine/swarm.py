"""The swarm: the peer table and the events that move pieces, on the engine's ``Clock``.

Events are calls the clock makes with their payload: a peer joins, rechokes (every choker
interval, and coalesced at once after a connection opens or closes or an unchoked peer loses
interest), re-announces, finishes a piece, leaves; and the recorder samples. Each handler ends
by letting the bandwidth allocator re-rate the flows it touched. Per-event work is bounded by a
peer's degree and the piece count, vectorised in numpy (no O(peers^2) anywhere).
"""

from __future__ import annotations

import gc
import hashlib
import math
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np

from swarmsim.api.views import ChokeView
from swarmsim.build import Plugins, build_arrivals, build_plugins
from swarmsim.engine.allowed_fast import AllowedFast, peer_address
from swarmsim.engine.clock import Clock
from swarmsim.engine.connections import Connections
from swarmsim.engine.economy import Economy
from swarmsim.engine.exchange import Exchange
from swarmsim.engine.invariants import check_invariants
from swarmsim.engine.network import Flow, Network
from swarmsim.engine.pieces import PieceState
from swarmsim.engine.rechokes import RechokeTimers
from swarmsim.engine.tracker import Tracker
from swarmsim.rng import Streams


def plan_peers(
    scenario, streams: Streams, arrivals: list | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every peer's (class index, join time, starts as seed), in join order: by time, seeds
    first, random among equals. The live harness uses it too, so both join alike."""
    arrivals = build_arrivals(scenario) if arrivals is None else arrivals
    cls, join, seed = [], [], []
    for ci, pc in enumerate(scenario.peers):
        times = arrivals[ci].join_times(pc.count, streams.get(f"arrivals/{pc.name}"))
        cls.append(np.full(len(times), ci))
        join.append(np.asarray(times, dtype=float))
        seed.append(np.full(len(times), pc.starts_as == "seed"))
    cls, join, seed = np.concatenate(cls), np.concatenate(join), np.concatenate(seed)
    tie = streams.get("join_order").random(len(join))
    order = np.lexsort((tie, ~seed, join))
    return cls[order], join[order], seed[order]


# libtorrent's rate_limit_ip_overhead (stat.hpp trancieve_ip_packet): 40 B of TCP/IPv4
# headers per 1,460 B segment; a 16 KiB block's piece message adds 13 B of header
TCP_IP_HEADER_BYTES, SEGMENT_PAYLOAD_BYTES, PIECE_HEADER_BYTES = 40, 1460, 13


def payload_share(block_bytes: int) -> float:
    """The share of a rate cap left for payload when the cap counts every header."""
    return 1.0 / (
        1.0 + TCP_IP_HEADER_BYTES / SEGMENT_PAYLOAD_BYTES + PIECE_HEADER_BYTES / block_bytes
    )


def ack_share(block_bytes: int) -> float:
    """What each payload byte moving one way costs the other way's cap, in payload bytes:
    libtorrent charges every segment's 40 B of headers to both directions (one for the
    segment, one for its ACK), so a downloading peer's upload cap carries its ACKs."""
    return TCP_IP_HEADER_BYTES / SEGMENT_PAYLOAD_BYTES * payload_share(block_bytes)


@contextmanager
def rare_gc_passes(allocations: int = 100_000):
    """Run the cyclic garbage collector every ``allocations`` net allocations, not 700.

    The event loop makes millions of short-lived objects (completion entries, flows, heap
    tuples); many outlive a young-generation pass and, promoted, trigger passes over every
    live object: 127 full passes in a propshare ``flash-1k`` run, 7 % of mainline's wall
    time and 15 % of propshare's. The engine's objects rarely form cycles (a finished
    download drops its flows), so collecting less often costs little memory."""
    old = gc.get_threshold()
    gc.set_threshold(allocations, *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


class Swarm(Exchange):
    rounds_kept = ChokeView.rounds_kept  # rate snapshots per connection: windows of 1..3 rounds

    def __init__(
        self,
        scenario,
        recorder,
        *,
        check: bool = False,
        progress: Callable[[float], None] | None = None,
        plugins: Plugins | None = None,
    ):
        self.scenario = sc = scenario
        self.plugins = build_plugins(sc) if plugins is None else plugins
        self.recorder = recorder
        self.check = check
        self.progress = progress
        self.streams = Streams(sc.seed)
        self.clock = Clock()
        self.events = 0
        self.violations: list[str] = []

        t = sc.torrent
        P = t.n_pieces
        piece_size = np.full(P, t.piece_bytes, dtype=np.int64)
        piece_size[-1] = t.file_bytes - (P - 1) * t.piece_bytes
        self._setup_peers()
        N = self.n_peers
        self.pieces = PieceState(piece_size, self.starts_seed)
        self.online = np.zeros(N, dtype=bool)
        self.complete_s = np.full(N, np.nan)
        self.leave_s = np.full(N, np.nan)
        self.aborted = np.zeros(N, dtype=bool)

        rank = self.streams.get("picker/rank").permuted(
            np.tile(np.arange(P, dtype=np.int32), (N, 1)), axis=1
        )
        tr = sc.tracker
        self.conns = Connections(N, tr.max_connections, P, rank, self.rounds_kept)
        self.picker = self.plugins.picker
        # the picker keeps a request pipeline: it reads rate estimates and reserves ahead
        self.pipelined = self.picker.uses_rate_estimates
        # an idle connection asks again as soon as its uploader announces a useful piece,
        # or (libtorrent) only when something changes on the downloader's side
        self.request_on_have = self.picker.request_on_have
        self.reserved: list[dict[int, Flow]] = [{} for _ in range(N)]  # piece -> its flow
        for choker in self.choker_objs:
            choker.setup(N, tr.max_connections)
        self.tick_s = sc.timers.tick_s
        self.timers = RechokeTimers(
            self.clock, self.tick_s, N, self._on_periodic_batch, self._on_event_rechoke
        )
        # BEP 6: every peer's allowed-fast sequence, from its address and the info-hash
        self.fast_k = [c.allowed_fast_set_size for c in self.chokers]
        self.allowed_fast = AllowedFast(
            [peer_address(k) for k in range(N)],
            # the live torrent's info-hash follows from its payload, made from the seed
            hashlib.sha1(f"{sc.seed}:{t.file_bytes}:{t.piece_bytes}".encode()).digest(),
            P,
            max(self.fast_k, default=0),
        )
        self.handshake_s = sc.wire.handshake_s
        self.dialing = np.zeros(N, dtype=np.int64)  # connections still in their handshake
        self._dials: set[tuple[int, int]] = set()
        self.snap_t = np.zeros((N, self.rounds_kept))
        self.rounds = np.zeros(N, dtype=np.int64)
        self.tracker = Tracker(N, self.streams.get("tracker"))
        self.net = Network(
            self.clock,
            N,
            self.up_bps,
            self.down_bps,
            self.conns,
            self.plugins.bandwidth,
            t.block_bytes,
            self._on_download_done,
            self._on_abandon,
            estimate_rates=self.pipelined,
            ack_share=ack_share(t.block_bytes) if sc.wire.header_overhead else 0.0,
        )
        self.net.on_close = self._record_unchoke
        self.economy = Economy(self)
        self.idle_in: list[dict[int, Flow]] = [{} for _ in range(N)]
        self.idle_out: list[dict[int, Flow]] = [{} for _ in range(N)]
        self.rng_choke = self.streams.get("choker")
        self.rng_pick = self.streams.get("picker")
        self.rng_depart = self.streams.get("departure")
        self._fast_after_rechoke: list[tuple[int, int]] = []  # (uploader, new neighbour)
        self.pending_joins = N
        self.leechers = 0
        self.seeds = 0
        self.stop_reason = "max_time"

    # --- set-up --------------------------------------------------------------------------
    def _setup_peers(self) -> None:
        sc = self.scenario
        self.peer_class, self.join_s, self.starts_seed = plan_peers(
            sc, self.streams, self.plugins.arrivals
        )
        self.n_peers = len(self.join_s)
        classes = sc.peers
        self.class_names = [c.name for c in classes]
        self.up_bps = np.array(
            [0.0 if classes[c].free_rider else classes[c].upload_bps for c in self.peer_class]
        )
        self.nominal_up_bps = np.array([classes[c].upload_bps for c in self.peer_class])
        self.down_bps = np.array([classes[c].download_bps for c in self.peer_class], dtype=float)
        if sc.wire.header_overhead:  # capacities are rate caps: the payload gets the rest
            share = payload_share(sc.torrent.block_bytes)
            self.up_bps = self.up_bps * share
            self.down_bps = self.down_bps * share
        # One choker object per distinct spec, shared by the peers (and classes) that use it.
        self.choker_objs = [self.plugins.choker]
        per_class = []
        for own in self.plugins.class_chokers:
            if own is None:
                per_class.append(0)
            else:
                self.choker_objs.append(own)
                per_class.append(len(self.choker_objs) - 1)
        self.choker_of = np.array(per_class, dtype=np.int64)[self.peer_class]
        self.chokers = [self.choker_objs[k] for k in self.choker_of]
        # per-peer copies of the choker hooks the per-piece hot path reads
        self.on_interest = [c.rechoke_on_interest for c in self.chokers]
        self.after_piece = [c.rechoke_after_piece is not None for c in self.chokers]
        self.events_at_tick = [c.events_at_tick for c in self.chokers]
        self.departure = [self.plugins.departures[c] for c in self.peer_class]

    # --- scheduling ----------------------------------------------------------------------
    def _at(self, delay: float, fn: Callable, arg) -> None:
        self.clock.at(delay, fn, arg)

    def run(self) -> None:
        sc = self.scenario
        if self.n_peers:
            self._at(self.join_s[0], self._on_join, 0)
        self.clock.after_all(0.0, self._on_sample)
        self.economy.start()
        with rare_gc_passes():
            self.clock.run(sc.stop.max_time_s, until_done=sc.stop.all_done)
        if self.clock.finished:
            self.stop_reason = "all_done"
        self._sample_row()

    def _maybe_done(self) -> None:
        if self.pending_joins == 0 and self.leechers == 0:
            self.clock.finish()

    # --- membership ----------------------------------------------------------------------
    def _on_join(self, i: int) -> None:
        self.events += 1
        self.pending_joins -= 1
        if i + 1 < self.n_peers:
            self._at(self.join_s[i + 1] - self.clock.now, self._on_join, i + 1)
        now = self.clock.now
        self.online[i] = True
        self.economy.on_join(i)
        self.pieces.join(i)
        if self.pieces.is_seed[i]:
            self.seeds += 1
        else:
            self.leechers += 1
        self.snap_t[i] = now
        self.tracker.add(i)
        self._announce(i)
        first = self.chokers[i].start(i, now)
        self.timers.periodic(i, self.chokers[i].interval_s if first is None else first)
        self._at(self.scenario.tracker.reannounce_interval_s, self._on_reannounce, i)
        rule = self.departure[i]
        if self.pieces.is_seed[i]:
            self._schedule_departure(i)
        elif rule.abort_rate_per_s > 0:
            self._at(self.rng_depart.exponential(1.0 / rule.abort_rate_per_s), self._on_abort, i)
        self.net.reflow()
        self._maybe_done()

    def _announce(self, i: int) -> None:
        tr = self.scenario.tracker
        conns = self.conns
        cap = conns.max_conn
        dialing = self.dialing
        for c in self.tracker.sample(i, tr.peers_per_announce):
            if conns.deg[i] + dialing[i] >= cap:
                break
            if (
                c in conns.nbr_sets[i]
                or conns.deg[c] + dialing[c] >= cap
                or (self.pieces.is_seed[i] and self.pieces.is_seed[c])
                or (min(i, c), max(i, c)) in self._dials
            ):
                continue
            if self.handshake_s > 0.0:
                self._dials.add((min(i, c), max(i, c)))
                dialing[i] += 1
                dialing[c] += 1
                self._at(self.handshake_s, self._on_handshake, (i, c))
            else:
                self._connect(i, c)

    def _on_handshake(self, pair: tuple[int, int]) -> None:
        i, c = pair
        self._dials.discard((min(i, c), max(i, c)))
        self.dialing[i] -= 1
        self.dialing[c] -= 1
        conns = self.conns
        if (
            self.online[i]
            and self.online[c]
            and c not in conns.nbr_sets[i]
            and conns.deg[i] < conns.max_conn
            and conns.deg[c] < conns.max_conn
            and not (self.pieces.is_seed[i] and self.pieces.is_seed[c])
        ):
            self.events += 1
            self._connect(i, c)
            self.net.reflow()

    def _connect(self, i: int, c: int) -> None:
        """The handshake is done: bitfields are known. mainline 4.x connection_made: into the
        rotation, no rechoke until the next round; libtorrent unchokes a newcomer at once if a
        slot is free (maybe_unchoke_this_peer) and offers it its allowed-fast pieces."""
        conns = self.conns
        conns.connect(i, c, self.clock.now, self.pieces.bits, self.pieces.is_seed)
        for a, b in ((i, c), (c, i)):
            if self.on_interest[a] and self.chokers[a].has_free_slot(
                a, int(conns.unchoked[a].sum())
            ):
                self.timers.soon(a)
                if self.fast_k[a]:  # allowed-fast pieces only if that rechoke leaves b choked
                    self._fast_after_rechoke.append((a, b))
            else:
                self._offer_fast(a, b)

    def _on_reannounce(self, i: int) -> None:
        if not self.online[i]:
            return
        self.events += 1
        if self.conns.deg[i] < self.scenario.tracker.min_peers:
            self._announce(i)
        self._at(self.scenario.tracker.reannounce_interval_s, self._on_reannounce, i)
        self.net.reflow()

    def _schedule_departure(self, i: int) -> None:
        t = self.departure[i].seeding_time_s(self.rng_depart)
        if math.isfinite(t):
            self._at(t, self._on_leave, i)

    def _on_abort(self, i: int) -> None:
        if self.online[i] and not self.pieces.is_seed[i]:
            self.aborted[i] = True
            self._on_leave(i)

    def _on_leave(self, i: int) -> None:
        if not self.online[i]:
            return
        self.events += 1
        self._leave(i)
        self.net.reflow()
        self._maybe_done()

    def _leave(self, i: int) -> None:
        self.online[i] = False
        self.leave_s[i] = self.clock.now
        self.tracker.remove(i)
        self.pieces.leave(i)
        if self.pieces.is_seed[i]:
            self.seeds -= 1
        else:
            self.leechers -= 1
        net = self.net
        for f in list(net.in_flows[i].values()):
            unchoked = not f.fast
            self._close(f, keep_partial=False)
            if unchoked:
                self._lost_unchoked(f)
        for f in list(net.out_flows[i].values()):
            self._close(f)
        ids, slots, _ = self.conns.neighbours(i)
        for j, s in zip(ids.tolist(), slots.tolist(), strict=True):
            self._disconnect(i, s, j)
        self.net.discarded[i] += self.pieces.drop_partials(i)

    def _disconnect(self, i: int, si: int, j: int) -> None:
        conns, net = self.conns, self.net
        for f in (net.out_flows[i].get(j), net.out_flows[j].get(i)):
            if f is not None:  # mainline connection_lost of an unchoked, interested peer
                unchoked = not f.fast
                self._close(f)
                if unchoked:
                    self._lost_unchoked(f)
        sj = int(conns.rev[i, si])
        self.recorder.transfer(j, i, conns.recv[i, si], int(conns.pieces_recv[i, si]))
        self.recorder.transfer(i, j, conns.recv[j, sj], int(conns.pieces_recv[j, sj]))
        conns.disconnect(i, si, self.pieces.bits, self.pieces.is_seed)

    def _record_unchoke(self, f: Flow) -> None:
        if not f.fast:
            self.recorder.unchoke(f.up, f.down, f.t0, self.clock.now)

    def _done_seeding(self, u: int) -> bool:
        return self.departure[u].done_seeding(self.economy.seeding_state(u))

    # --- sampling ------------------------------------------------------------------------------
    def _on_sample(self, _: None) -> None:
        self.events += 1
        self._sample_row()
        if self.check:
            check_invariants(self, raise_on_failure=True)
        if self.progress is not None:
            self.progress(self.clock.now)
        self.clock.after_all(self.scenario.record.sample_every_s, self._on_sample)

    def _sample_row(self) -> None:
        now = self.clock.now
        total = self.net.uploaded_integral()
        last_t, last_total = getattr(self, "_last_sample", (0.0, 0.0))
        rate = (total - last_total) / (now - last_t) if now > last_t else 0.0
        self._last_sample = (now, total)
        online = self.online
        cap = float(self.up_bps[online].sum())
        copies = self.pieces.copies
        self.recorder.sample(
            (now, self.leechers, self.seeds, rate, cap, int(copies.min()), float(copies.mean()))
        )

    def flush_transfers(self) -> None:
        """Hand every open connection's byte and piece counts to the recorder (end of run)."""
        conns = self.conns
        for i in np.flatnonzero(self.online).tolist():
            ids, slots, _ = conns.neighbours(i)
            for j, s in zip(ids.tolist(), slots.tolist(), strict=True):
                self.recorder.transfer(j, i, conns.recv[i, s], int(conns.pieces_recv[i, s]))
