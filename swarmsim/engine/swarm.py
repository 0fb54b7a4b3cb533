"""The swarm: a SimPy environment, the peer table and the events that move pieces.

Events are plain SimPy timeouts with one callback each: a peer joins, rechokes (every choker
interval, and coalesced at once after a connection opens or closes or an unchoked peer loses
interest), re-announces, finishes a piece, leaves; and the recorder samples. Each handler ends
by letting the bandwidth allocator re-rate the flows it touched. Per-event work is bounded by a
peer's degree and the piece count, vectorised in numpy (no O(peers^2) anywhere).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import simpy
from simpy.events import Timeout

from swarmsim.engine.connections import Connections
from swarmsim.engine.network import Download, Flow, Network
from swarmsim.engine.tracker import Tracker
from swarmsim.engine.views import ChokeView, PickView
from swarmsim.errors import InvariantError
from swarmsim.policies import ARRIVALS, BANDWIDTH, CHOKERS, DEPARTURES, PICKERS
from swarmsim.rng import Streams

ROUNDS_KEPT = 3  # rate snapshots kept per connection: windows of 1..3 rechoke rounds


class Swarm:
    def __init__(self, scenario, recorder, *, check: bool = False,
                 progress: Callable[[float], None] | None = None):
        self.scenario = sc = scenario
        self.recorder = recorder
        self.check = check
        self.progress = progress
        self.streams = Streams(sc.seed)
        self.env = simpy.Environment()
        self.events = 0
        self.violations: list[str] = []

        t = sc.torrent
        self.n_pieces = P = t.n_pieces
        self.piece_size = np.full(P, t.piece_bytes, dtype=np.int64)
        self.piece_size[-1] = t.file_bytes - (P - 1) * t.piece_bytes
        self._setup_peers()
        N = self.n_peers

        self.bits = np.zeros((N, P), dtype=bool)
        self.busy = np.zeros((N, P), dtype=bool)
        self.need = np.ones((N, P), dtype=bool)  # neither held nor being fetched
        self.bits[self.starts_seed] = True
        self.need[self.starts_seed] = False
        self.is_seed = self.starts_seed.copy()
        self.have = np.where(self.starts_seed, P, 0).astype(np.int64)
        self.free = P - self.have  # pieces neither held nor in flight
        self.copies = np.zeros(P, dtype=np.int64)  # among online peers
        self.partial: list[dict[int, float]] = [{} for _ in range(N)]
        self.online = np.zeros(N, dtype=bool)
        self.complete_s = np.full(N, np.nan)
        self.leave_s = np.full(N, np.nan)
        self.aborted = np.zeros(N, dtype=bool)

        rank = self.streams.get("picker/rank").permuted(
            np.tile(np.arange(P, dtype=np.int32), (N, 1)), axis=1)
        tr = sc.tracker
        self.conns = Connections(N, tr.max_connections, P, rank)
        self.snap_recv = np.zeros((N, tr.max_connections, ROUNDS_KEPT))
        self.snap_sent = np.zeros((N, tr.max_connections, ROUNDS_KEPT))
        self.snap_t = np.zeros((N, ROUNDS_KEPT))
        self.rounds = np.zeros(N, dtype=np.int64)
        self.tracker = Tracker(N, self.streams.get("tracker"))
        self.net = Network(self.env, N, self.up_bps, self.down_bps, self.conns.recv,
                           self.conns.last_recv, sc.bandwidth.build(BANDWIDTH),
                           t.block_bytes, self._on_download_done, self._on_abandon)
        self.idle_in: list[dict[int, Flow]] = [{} for _ in range(N)]
        self.idle_out: list[dict[int, Flow]] = [{} for _ in range(N)]
        self.picker = sc.picker.build(PICKERS)
        self.rng_choke = self.streams.get("choker")
        self.rng_pick = self.streams.get("picker")
        self.rng_depart = self.streams.get("departure")
        self._rechoke_pending: set[int] = set()
        self.pending_joins = N
        self.leechers = 0
        self.seeds = 0
        self._done = self.env.event()
        self.stop_reason = "max_time"

    # --- set-up --------------------------------------------------------------------------
    def _setup_peers(self) -> None:
        sc = self.scenario
        cls, join, seed = [], [], []
        for ci, pc in enumerate(sc.peers):
            times = pc.arrival.build(ARRIVALS).join_times(pc.count, self.streams.get(f"arrivals/{pc.name}"))
            cls.append(np.full(len(times), ci))
            join.append(np.asarray(times, dtype=float))
            seed.append(np.full(len(times), pc.starts_as == "seed"))
        cls, join, seed = np.concatenate(cls), np.concatenate(join), np.concatenate(seed)
        tie = self.streams.get("join_order").random(len(join))
        order = np.lexsort((tie, ~seed, join))  # by time; seeds first; random among equals
        self.n_peers = len(order)
        self.peer_class = cls[order]
        self.join_s = join[order]
        self.starts_seed = seed[order]
        classes = sc.peers
        self.class_names = [c.name for c in classes]
        self.up_bps = np.array([0.0 if classes[c].free_rider else classes[c].upload_bps
                                for c in self.peer_class])
        self.nominal_up_bps = np.array([classes[c].upload_bps for c in self.peer_class])
        self.down_bps = np.array([classes[c].download_bps for c in self.peer_class], dtype=float)
        chokers = [(c.choker or sc.choker) for c in classes]
        self.chokers = [chokers[c].build(CHOKERS) for c in self.peer_class]
        rules = [c.departure.build(DEPARTURES) if c.departure else
                 (DEPARTURES.build("stay") if c.starts_as == "seed" else sc.departure.build(DEPARTURES))
                 for c in classes]
        self.departure = [rules[c] for c in self.peer_class]

    # --- scheduling ----------------------------------------------------------------------
    def _at(self, delay: float, fn: Callable, arg) -> None:
        ev = Timeout(self.env, delay, arg)
        ev.callbacks.append(fn)

    def _request_rechoke(self, u: int) -> None:
        """Coalesce event-driven rechokes of ``u`` into one, run after the current event."""
        if u not in self._rechoke_pending:
            self._rechoke_pending.add(u)
            self._at(0.0, self._on_event_rechoke, u)

    def run(self) -> None:
        sc = self.scenario
        if self.n_peers:
            self._at(self.join_s[0], self._on_join, 0)
        self._at(0.0, self._on_sample, None)
        stop = self.env.timeout(sc.stop.max_time_s)
        until = simpy.AnyOf(self.env, [stop, self._done]) if sc.stop.all_done else stop
        self.env.run(until=until)
        if self._done.triggered:
            self.stop_reason = "all_done"
        self._sample_row()

    def _maybe_done(self) -> None:
        if self.pending_joins == 0 and self.leechers == 0 and not self._done.triggered:
            self._done.succeed()

    # --- membership ----------------------------------------------------------------------
    def _on_join(self, ev) -> None:
        i = ev._value
        self.events += 1
        self.pending_joins -= 1
        if i + 1 < self.n_peers:
            self._at(self.join_s[i + 1] - self.env.now, self._on_join, i + 1)
        now = self.env.now
        self.online[i] = True
        self.copies += self.bits[i]
        if self.is_seed[i]:
            self.seeds += 1
        else:
            self.leechers += 1
        self.snap_t[i] = now
        self.tracker.add(i)
        self._announce(i)
        interval = self.chokers[i].interval_s
        self._at(interval, self._on_periodic_rechoke, i)
        self._at(self.scenario.tracker.reannounce_interval_s, self._on_reannounce, i)
        rule = self.departure[i]
        if self.is_seed[i]:
            self._schedule_departure(i)
        elif rule.abort_rate_per_s > 0:
            self._at(self.rng_depart.exponential(1.0 / rule.abort_rate_per_s), self._on_abort, i)
        self.net.reflow()
        self._maybe_done()

    def _announce(self, i: int) -> None:
        tr = self.scenario.tracker
        conns = self.conns
        cap = conns.max_conn
        for c in self.tracker.sample(i, tr.peers_per_announce):
            if conns.deg[i] >= cap:
                break
            if c in conns.nbr_sets[i] or conns.deg[c] >= cap or (self.is_seed[i] and self.is_seed[c]):
                continue
            si, sc_ = conns.connect(i, c, self.env.now, self.bits, self.is_seed)
            for a, s in ((i, si), (c, sc_)):
                self.snap_recv[a, s] = 0.0
                self.snap_sent[a, s] = 0.0
            self._request_rechoke(i)
            self._request_rechoke(c)

    def _on_reannounce(self, ev) -> None:
        i = ev._value
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

    def _on_abort(self, ev) -> None:
        i = ev._value
        if self.online[i] and not self.is_seed[i]:
            self.aborted[i] = True
            self._on_leave(ev)

    def _on_leave(self, ev) -> None:
        i = ev._value
        if not self.online[i]:
            return
        self.events += 1
        self._leave(i)
        self.net.reflow()
        self._maybe_done()

    def _leave(self, i: int) -> None:
        self.online[i] = False
        self.leave_s[i] = self.env.now
        self.tracker.remove(i)
        self.copies -= self.bits[i]
        if self.is_seed[i]:
            self.seeds -= 1
        else:
            self.leechers -= 1
        net = self.net
        for f in list(net.in_flows[i].values()):
            self._close(f, keep_partial=False)
            self._request_rechoke(f.up)
        for f in list(net.out_flows[i].values()):
            self._close(f)
        ids, slots, _ = self.conns.neighbours(i)
        for j, s in zip(ids.tolist(), slots.tolist(), strict=True):
            self._disconnect(i, s, j)
        self.net.discarded[i] += sum(self.partial[i].values())
        self.partial[i].clear()

    def _disconnect(self, i: int, si: int, j: int) -> None:
        conns, net = self.conns, self.net
        for f in (net.out_flows[i].get(j), net.out_flows[j].get(i)):
            if f is not None:
                self._close(f)
                self._request_rechoke(f.up)
        sj = int(conns.rev[i, si])
        self.recorder.transfer(j, i, conns.recv[i, si], int(conns.pieces_recv[i, si]))
        self.recorder.transfer(i, j, conns.recv[j, sj], int(conns.pieces_recv[j, sj]))
        conns.disconnect(i, si, self.bits, self.is_seed)
        self._request_rechoke(i)
        self._request_rechoke(j)

    def _close(self, f: Flow, keep_partial: bool = True) -> None:
        self.conns.unchoked[f.up, f.s_up] = False
        self.idle_in[f.down].pop(f.up, None)
        self.idle_out[f.up].pop(f.down, None)
        self.net.close_flow(f, keep_partial)

    # --- choking ---------------------------------------------------------------------------
    def _on_periodic_rechoke(self, ev) -> None:
        u = ev._value
        if not self.online[u]:
            return
        self.events += 1
        self.rounds[u] += 1
        self._rechoke(u, periodic=True)
        self._at(self.chokers[u].interval_s, self._on_periodic_rechoke, u)
        if self.is_seed[u] and self._done_seeding(u):
            self._leave(u)
            self._maybe_done()
        self.net.reflow()

    def _on_event_rechoke(self, ev) -> None:
        u = ev._value
        self._rechoke_pending.discard(u)
        if not self.online[u]:
            return
        self.events += 1
        self._rechoke(u, periodic=False)
        self.net.reflow()

    def _done_seeding(self, u: int) -> bool:
        seeded = self.env.now - (self.join_s[u] if self.starts_seed[u] else self.complete_s[u])
        return self.departure[u].done_seeding(self.net.uploaded[u], self.net.downloaded[u], seeded)

    def _rechoke(self, u: int, periodic: bool) -> None:
        conns = self.conns
        ids, slots, revs = conns.neighbours(u)
        was = conns.unchoked[u, slots]
        if self.up_bps[u] <= 0.0 or ids.size == 0:
            new = np.zeros(ids.size, dtype=bool)
        else:
            view = self.choke_view(u, periodic, ids, slots, revs)
            chosen = self.chokers[u].rechoke(view, self.rng_choke)
            new = np.isin(ids, chosen)
            if len(chosen) != int(new.sum()) or (new & ~view.interested).any():
                raise InvariantError(
                    f"choker {type(self.chokers[u]).__name__} of peer {u} unchoked "
                    f"{sorted(set(np.asarray(chosen).tolist()))}: not all distinct, connected "
                    "and interested")
        net, now = self.net, self.env.now
        for k in np.flatnonzero(was & ~new).tolist():
            self._close(net.out_flows[u][int(ids[k])])
        for k in np.flatnonzero(new & ~was).tolist():
            j, s = int(ids[k]), int(slots[k])
            conns.unchoked[u, s] = True
            conns.last_unchoke[u, s] = now
            conns.sent_pieces[u, s] = 0
            self._feed(net.open_flow(u, j, s, int(revs[k])))
        if periodic:
            r = self.rounds[u] % ROUNDS_KEPT
            self.snap_recv[u, slots, r] = conns.recv[u, slots]
            self.snap_sent[u, slots, r] = conns.recv[ids, revs]
            self.snap_t[u, r] = now

    def choke_view(self, u: int, periodic: bool, ids, slots, revs) -> ChokeView:
        conns, net = self.conns, self.net
        for f in net.act_in[u].values():
            net.settle(f.dl)
        for f in net.act_out[u].values():
            net.settle(f.dl)
        now = self.env.now
        k = int(self.rounds[u]) + (0 if periodic else 1)
        recv = conns.recv[u, slots]
        sent = conns.recv[ids, revs]
        since = conns.connected_s[u, slots]
        received, sent_b, window = {}, {}, {}
        for r in range(1, ROUNDS_KEPT + 1):
            idx = max(k - r, 0) % ROUNDS_KEPT
            received[r] = recv - self.snap_recv[u, slots, idx]
            sent_b[r] = sent - self.snap_sent[u, slots, idx]
            window[r] = now - np.maximum(self.snap_t[u, idx], since)
        return ChokeView(
            now_s=now, peer=u, is_seed=bool(self.is_seed[u]), periodic=periodic,
            round=int(self.rounds[u]), upload_bps=float(self.up_bps[u]),
            have_pieces=int(self.have[u]), n_pieces=self.n_pieces, peers=ids,
            interested=conns.want[ids, revs] > 0, unchoked=conns.unchoked[u, slots],
            connected_s=since, last_unchoked_s=conns.last_unchoke[u, slots],
            last_received_s=conns.last_recv[u, slots],
            pieces_sent_since_unchoke=conns.sent_pieces[u, slots], have_counts=self.have[ids],
            received_bytes=received, sent_bytes=sent_b, window_s=window)

    # --- pieces ------------------------------------------------------------------------------
    def _feed(self, f: Flow) -> None:
        """Give an unchoked connection its next piece, or park it idle."""
        u, j = f.up, f.down
        net = self.net
        endgame = self.free[j] == 0
        in_flight = {p: len(d.flows) for p, d in net.downloads[j].items()} if endgame else {}
        view = PickView(j, u, self.bits[u] & self.need[j], self.conns.rarity[j], self.n_pieces,
                        int(self.have[j]), self.partial[j], endgame, in_flight, self.bits[u])
        piece = self.picker.pick(view, self.rng_pick)
        if piece is None:
            self.idle_in[j][u] = f
            self.idle_out[u][j] = f
            return
        self.idle_in[j].pop(u, None)
        self.idle_out[u].pop(j, None)
        dl = net.downloads[j].get(piece)
        if dl is None:
            if not view.wanted[piece]:
                raise InvariantError(f"picker chose piece {piece} that peer {u} cannot give {j}")
            kept = self.partial[j].pop(piece, 0.0)
            dl = net.start(j, piece, int(self.piece_size[piece]), kept)
            self.busy[j, piece] = True
            self.need[j, piece] = False
            self.free[j] -= 1
            net.attach(f, dl)
            if self.free[j] == 0:
                self._retry_idle(j, None)  # endgame starts: idle connections may join
        elif endgame and self.bits[u, piece] and f not in dl.flows:
            net.attach(f, dl)
        else:
            raise InvariantError(f"picker chose piece {piece} already in flight for {j} outside endgame")

    def _retry_idle(self, j: int, piece: int | None) -> None:
        for f in list(self.idle_in[j].values()):
            if f.alive and f.dl is None and (piece is None or self.bits[f.up, piece]):
                self._feed(f)

    def _on_abandon(self, dl: Download, kept: float) -> None:
        j, p = dl.peer, dl.piece
        self.busy[j, p] = False
        if not self.online[j]:
            return
        self.need[j, p] = True
        self.free[j] += 1
        if kept > 0:
            self.partial[j][p] = kept
        self._retry_idle(j, p)

    def _on_download_done(self, dl: Download) -> None:
        self.events += 1
        j, p = dl.peer, dl.piece
        flows = list(dl.flows)
        src = flows[0]
        self.net.finish(dl)
        self.busy[j, p] = False
        self.conns.sent_pieces[src.up, src.s_up] += 1
        self.conns.pieces_recv[j, src.s_down] += 1
        self._got_piece(j, p, src.up)
        for f in flows:
            if f.alive and f.dl is None and self.online[f.down]:
                self._feed(f)
        self.net.reflow()

    def _got_piece(self, j: int, p: int, src: int) -> None:
        now = self.env.now
        self.bits[j, p] = True
        self.have[j] += 1
        self.copies[p] += 1
        self.recorder.piece(now, j, p, src)
        lost, gained = self.conns.got_piece(j, p, self.bits)
        net = self.net
        for w in lost.tolist():  # j lost interest in w: mainline rechokes w at once
            f = net.out_flows[w].get(j)
            if f is not None:
                self._close(f)
                self._request_rechoke(w)
        if gained.size and self.chokers[j].rechoke_on_interest:
            self._request_rechoke(j)
        for f in list(self.idle_out[j].values()):
            if f.alive and f.dl is None and self.need[f.down, p]:
                self._feed(f)
        if self.have[j] == self.n_pieces:
            self._became_seed(j)

    def _became_seed(self, j: int) -> None:
        now = self.env.now
        self.is_seed[j] = True
        self.complete_s[j] = now
        self.leechers -= 1
        self.seeds += 1
        fastest = (self.piece_size.sum() / self.down_bps[j]) * (1 - 1e-9)
        if now - self.join_s[j] < fastest:
            self._violation(f"peer {j} completed in {now - self.join_s[j]:.3f} s, faster than its "
                            f"download capacity allows ({fastest:.3f} s)")
        self.conns.became_seed(j)
        ids, slots, _ = self.conns.neighbours(j)
        for n, s in zip(ids.tolist(), slots.tolist(), strict=True):
            if self.is_seed[n]:  # seed-to-seed connections are useless; both sides drop them
                self._disconnect(j, s, n)
        self._schedule_departure(j)
        self._maybe_done()

    def _violation(self, message: str) -> None:
        self.violations.append(message)
        if self.check:
            raise InvariantError(message)

    # --- sampling ------------------------------------------------------------------------------
    def _on_sample(self, ev) -> None:
        self.events += 1
        self._sample_row()
        if self.check:
            from swarmsim.engine.invariants import check_invariants

            check_invariants(self, raise_on_failure=True)
        if self.progress is not None:
            self.progress(self.env.now)
        self._at(self.scenario.record.sample_every_s, self._on_sample, None)

    def _sample_row(self) -> None:
        now = self.env.now
        total = self.net.uploaded_integral()
        last_t, last_total = getattr(self, "_last_sample", (0.0, 0.0))
        rate = (total - last_total) / (now - last_t) if now > last_t else 0.0
        self._last_sample = (now, total)
        online = self.online
        cap = float(self.up_bps[online].sum())
        copies = self.copies
        self.recorder.sample((now, self.leechers, self.seeds, rate, cap,
                              int(copies.min()), float(copies.mean())))

    def flush_transfers(self) -> None:
        """Hand every open connection's byte and piece counts to the recorder (end of run)."""
        conns = self.conns
        for i in np.flatnonzero(self.online).tolist():
            ids, slots, _ = conns.neighbours(i)
            for j, s in zip(ids.tolist(), slots.tolist(), strict=True):
                self.recorder.transfer(j, i, conns.recv[i, s], int(conns.pieces_recv[i, s]))
