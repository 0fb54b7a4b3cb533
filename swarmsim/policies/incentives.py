"""Token incentive policies: what moves when a piece is delivered, at intervals, and who gets
served. Each policy works on the ``Ledger`` (a plain object, no SimPy) and, through
``adjust``, on the unchoke mask the peer's choker proposed. Each docstring names the design
and the rule it follows.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from swarmsim.api import ChokeView, Incentive
from swarmsim.api.tables import Rows, Table, declare
from swarmsim.ledger import MINT, Ledger
from swarmsim.policies.choking import smallest_k
from swarmsim.registry import Registry

INCENTIVES = Registry("incentive", "how tokens move and who gets served")
MiB = 1024 * 1024


@dataclass
class IncentiveContext:
    """What a policy may read about the swarm (arrays are live, read-only), and ``rows``,
    which hands out the row buffer of a table the policy declared (written with the run)."""

    ledger: Ledger
    rows: Callable[[Table], Rows]
    file_bytes: int
    piece_bytes: int
    online: np.ndarray
    is_seed: np.ndarray
    have: np.ndarray
    uploaded: np.ndarray  # payload bytes each peer really uploaded
    downloaded: np.ndarray
    group: np.ndarray  # collusion group id per peer, -1 = none
    self_dealing_bps: np.ndarray  # fake upload claimed per second inside the group


class IncentiveParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    credit_tokens: float = Field(0.0, ge=0, description="how far a balance may go below 0")


class BaseIncentive(Incentive):
    """The built-in policies' frame: their shared parameters (``credit_tokens``) and the
    fake uploads of colluding identities."""

    Params = IncentiveParams

    def claimed_uploads(self, dt: float) -> np.ndarray:
        """Fake uploads colluding identities claim to each other over ``dt`` (bytes)."""
        c = self.ctx
        return np.where(c.online & (c.group >= 0), c.self_dealing_bps * dt, 0.0)


@INCENTIVES.register("none")
class NoIncentive(BaseIncentive):
    """Plain BitTorrent: no tokens move."""

    active = False


def uniform_price_auction(bids: np.ndarray, eligible: np.ndarray, k: int, tie: np.ndarray):
    """Multi-unit uniform-price auction per row: the ``k`` highest eligible bids win (ties to
    the larger ``tie``), each winner pays the highest losing bid (the (k+1)-th bid, 0 if
    there is none). Returns (winners mask, price per row)."""
    score = np.where(eligible, bids, -np.inf)
    order = np.lexsort((-tie, -score), axis=1)
    ranked = np.take_along_axis(score, order, axis=1)
    n = eligible.sum(axis=1)
    take = np.arange(score.shape[1])[None, :] < np.minimum(n, k)[:, None]
    winners = np.zeros_like(eligible)
    np.put_along_axis(winners, order, take, axis=1)
    price = np.where(
        n > k, ranked[:, min(k, score.shape[1] - 1)] if score.shape[1] > k else 0.0, 0.0
    )
    return winners, np.maximum(price, 0.0)


AUCTIONS = declare(
    "auctions",
    {
        "t_s": "float64",
        "provider": "int32",
        "bidders": "int32",
        "winners": "int32",
        "price_per_byte": "float64",
    },
    "provider's auction (bid)",
)


@INCENTIVES.register("bid")
class Bid(BaseIncentive):
    """BitTorrent Speed (BitTorrent Token white paper v0.8.7): requesters bid tokens per byte;
    at each rechoke round a provider sells ``paid_slots`` upload slots by a uniform-price
    auction, every winner paying the highest losing bid, per byte, when each piece completes
    (payment channels settle per piece); winners hold their slots until the next round, event
    rechokes included. Optimistic slots are not auctioned: the slots left keep the choker's
    picks, its optimistic unchokes first. Automatic bidding: bid = spending_rate x balance /
    remaining bytes, re-bid only when it moved by more than ``rebid_change``. A wallet that
    runs dry pays what it has and then bids 0. With no tokens anywhere nobody bids, and the
    run is exactly the ``none`` run."""

    reasons = ("bid",)

    class Params(IncentiveParams):
        spending_rate: float = Field(1.0, gt=0)
        rebid_change: float = Field(
            0.10, ge=0, description="re-bid on a relative change above this"
        )
        paid_slots: int = Field(3, ge=1, description="slots sold per provider")

    def setup(self, ctx: IncentiveContext) -> None:
        super().setup(ctx)
        self.auctions = ctx.rows(AUCTIONS)
        n = len(ctx.online)
        self.bid = np.zeros(n)
        self.price = np.zeros(n)  # each provider's clearing price, tokens per byte
        # This round's winners, twice: by provider for the per-piece payment (a set lookup),
        # and by (provider, slot) for the vectorised hold between rounds.
        self.winners: dict[int, frozenset[int]] = {}  # provider -> peers that won its auction
        self.won_nbr: np.ndarray | None = None  # (N, C): winner in each slot, -1 if none

    def _rebid(self, peers: np.ndarray) -> None:
        c = self.ctx
        remaining = np.maximum(c.file_bytes - c.have[peers] * c.piece_bytes, c.piece_bytes)
        wallet = np.maximum(self.ledger.balance[peers], 0.0)
        want = np.where(c.is_seed[peers], 0.0, self.params.spending_rate * wallet / remaining)
        old = self.bid[peers]
        moved = np.abs(want - old) > self.params.rebid_change * np.maximum(old, 1e-300)
        self.bid[peers] = np.where(moved | (want == 0), want, old)

    def adjust(
        self,
        view: ChokeView,
        out: np.ndarray,
        rng: np.random.Generator,
        optimistic: np.ndarray | None = None,
    ) -> np.ndarray:
        if view.periodic:
            rows, won = self._auction(view)
        else:  # between rounds the winners keep the slots they paid for
            rows, won = self._holding(view)
        if rows.size == 0:
            return out
        proposed = out[rows] > 0
        # the slots left keep the choker's picks: its optimistic unchokes first (they are not
        # auctioned, BitTorrent Token white paper), then its best others by rate
        free = np.maximum(proposed.sum(axis=1) - won.sum(axis=1), 1)
        key = np.where(proposed & ~won, -view.received_rate_bps(1)[rows], np.inf)
        if optimistic is not None:
            key = np.where(optimistic[rows] & proposed & ~won, -np.inf, key)
        keep = smallest_k((key,), proposed & ~won, free)
        result = out.copy()
        result[rows] = np.where(won, 1, np.where(keep, out[rows], 0)).astype(out.dtype)
        return result

    def _auction(self, view: ChokeView) -> tuple[np.ndarray, np.ndarray]:
        """Each provider's round: re-bid, sell ``paid_slots``, record winners and price."""
        for u in view.peers.tolist():  # last round's winners lose their slot and price
            self.winners.pop(u, None)
        if self.won_nbr is None:
            self.won_nbr = np.full((len(self.bid), view.nbr.shape[1]), -1, dtype=np.int64)
        self.won_nbr[view.peers] = -1
        nbr = np.maximum(view.nbr, 0)
        live = np.unique(nbr[view.valid])
        if live.size:
            self._rebid(live)
        bids = np.where(view.valid, self.bid[nbr], 0.0)
        eligible = view.interested & (bids > 0)
        rows = np.flatnonzero(eligible.any(axis=1))
        if rows.size == 0:
            return rows, np.zeros((0, view.nbr.shape[1]), dtype=bool)
        won, price = uniform_price_auction(
            bids[rows], eligible[rows], self.params.paid_slots, view.received_rate_bps(1)[rows]
        )
        providers = view.peers[rows]
        self.price[providers] = price
        self.won_nbr[providers] = np.where(won, view.nbr[rows], -1)
        for b, u in enumerate(providers.tolist()):
            self.winners[u] = frozenset(view.nbr[rows[b]][won[b]].tolist())
        self.auctions.extend(
            t_s=np.full(len(providers), view.now_s),
            provider=providers,
            bidders=eligible[rows].sum(axis=1),
            winners=won.sum(axis=1),
            price_per_byte=price,
        )
        return rows, won

    def _holding(self, view: ChokeView) -> tuple[np.ndarray, np.ndarray]:
        """This round's winners that are still connected and interested, per provider."""
        if self.won_nbr is None:
            return np.zeros(0, dtype=np.int64), np.zeros((0, view.nbr.shape[1]), dtype=bool)
        # slot by slot: the winner's slot, still held by the same peer (slots are reused)
        won = (self.won_nbr[view.peers] == view.nbr) & view.valid & view.interested
        rows = np.flatnonzero(won.any(axis=1))
        return rows, won[rows]

    def on_piece(
        self, t: float, uploader: int, downloader: int, nbytes: float, duration_s: float = 0.0
    ) -> None:
        won = self.winners.get(uploader)
        if won and downloader in won and self.price[uploader] > 0:
            due = self.price[uploader] * nbytes
            if self.ledger.transfer(t, downloader, uploader, due, "bid") < due:
                self.bid[downloader] = 0.0  # the wallet ran dry


@INCENTIVES.register("pay_per_piece")
class PayPerPiece(BaseIncentive):
    """A fixed price per piece, paid by the downloader to whoever uploaded it. A wallet that
    cannot pay pays what it has; with ``refuse_broke`` uploaders serve only peers who can pay
    a piece."""

    reasons = ("piece",)

    class Params(IncentiveParams):
        price_per_piece: float = Field(1.0, ge=0)
        refuse_broke: bool = False

    def on_piece(
        self, t: float, uploader: int, downloader: int, nbytes: float, duration_s: float = 0.0
    ) -> None:
        price = self.params.price_per_piece * nbytes / self.ctx.piece_bytes
        self.ledger.transfer(t, downloader, uploader, price, "piece")

    def adjust(
        self,
        view: ChokeView,
        out: np.ndarray,
        rng: np.random.Generator,
        optimistic: np.ndarray | None = None,
    ) -> np.ndarray:
        if not self.params.refuse_broke:
            return out
        nbr = np.maximum(view.nbr, 0)
        can = (
            self.ledger.balance[nbr] + self.ledger.credit_limit[nbr] >= self.params.price_per_piece
        )
        return np.where(can & view.valid, out, 0).astype(out.dtype)


@INCENTIVES.register("seeding_reward")
class SeedingReward(BaseIncentive):
    """The protocol pays uploaders: ``rate`` tokens per MiB uploaded (``basis: bytes``) or per
    hour spent seeding (``basis: seconds``), minted (``funding: inflation``) or paid from a
    pool of ``pool_tokens`` that can run out. Unverified byte rewards also pay the uploads
    colluding identities merely claim to send each other (a sybil farm); ``verified`` counts
    only bytes a peer outside the uploader's group received."""

    reasons = ("seeding_reward",)

    class Params(IncentiveParams):
        basis: Literal["bytes", "seconds"] = "bytes"
        rate: float = Field(1.0, ge=0, description="tokens per MiB, or per seeding hour")
        funding: Literal["inflation", "pool"] = "inflation"
        pool_tokens: float = Field(0.0, ge=0)
        verified: bool = False
        interval_s: float = Field(60.0, gt=0, description="how often time-based rewards are paid")

    def setup(self, ctx: IncentiveContext) -> None:
        super().setup(ctx)
        p = self.params
        self.interval_s = p.interval_s
        self.source = (
            MINT if p.funding == "inflation" else self.ledger.pool("rewards", p.pool_tokens)
        )

    def _pay(self, t: float, peer: int, amount: float, reason: str = "seeding_reward") -> None:
        if amount > 0:
            self.ledger.transfer(t, self.source, peer, amount, reason)

    def on_piece(
        self, t: float, uploader: int, downloader: int, nbytes: float, duration_s: float = 0.0
    ) -> None:
        if self.params.basis != "bytes":
            return
        g = self.ctx.group
        if self.params.verified and g[uploader] >= 0 and g[uploader] == g[downloader]:
            return
        self._pay(t, uploader, self.params.rate * nbytes / MiB)

    def on_interval(self, t: float, dt: float) -> None:
        c, p = self.ctx, self.params
        if p.basis == "seconds":
            for peer in np.flatnonzero(c.online & c.is_seed).tolist():
                self._pay(t, peer, p.rate * dt / 3600.0)
        elif not p.verified:
            fake = self.claimed_uploads(dt)
            for peer in np.flatnonzero(fake > 0).tolist():
                self._pay(t, peer, p.rate * fake[peer] / MiB, "self_dealing")
