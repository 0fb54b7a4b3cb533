"""Strategic and alternative reciprocity, plus a no-reciprocity control.

Each comment names the paper the rule comes from; where a rule is per block and swarmsim
moves whole pieces, the docstring says how it is approximated.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from swarmsim.api import Unchoke
from swarmsim.api.views import ChokeView
from swarmsim.policies.choking import (
    CHOKERS,
    Choker,
    ChokerParams,
    Mainline,
    smallest_k,
    top_k,
)
from swarmsim.policies.choking_clients import SlotState


@CHOKERS.register("random")
class RandomChoker(Choker):
    """``unchoke_slots`` interested peers drawn at random every round: no reciprocity at all,
    the control against which incentive effects are measured."""

    Params = ChokerParams

    def rechoke(self, view: ChokeView, rng: np.random.Generator) -> Unchoke:
        keep = view.unchoked & view.interested
        if not view.periodic:
            return Unchoke(keep, None)
        salt = rng.random(view.nbr.shape)
        return Unchoke(smallest_k((salt,), view.interested, self.params.unchoke_slots), None)


class SeedsLikeMainline(Choker):
    """For reciprocity chokers: a seed has nothing to reciprocate and serves as mainline does."""

    def setup(self, n_peers: int, max_connections: int) -> None:
        p = self.params
        self.mainline = Mainline(
            Mainline.Params(interval_s=p.interval_s, unchoke_slots=p.unchoke_slots)
        )
        self.mainline.setup(n_peers, max_connections)

    def seeds_like_mainline(self, view: ChokeView, out: np.ndarray, rng) -> np.ndarray:
        if view.is_seed.any():
            seeds = np.flatnonzero(view.is_seed)
            out[seeds] = self.mainline.rechoke(view.take(seeds), rng).mask
        return out


@CHOKERS.register("bittyrant")
class BitTyrant(SeedsLikeMainline):
    """BitTyrant (Piatek et al., NSDI 2007), the strategic client.

    Per neighbour p: d_p, the download rate p gives us when it reciprocates, and u_p, the
    upload rate we think p needs to reciprocate. Each round, unchoke the interested peers in
    decreasing d_p / u_p until the sum of u_p would exceed our capacity, and send each p its
    u_p (flow weights). After a round: p did not reciprocate -> u_p *= 1 + delta (0.2);
    p reciprocated -> d_p = the rate observed; p reciprocated ``r`` (3) rounds running ->
    u_p *= 1 - gamma (0.1). No optimistic unchokes (as in the paper). Peers that never sent us
    anything are ranked with the prior ``initial_d_bps`` (the paper estimates it from the rate
    of p's HAVE messages; swarmsim uses the prior, so new peers are tried in prior order).
    """

    class Params(ChokerParams):
        initial_u_bps: float = Field(
            16000.0,
            gt=0,
            description="first guess of u_p (libtorrent's default_est_reciprocation_rate)",
        )
        initial_d_bps: float = Field(
            16000.0, gt=0, description="prior d_p for peers never observed"
        )
        delta: float = Field(0.2, ge=0)
        gamma: float = Field(0.1, ge=0, lt=1)
        r: int = Field(3, ge=1)

    def __init__(self, params: Params):
        super().__init__(params)
        self.state = SlotState()

    def setup(self, n_peers: int, max_connections: int) -> None:
        p = self.params
        self.state.setup(n_peers, max_connections, u=p.initial_u_bps, d=p.initial_d_bps, streak=0.0)
        super().setup(n_peers, max_connections)

    def rechoke(self, view: ChokeView, rng: np.random.Generator) -> Unchoke:
        p = self.params
        if view.is_seed.all():  # nothing to gain from reciprocity: behave like mainline
            return Unchoke(self.mainline.rechoke(view, rng).mask, None)
        st = self.state.rows(view)
        u, d, streak = st["u"], st["d"], st["streak"]
        interested = view.interested
        if not view.periodic:
            return Unchoke(np.where(view.unchoked & interested, u, 0.0), None)
        got = view.received_rate_bps(1)
        reciprocated = got > 0
        served = view.unchoked
        streak = np.where(reciprocated, streak + 1, 0.0)
        d = np.where(reciprocated, got, d)
        u = np.where(served & ~reciprocated, u * (1 + p.delta), u)
        u = np.where(served & (streak >= p.r), u * (1 - p.gamma), u)
        self.state.store(view, u=u, d=d, streak=streak)
        order = np.argsort(np.where(interested, -d / u, np.inf), axis=1, kind="stable")
        cost = np.take_along_axis(np.where(interested, u, 0.0), order, axis=1)
        fits = np.cumsum(cost, axis=1) <= view.upload_bps[:, None]
        fits[:, 0] = True  # always at least one
        chosen = np.zeros_like(interested)
        np.put_along_axis(
            chosen, order, fits & np.take_along_axis(interested, order, axis=1), axis=1
        )
        return Unchoke(self.seeds_like_mainline(view, np.where(chosen, u, 0.0), rng), None)


@CHOKERS.register("propshare")
class PropShare(SeedsLikeMainline):
    """PropShare (Levin et al., SIGCOMM 2008, "BitTorrent is an auction"): each round, split
    ``1 - optimistic_share`` of the upload among the peers that sent us data last round, in
    proportion to what each sent; the rest goes to ``optimistic_peers`` interested peers in
    rotation (``optimistic_share``, 10 % by default). With no
    contributor yet, the optimistic peers share everything. The paper pays every contributor;
    swarmsim pays the ``unchoke_slots`` largest (default 8), which keeps a peer's flows few.

    An optimistic peer keeps its slot for ``optimistic_rounds`` rounds (default 3: BitTorrent's
    30 s optimistic period, long enough for the peer to reciprocate, Cohen 2003) unless it
    becomes a contributor. With 1 the rotation moves every round, and since a contribution is
    only seen a round after it starts, two peers that take turns unchoking each other never
    overlap: in a flash crowd 95 % of a round's unchokes were new the next round.
    Seeds behave like mainline."""

    class Params(ChokerParams):
        unchoke_slots: int = Field(8, ge=1, description="contributors paid at most")
        optimistic_share: float = Field(0.1, gt=0, lt=1)
        optimistic_peers: int = Field(1, ge=1)
        optimistic_rounds: int = Field(
            3, ge=1, description="rounds an optimistic peer keeps its slot"
        )

    def __init__(self, params: Params):
        super().__init__(params)
        self.state = SlotState()

    def setup(self, n_peers: int, max_connections: int) -> None:
        self.state.setup(n_peers, max_connections, opt_round=-np.inf)
        super().setup(n_peers, max_connections)

    def rechoke(self, view: ChokeView, rng: np.random.Generator) -> Unchoke:
        p = self.params
        interested = view.interested
        if not view.periodic:  # between rounds the shares set at the last round hold
            return Unchoke(np.where(view.unchoked & interested, view.upload_share, 0.0), None)
        given = np.where(interested, view.received_bytes(1), 0.0)
        contrib = top_k(given, view.connected_s, interested & (given > 0), p.unchoke_slots)
        given = np.where(contrib, given, 0.0)
        total = given.sum(axis=1, keepdims=True)
        opt_round = self.state.rows(view)["opt_round"]
        rnd = view.round[:, None]
        candidates = interested & ~contrib
        held = candidates & view.unchoked & (rnd - opt_round < p.optimistic_rounds)
        fresh = smallest_k(  # longest since unchoked first: a rotation
            (view.last_unchoked_s,),
            candidates & ~held,
            np.maximum(p.optimistic_peers - held.sum(axis=1), 0),
        )
        opt = held | fresh
        self.state.store(view, opt_round=np.where(fresh, rnd, np.where(opt, opt_round, -np.inf)))
        n_opt = np.maximum(opt.sum(axis=1, keepdims=True), 1)
        share_opt = np.where(total > 0, p.optimistic_share, 1.0) / n_opt
        out = np.where(contrib, (1 - p.optimistic_share) * given / np.maximum(total, 1e-12), 0.0)
        return Unchoke(self.seeds_like_mainline(view, np.where(opt, share_opt, out), rng), None)


@CHOKERS.register("block_tft")
class BlockTFT(Mainline):
    """Block-level tit-for-tat (Bharambe, Herley, Padmanabhan, INFOCOM 2006): mainline's
    choker, but a leecher uploads to a neighbour only while the bytes it sent exceed the bytes
    it received by at most ``delta_blocks`` blocks. Checked after every piece sent (swarmsim
    moves whole pieces, so a peer can overshoot by up to one piece before it is choked): the
    connection is choked at once, and the freed slot is re-ranked at the next 1 s tick
    together with every other peer's (libtorrent's choker granularity), not piece by piece."""

    choke_after_piece = True
    after_piece_at_tick = True

    class Params(Mainline.Params):
        delta_blocks: int = Field(2, ge=0, description="allowed lead in 16 KiB blocks")
        block_bytes: int = Field(16384, gt=0)

    def rechoke_after_piece(self, sent_bytes: float, received_bytes: float) -> bool:
        return sent_bytes - received_bytes > self.params.delta_blocks * self.params.block_bytes

    def rechoke(self, view: ChokeView, rng: np.random.Generator) -> Unchoke:
        p = self.params
        lead = view.sent_total_bytes() - view.received_total_bytes()
        return self._rechoke(view, rng, lead <= p.delta_blocks * p.block_bytes)


@CHOKERS.register("fairtorrent")
class FairTorrent(Choker):
    """FairTorrent (Sherman, Nieh, Stein, CoNEXT 2009): deficit_j = bytes sent to j - bytes
    received from j (0 for a new peer); the next upload goes to the interested peer with the
    lowest deficit. No rate measurement, no optimistic unchokes: new peers get served because
    their deficit starts at 0. swarmsim serves the ``unchoke_slots`` lowest-deficit peers at
    once (one would leave the upload idle whenever that peer's download is the bottleneck)
    and, after a piece that leaves a peer owing us, swaps at most one of them for a lower-
    deficit peer, as sending the next block to the lowest deficit would. That decision runs
    at the next 1 s tick, batched with every other peer's (libtorrent's choker granularity;
    a 256 KiB piece takes 1.7 s even on a fibre peer's four slots), so pieces sent within
    one tick share one swap. Seeds have nothing to balance and serve the least-served peers
    first."""

    after_piece_at_tick = True

    class Params(ChokerParams):
        unchoke_slots: int = Field(4, ge=1, description="peers served at once")

    def rechoke_after_piece(self, sent_bytes: float, received_bytes: float) -> bool:
        return sent_bytes > received_bytes

    def rechoke(self, view: ChokeView, rng: np.random.Generator) -> Unchoke:
        deficit = view.sent_total_bytes() - np.where(
            view.is_seed[:, None], 0.0, view.received_total_bytes()
        )
        interested = view.interested
        best = top_k(-deficit, view.connected_s, interested, self.params.unchoke_slots)
        if view.periodic:
            return Unchoke(best, None)
        keep = view.unchoked & interested
        rows = np.arange(len(view.peers))
        waiting = best & ~keep
        worst = np.argmax(np.where(keep, deficit, -np.inf), axis=1)
        first = np.argmin(np.where(waiting, deficit, np.inf), axis=1)
        room = keep.sum(axis=1) < self.params.unchoke_slots
        better = waiting.any(axis=1) & (room | (deficit[rows, first] < deficit[rows, worst]))
        out = keep.copy()
        drop = better & ~room
        out[rows[drop], worst[drop]] = False
        out[rows[better], first[better]] = True
        return Unchoke(out, None)
