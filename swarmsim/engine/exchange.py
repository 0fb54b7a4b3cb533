"""Choking and piece exchange: the part of the swarm that runs at every rechoke and piece.

Interest is not stored: "``j`` wants something ``u`` has" is one AND-NOT over packed
bitfields (``words``), computed for a whole neighbourhood at a rechoke and for one pair when a
connection runs out of pieces to fetch. A finished piece costs O(degree) numpy work (the HAVE
to the neighbours' rarity counts) plus the next pick; a flow that goes on to its next piece
keeps its rate, so the common case re-rates nothing.
"""

from __future__ import annotations

import numpy as np

from swarmsim.engine.chokeview import SwarmChokeView
from swarmsim.engine.network import Download, Flow
from swarmsim.engine.views import PickView
from swarmsim.errors import InvariantError

BIT = np.array([1 << k for k in range(64)], dtype=np.uint64)


class Exchange:
    """Mixin of ``Swarm``: rechokes, piece picks, piece completions."""

    # --- interest --------------------------------------------------------------------------
    def interest_in(self, u: int, ids: np.ndarray) -> np.ndarray:
        """Which of ``ids`` want a piece that ``u`` has."""
        w = self.words
        return (w[u] & ~w[ids]).any(axis=1)

    def wants(self, j: int, u: int) -> bool:
        w = self.words
        return bool((w[u] & ~w[j]).any())

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

    def _request_rechoke(self, u: int) -> None:
        """Coalesce event-driven rechokes of ``u`` into one, run after the current event."""
        if u not in self._rechoke_pending:
            self._rechoke_pending.add(u)
            self._at(0.0, self._on_event_rechoke, u)

    def _rechoke(self, u: int, periodic: bool) -> None:
        conns = self.conns
        ids, slots, revs = conns.neighbours(u)
        was = conns.unchoked[u][slots]
        new = np.zeros(ids.size, dtype=bool)
        if self.up_bps[u] > 0.0 and ids.size:
            view = SwarmChokeView(self, u, periodic, ids, slots)
            rows = np.asarray(self.chokers[u].rechoke(view, self.rng_choke), dtype=np.int64)
            new[rows] = True
            if new.sum() != rows.size or (new & ~view.interested).any():
                raise InvariantError(
                    f"choker {type(self.chokers[u]).__name__} of peer {u} chose rows "
                    f"{rows.tolist()}: not distinct rows of interested neighbours"
                )
        net, now = self.net, self.env.now
        for k in np.flatnonzero(was & ~new).tolist():
            self._close(net.out_flows[u][int(ids[k])])
        for k in np.flatnonzero(new & ~was).tolist():
            s = int(slots[k])
            conns.unchoked[u, s] = True
            conns.last_unchoke[u, s] = now
            conns.sent_pieces[u, s] = 0
            self._feed(net.open_flow(u, int(ids[k]), s, int(revs[k])))
        if periodic:
            r = self.rounds[u] % self.rounds_kept
            conns.snap_recv[u, slots, r] = conns.received_now(u, slots, now)
            conns.snap_sent[u, slots, r] = conns.sent_now(u, slots, now)
            self.snap_t[u, r] = now

    def _close(self, f: Flow, keep_partial: bool = True) -> None:
        self.conns.unchoked[f.up, f.s_up] = False
        self.idle_in[f.down].pop(f.up, None)
        self.idle_out[f.up].pop(f.down, None)
        self.net.close_flow(f, keep_partial)

    def _lost_interest(self, f: Flow) -> None:
        """The downloader wants nothing more from the uploader: mainline's ``not_interested``
        from an unchoked peer, which makes the uploader rechoke at once."""
        if f.dl is not None:
            self.net.release(f)
        self._close(f)
        self._request_rechoke(f.up)

    # --- pieces ----------------------------------------------------------------------------
    def _feed(self, f: Flow) -> None:
        """Give an unchoked connection its next piece; park it idle or close it if none."""
        u, j = f.up, f.down
        net = self.net
        endgame = self.free[j] == 0
        in_flight = {p: len(d.flows) for p, d in net.downloads[j].items()} if endgame else {}
        view = PickView(
            j,
            u,
            self.bits[u] & self.need[j],
            self.conns.rarity[j],
            self.n_pieces,
            int(self.have[j]),
            self.partial[j],
            endgame,
            in_flight,
            self.bits[u],
        )
        piece = self.picker.pick(view, self.rng_pick)
        if piece is None:
            if not self.wants(j, u):
                self._lost_interest(f)
                return
            if f.dl is not None:
                net.release(f)
            self.idle_in[j][u] = f
            self.idle_out[u][j] = f
            return
        if self.idle_in[j]:
            self.idle_in[j].pop(u, None)
            self.idle_out[u].pop(j, None)
        dl = net.downloads[j].get(piece)
        if dl is None:
            if not view.wanted[piece]:
                raise InvariantError(f"picker chose piece {piece} that peer {u} cannot give {j}")
            kept = self.partial[j].pop(piece, 0.0) if self.partial[j] else 0.0
            dl = net.start(j, piece, int(self.piece_size[piece]), kept)
            self.busy[j, piece] = True
            self.need[j, piece] = False
            self.free[j] -= 1
            net.assign(f, dl)
            if self.free[j] == 0 and self.idle_in[j]:
                self._retry_idle(j, None)  # endgame starts: idle connections may join in
        elif endgame and self.bits[u, piece] and f not in dl.flows:
            if f.dl is not None and f.dl is not dl:
                net.release(f)
            net.assign(f, dl)
        else:
            raise InvariantError(
                f"picker chose piece {piece}, already in flight for peer {j}, outside endgame"
            )

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
        if self.idle_in[j]:
            self._retry_idle(j, p)

    def _on_download_done(self, dl: Download) -> None:
        self.events += 1
        j, p = dl.peer, dl.piece
        flows = self.net.complete(dl)
        src = flows[0]
        self.busy[j, p] = False
        self.conns.sent_pieces[src.up, src.s_up] += 1
        self.conns.pieces_recv[j, src.s_down] += 1
        self._got_piece(j, p, src.up)
        for f in flows:
            if f.alive and f.dl is dl:
                self._feed(f)
        self.net.reflow()

    def _got_piece(self, j: int, p: int, src: int) -> None:
        self.bits[j, p] = True
        self.words[j, p >> 6] |= BIT[p & 63]
        self.have[j] += 1
        self.copies[p] += 1
        self.recorder.piece(self.env.now, j, p, src)
        self.conns.got_piece(j, p)
        if self.idle_in[j]:  # connections parked for want of free pieces may be useless now
            for f in list(self.idle_in[j].values()):
                if f.alive and not self.wants(j, f.up):
                    self._lost_interest(f)
        if self.idle_out[j]:  # connections parked for want of pieces we now have
            for f in list(self.idle_out[j].values()):
                if f.alive and f.dl is None and self.need[f.down, p]:
                    self._feed(f)
        if self.chokers[j].rechoke_on_interest:
            self._request_rechoke(j)
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
            self._violation(
                f"peer {j} completed in {now - self.join_s[j]:.3f} s, faster than its "
                f"download capacity allows ({fastest:.3f} s)"
            )
        self.conns.became_seed(j)
        ids, slots, _ = self.conns.neighbours(j)
        for n, s in zip(ids.tolist(), slots.tolist(), strict=True):
            if self.is_seed[n]:  # seed-to-seed connections carry nothing; both sides drop them
                self._disconnect(j, s, n)
        self._schedule_departure(j)
        self._maybe_done()
