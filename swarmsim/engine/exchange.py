"""Choking and piece exchange: the part of the swarm that runs at every rechoke and piece.

Interest is not stored: "``j`` wants something ``u`` has" is one AND-NOT over packed
bitfields (``words_t``), computed for a whole neighbourhood at a rechoke and for one pair when a
connection runs out of pieces to fetch. A finished piece costs O(degree) numpy work (the HAVE
to the neighbours' rarity counts) plus the next pick; a flow that goes on to its next piece
keeps its rate, so the common case re-rates nothing.
"""

from __future__ import annotations

import numpy as np

from swarmsim.api.views import PickView
from swarmsim.engine.chokeview import SwarmChokeView
from swarmsim.engine.network import Download, Flow
from swarmsim.engine.pieces import BIT
from swarmsim.errors import PluginError

# libtorrent leaves slow start at a second tick once an unchoked connection's rate stops
# growing: a steady flow's second full second (peer_connection::second_tick)
SLOW_START_S = 2.0


class Exchange:
    """Mixin of ``Swarm``: rechokes applied, piece picks, piece completions (the timers are
    ``RechokeTimers``, the piece state ``PieceState``)."""

    # --- choking ---------------------------------------------------------------------------
    def _on_periodic_batch(self, key) -> None:
        peers = self.timers.take_periodic(key, self.online)
        if peers.size == 0:
            return
        self.events += 1
        self.rounds[peers] += 1
        self._rechoke(peers, periodic=True)
        for u in peers.tolist():
            if not self.timers.has_periodic(u):  # its choker keeps no timers of its own
                self.timers.periodic(u, self.chokers[u].interval_s)
            if self.pieces.is_seed[u] and self.online[u] and self._done_seeding(u):
                self._leave(u)
        self._maybe_done()
        self.net.reflow()

    def _lost_unchoked(self, f: Flow) -> None:
        """The peer ``f.up`` unchoked left or lost interest: mainline rechokes at once
        (``connection_lost``, ``not_interested``), libtorrent at its next tick; the choker
        sees the slot in ``view.lost_unchoked``."""
        u = f.up
        self.conns.lost_unchoke[u, f.s_up] = True
        if self.events_at_tick[u]:
            self.timers.next_tick(u)
        else:
            self.timers.soon(u)

    def _on_event_rechoke(self, batch: set[int] | None) -> None:
        peers = self.timers.take_events(batch, self.online)
        if peers.size == 0:
            return
        self.events += 1
        self._rechoke(peers, periodic=False)
        if batch is None and self._fast_after_rechoke:
            offers, self._fast_after_rechoke = self._fast_after_rechoke, []
            for u, j in offers:
                if self.online[u] and j in self.conns.nbr_sets[u]:
                    self._offer_fast(u, j)
        self.net.reflow()

    def _rechoke(self, peers: np.ndarray, periodic: bool) -> None:
        """Ask each peer's choker (vectorised per choker) and apply what changed. A choker
        answers with an ``Unchoke``: a boolean mask or weights (> 0 = unchoked, the value its
        share of the peer's upload) and its optimistic set, which the incentive leaves be."""
        conns, net, now = self.conns, self.net, self.clock.now
        was = conns.unchoked[peers]
        weights = np.zeros(was.shape)
        # free-riders never unchoke; nor do scrip agents whose wealth reached their target
        able = (self.up_bps[peers] > 0.0) & (conns.deg[peers] > 0) & self.economy.serving(peers)
        kinds = self.choker_of[peers]
        groups = [0] if len(self.choker_objs) == 1 else np.unique(kinds[able]).tolist()
        for k in groups:
            rows = (
                np.flatnonzero(able & (kinds == k))
                if len(groups) > 1 or not able.all()
                else np.arange(len(peers))
            )
            view = SwarmChokeView(self, peers[rows], periodic)
            choker = self.choker_objs[k]
            decision = choker.rechoke(view, self.rng_choke)
            _check_unchoke(choker, view, decision.mask, now)
            out = np.asarray(self.economy.adjust(view, decision.mask, decision.optimistic))
            _check_unchoke(self.economy.incentive, view, out, now)
            weights[rows] = out
            due = choker.next_round_s(view.peers)
            if due is not None:  # the choker keeps its own timers
                for u, t in zip(view.peers.tolist(), due.tolist(), strict=True):
                    self.timers.periodic(u, t - now if t > now else self.tick_s)
        conns.lost_unchoke[peers] = False  # told to the chokers that rechoked now
        new = weights > 0
        reweighted = new & was & (weights != conns.share[peers])
        conns.share[peers] = weights
        rows, slots = np.nonzero((was != new) | reweighted)
        ups = peers[rows]
        changed = zip(  # plain Python values: the loop runs once per choke or unchoke
            ups.tolist(),
            slots.tolist(),
            conns.nb[ups, slots].tolist(),
            conns.rev[ups, slots].tolist(),
            was[rows, slots].tolist(),
            weights[rows, slots].tolist(),
            strict=True,
        )
        for u, s, j, rev, was_on, w in changed:
            if was_on and not w > 0.0:
                f = net.out_flows[u].get(j)
                if f is not None:
                    self._close(f)
                if self.fast_k[u]:
                    self._offer_fast(u, j, s, rev)
            elif not was_on:
                if not conns.unchoked[u, s]:
                    conns.unchoked[u, s] = True
                    conns.last_unchoke[u, s] = now
                    conns.sent_pieces[u, s] = 0
                    f = net.out_flows[u].get(j)
                    if f is None:
                        self._feed(net.open_flow(u, j, s, rev, w))
                    else:  # it served j's allowed-fast pieces: now it serves j in full
                        f.fast = False
                        f.t0 = now
                        net.reweight(f, w)
                        if f.dl is None:
                            self._feed(f)
            else:
                f = net.out_flows[u].get(j)
                if f is not None:
                    net.reweight(f, w)
        if periodic:
            r = (self.rounds[peers] % self.rounds_kept)[:, None]
            cols = np.arange(conns.max_conn)[None, :]
            p = peers[:, None]
            conns.snap_recv[p, cols, r] = conns.recv[peers] + conns.rate_in[peers] * (
                now - conns.t_in[peers]
            )
            conns.snap_sent[p, cols, r] = conns.sent[peers] + conns.rate_out[peers] * (
                now - conns.t_out[peers]
            )
            self.snap_t[peers, r[:, 0]] = now

    def _close(self, f: Flow, keep_partial: bool = True) -> None:
        """End a flow: a choke drops the pieces reserved on it (libtorrent's
        ``clear_request_queue`` and the uploader's rejects) and cuts the one in flight."""
        self.conns.unchoked[f.up, f.s_up] = False
        self.conns.share[f.up, f.s_up] = 0.0
        self.idle_in[f.down].pop(f.up, None)
        self.idle_out[f.up].pop(f.down, None)
        released = self._release_queue(f)
        self.net.close_flow(f, keep_partial)
        if self.request_on_have:
            for piece in released:
                if self.idle_in[f.down]:
                    self._retry_idle(f.down, piece)

    def _lost_interest(self, f: Flow) -> None:
        """The downloader wants nothing more from the uploader: ``not_interested`` from an
        unchoked peer, which makes the uploader rechoke; a peer fetching its allowed-fast
        pieces just stops."""
        if f.dl is not None:
            self.net.release(f)
        unchoked = not f.fast
        self._close(f)
        if unchoked:
            self._lost_unchoked(f)

    # --- allowed fast (BEP 6) ----------------------------------------------------------------
    def _fast_has(self, u: int, j: int) -> np.ndarray:
        """What ``u`` offers ``j`` while it chokes ``j``: its pieces in ``j``'s allowed-fast set."""
        allowed = self.allowed_fast.pieces(j, self.fast_k[u])
        has = np.zeros(self.pieces.n_pieces, dtype=bool)
        has[allowed] = self.pieces.bits[u, allowed]
        return has

    def _fast_wants(self, u: int, j: int) -> bool:
        """``u`` has an allowed-fast piece of ``j`` that ``j`` could request now (neither
        held nor being fetched): else libtorrent's ``request_a_block`` finds nothing."""
        allowed = self.allowed_fast.pieces(j, self.fast_k[u])
        return bool((self.pieces.bits[u, allowed] & self.pieces.need[j, allowed]).any())

    def _offer_fast(self, u: int, j: int, s_u: int | None = None, s_j: int | None = None) -> None:
        """``u`` chokes interested ``j``: ``j`` requests its allowed-fast pieces that ``u`` has
        (libtorrent sends the set on ``j``'s first INTERESTED, never to a seed)."""
        if (
            not self.fast_k[u]
            or not self.fast_k[j]  # a client that offers no allowed-fast set has no BEP 6
            or self.pieces.is_seed[j]
            or not self.online[j]
            or self.up_bps[u] <= 0.0
            or j in self.net.out_flows[u]
            or not self._fast_wants(u, j)
        ):
            return
        if s_u is None:
            s_u = int(np.flatnonzero(self.conns.nb[u] == j)[0])
            s_j = int(self.conns.rev[u, s_u])
        self._feed(self.net.open_flow(u, j, s_u, s_j, 1.0, fast=True))

    def _offer_fast_piece(self, u: int, piece: int) -> None:
        """``u`` announced ``piece``. A choked peer asks a connection for allowed-fast pieces
        only when that connection becomes interesting (libtorrent ``peer_is_interesting``),
        after a block arrives on it, or after a reject: so the HAVE makes ``j`` request
        ``piece`` only if ``u`` had nothing else ``j`` lacks."""
        ids, slots, rev = self.conns.neighbours(u)
        if not ids.size:
            return
        sets = self.allowed_fast.matrix[ids, : self.fast_k[u]]
        hit = (
            (sets == piece).any(axis=1)
            & self.pieces.need[ids, piece]
            & ~self.conns.unchoked[u, slots]
        )
        if not hit.any():
            return
        b = np.flatnonzero(hit)
        lacks = self.pieces.words_t[:, u][:, None] & ~self.pieces.words_t[:, ids[b]]
        lacks[piece >> 6] &= ~BIT[piece & 63]
        for k in b[~lacks.any(axis=0)].tolist():
            self._offer_fast(u, int(ids[k]), int(slots[k]), int(rev[k]))

    def _reask_fast(self, j: int, piece: int) -> None:
        """``j`` completed ``piece``: every uploader that has it too is asked again
        (``torrent::we_have`` -> ``update_interest`` -> ``peer_is_interesting``); one that
        chokes ``j`` for ``j``'s allowed-fast pieces."""
        allowed = self.allowed_fast.pieces(j, self.allowed_fast.matrix.shape[1])
        fetchable = allowed[self.pieces.need[j, allowed]]
        if not fetchable.size:
            return
        ids, slots, rev = self.conns.neighbours(j)
        if not ids.size:
            return
        ask = self.pieces.bits[ids, piece] & ~self.conns.unchoked[ids, rev]
        ask &= self.pieces.bits[ids[:, None], fetchable[None, :]].any(axis=1)
        out = self.net.out_flows
        for b in np.flatnonzero(ask).tolist():
            u = int(ids[b])
            if j not in out[u]:
                self._offer_fast(u, j, int(rev[b]), int(slots[b]))

    # --- pipelines ---------------------------------------------------------------------------
    def _reserve(self, f: Flow, piece: int, wanted: np.ndarray) -> None:
        """The downloader commits ``piece`` to this connection (a request queued ahead)."""
        j = f.down
        if not wanted[piece]:
            raise PluginError(
                f"{self.picker} reserved piece {piece} that peer {f.up} cannot give {j}",
                self.clock.now,
            )
        wanted[piece] = False
        self.pieces.claim(j, piece)
        f.queue.append(piece)
        self.reserved[j][piece] = f

    def _release_queue(self, f: Flow) -> list[int]:
        j = f.down
        released = f.queue
        if not released:
            return released
        f.queue = []
        reserved = self.reserved[j]
        for piece in released:
            del reserved[piece]
        self.pieces.unclaim(j, released, bool(self.online[j]))
        return released

    # --- pieces ----------------------------------------------------------------------------
    def _feed(self, f: Flow) -> None:
        """Give a connection its next piece (from its pipeline or a new pick) and let the
        picker reserve more ahead; park it idle, or close it, if there is nothing to fetch."""
        u, j = f.up, f.down
        net = self.net
        has = self._fast_has(u, j) if f.fast else self.pieces.bits[u]
        wanted = has & self.pieces.need[j]
        endgame = self.pieces.free[j] == 0
        in_flight = {}
        if endgame:  # pieces being fetched, or reserved on another connection (0 sources)
            in_flight = {p: len(d.flows) for p, d in net.downloads[j].items()}
            for p, g in self.reserved[j].items():
                if g is not f:
                    in_flight.setdefault(p, 0)
        queued_bytes, rate, shared, received, slow = 0.0, 0.0, None, 0.0, False
        if self.pipelined:
            sizes = self.pieces.piece_sizes
            queued_bytes = float(sum(sizes[p] for p in f.queue))
            rate = net.rate_estimate(f.i_in)
            received = float(net.recv_f[f.i_in])
            slow = self.conns.slow_start[j, f.s_down]
            if slow and not f.fast and self.clock.now - f.t0 >= SLOW_START_S:
                slow = self.conns.slow_start[j, f.s_down] = False
            shared = {
                p: len(d.flows)
                for p, d in net.downloads[j].items()
                if d.shared and has[p] and f not in d.flows
            }
        view = PickView(
            j,
            u,
            wanted,
            self.conns.rarity[j],
            self.pieces.n_pieces,
            self.pieces.have[j],
            self.pieces.partial[j],
            endgame,
            in_flight,
            has,
            queued_bytes=queued_bytes,
            rate_bps=rate,
            shared=shared,
            piece_bytes=self.scenario.torrent.piece_bytes,
            block_bytes=self.scenario.torrent.block_bytes,
            received_bytes=received,
            slow_start=bool(slow),
        )
        piece = self.picker.pick(view, self.rng_pick)
        idle_in = self.idle_in[j]
        endgame_starts = False
        if isinstance(piece, list):
            for p in piece:
                self._reserve(f, p, wanted)
            endgame_starts = bool(piece) and self.pieces.free[j] == 0
            piece = None
        if piece is None and f.queue:  # the connection's next reserved piece
            piece = f.queue.pop(0)
            del self.reserved[j][piece]
            if idle_in:
                idle_in.pop(u, None)
                self.idle_out[u].pop(j, None)
            self._begin(f, piece, shared=False)
            if endgame_starts and idle_in:
                self._retry_idle(j, None)  # idle connections may join in
            return
        if piece is None:
            if f.fast or not self.pieces.wants(j, u):
                # a choked peer's connection that finds no allowed-fast piece to request goes
                # quiet until something makes it request again (_offer_fast_piece,
                # _reask_fast, a choke)
                self._lost_interest(f)
                return
            if f.dl is not None:
                net.release(f)
            idle_in[u] = f
            self.idle_out[u][j] = f
            return
        if idle_in:
            idle_in.pop(u, None)
            self.idle_out[u].pop(j, None)
        dl = net.downloads[j].get(piece)
        if dl is None and piece in self.reserved[j]:  # endgame: take it off another connection
            g = self.reserved[j].pop(piece)
            g.queue.remove(piece)
            if f.dl is not None:
                net.release(f)
            self._begin(f, piece, shared=False)
        elif dl is None:
            if not wanted[piece]:
                raise PluginError(
                    f"{self.picker} chose piece {piece} that peer {u} cannot give {j}",
                    self.clock.now,
                )
            self.pieces.claim(j, piece)
            self._begin(f, piece, shared=self.pipelined)
            if idle_in and self.pieces.free[j] == 0:
                self._retry_idle(j, None)  # endgame starts: idle connections may join in
        elif (endgame or dl.shared) and has[piece] and f not in dl.flows:
            if f.dl is not None and f.dl is not dl:
                net.release(f)
            net.assign(f, dl)
        else:
            raise PluginError(
                f"{self.picker} chose piece {piece}, already in flight for peer {j}, "
                "outside endgame",
                self.clock.now,
            )

    def _begin(self, f: Flow, piece: int, shared: bool) -> None:
        """Start fetching ``piece`` over ``f``, from the blocks a choke left of it, if any."""
        j = f.down
        kept = self.pieces.resume(j, piece)
        self.net.assign(f, self.net.start(j, piece, self.pieces.piece_sizes[piece], kept, shared))

    def _retry_idle(self, j: int, piece: int | None) -> None:
        for f in list(self.idle_in[j].values()):
            if f.alive and f.dl is None and (piece is None or self.pieces.bits[f.up, piece]):
                self._feed(f)

    def _on_abandon(self, dl: Download, kept: float) -> None:
        j, p = dl.peer, dl.piece
        online = bool(self.online[j])
        self.pieces.abandon(j, p, kept, online)
        if not online:
            return
        if self.idle_in[j] and self.request_on_have:
            self._retry_idle(j, p)

    def _on_download_done(self, dl: Download) -> None:
        self.events += 1
        j, p = dl.peer, dl.piece
        flows = self.net.complete(dl)
        src = flows[0]
        self.pieces.arrived(j, p)
        conns = self.conns
        conns.sent_pieces[src.up, src.s_up] += 1
        conns.pieces_recv[j, src.s_down] += 1
        self.economy.on_piece(src.up, j, dl.size, self.clock.now - dl.start)
        u = src.up
        cut = None
        if self.after_piece[u] and not self.pieces.is_seed[u]:  # block-level reciprocity, per piece
            su = src.s_up
            choker = self.chokers[u]
            if choker.rechoke_after_piece(conns.sent[u, su], conns.recv[u, su]):
                if choker.choke_after_piece:  # stop serving j now
                    cut = src
                if choker.after_piece_at_tick:
                    self.timers.next_tick(u)
                else:
                    self.timers.soon(u)
        self._got_piece(j, p, src.up)
        for f in flows:
            if f.alive and f.dl is dl:
                if f is cut:
                    self._close(f)
                else:
                    self._feed(f)
        self.net.reflow()

    def _got_piece(self, j: int, p: int, src: int) -> None:
        complete = self.pieces.add(j, p)
        self.recorder.piece(self.clock.now, j, p, src)
        self.conns.got_piece(j, p)
        if self.idle_in[j]:  # connections parked for want of free pieces may be useless now
            idle = list(self.idle_in[j].values())
            for f, wanted in zip(
                idle, self.pieces.wants_from(j, [f.up for f in idle]), strict=True
            ):
                if not f.alive:
                    continue
                if not wanted:
                    self._lost_interest(f)
                elif not self.request_on_have and f.dl is None and self.pieces.bits[f.up, p]:
                    # libtorrent (torrent::we_have -> update_interest): a new piece of ours
                    # that the uploader has too makes its idle connection ask again
                    self._feed(f)
        if self.idle_out[j] and self.request_on_have:  # parked for want of pieces we now have
            for f in list(self.idle_out[j].values()):
                if f.alive and f.dl is None and self.pieces.need[f.down, p]:
                    self._feed(f)
        if self.on_interest[j] and self.chokers[j].has_free_slot(
            j, int(self.conns.unchoked[j].sum())
        ):
            self.timers.soon(j)  # libtorrent: a newly interested peer takes a free slot
        if self.fast_k[j]:
            self._offer_fast_piece(j, p)
            self._reask_fast(j, p)
        if complete:
            self._became_seed(j)

    def _became_seed(self, j: int) -> None:
        now = self.clock.now
        self.pieces.mark_seed(j)
        self.complete_s[j] = now
        self.leechers -= 1
        self.seeds += 1
        fastest = (self.pieces.piece_size.sum() / self.down_bps[j]) * (1 - 1e-9)
        if now - self.join_s[j] < fastest:
            self._violation(
                f"peer {j} completed in {now - self.join_s[j]:.3f} s, faster than its "
                f"download capacity allows ({fastest:.3f} s)"
            )
        self.conns.became_seed(j)
        ids, slots, _ = self.conns.neighbours(j)
        for n, s in zip(ids.tolist(), slots.tolist(), strict=True):
            if self.pieces.is_seed[
                n
            ]:  # seed-to-seed connections carry nothing; both sides drop them
                self._disconnect(j, s, n)
        self._schedule_departure(j)
        self._maybe_done()


def _check_unchoke(plugin, view, out: np.ndarray, now: float) -> None:
    """A choker's (or incentive's) answer must be a (B, C) mask or non-negative weights
    within the interested peers."""
    if out.shape != view.nbr.shape:
        raise PluginError(
            f"{plugin} answered a {out.shape} array for a batch of shape {view.nbr.shape} "
            "(rows: the rechoking peers, columns: their connection slots)",
            now,
        )
    if (out.dtype != bool and (out < 0).any()) or ((out > 0) & ~view.interested).any():
        raise PluginError(
            f"{plugin} unchoked slots that are free or hold uninterested peers, or gave a "
            f"negative weight (peers {view.peers.tolist()[:5]})",
            now,
        )
