"""Incentives built on accounting between peers rather than prices: private-tracker share
ratios and Swarm's bilateral SWAP balances."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from swarmsim.api.views import ChokeView
from swarmsim.ledger import MINT
from swarmsim.policies.incentives import (
    INCENTIVES,
    BaseIncentive,
    IncentiveContext,
    IncentiveParams,
)


@INCENTIVES.register("ratio_credit")
class RatioCredit(BaseIncentive):
    """Private-tracker share-ratio enforcement (Meulpolder et al. IPTPS 2010; Jia et al.
    2013): the tracker keeps each account's reported upload and download; once an account has
    downloaded ``grace_fraction`` of the file (standing in for the account's history on
    other torrents), peers refuse it while (upload + bonus credit) /
    download is under ``min_ratio``. Seeding earns ``bonus_per_hour`` points (tokens, minted),
    each worth ``bytes_per_point`` of upload credit. Colluding accounts report fake uploads to
    each other (``self_dealing_bps``), which the tracker cannot tell from real ones."""

    reasons = ("bonus",)

    class Params(IncentiveParams):
        min_ratio: float = Field(0.3, ge=0)
        grace_fraction: float = Field(
            0.5,
            ge=0,
            le=1,
            description="share of the file an account may fetch before its ratio counts",
        )
        bonus_per_hour: float = Field(1.0, ge=0)
        bytes_per_point: float = Field(1024 * 1024, ge=0)
        interval_s: float = Field(60.0, gt=0)

    def setup(self, ctx: IncentiveContext) -> None:
        super().setup(ctx)
        self.interval_s = self.params.interval_s
        self.fake_up = np.zeros(len(ctx.online))

    def ratio(self, peers: np.ndarray) -> np.ndarray:
        c, p = self.ctx, self.params
        credit = (
            c.uploaded[peers] + self.fake_up[peers] + self.ledger.earned[peers] * p.bytes_per_point
        )
        return credit / np.maximum(c.downloaded[peers], 1.0)

    def barred(self, peers: np.ndarray) -> np.ndarray:
        c, p = self.ctx, self.params
        started = c.downloaded[peers] > p.grace_fraction * c.file_bytes
        return started & (self.ratio(peers) < p.min_ratio)

    def adjust(
        self,
        view: ChokeView,
        out: np.ndarray,
        rng: np.random.Generator,
        optimistic: np.ndarray | None = None,
    ) -> np.ndarray:
        nbr = np.maximum(view.nbr, 0)
        refused = view.valid & self.barred(nbr.ravel()).reshape(nbr.shape)
        return np.where(refused, 0, out).astype(out.dtype)

    def on_interval(self, t: float, dt: float) -> None:
        c, p = self.ctx, self.params
        self.fake_up += self.claimed_uploads(dt)
        if p.bonus_per_hour > 0:
            for peer in np.flatnonzero(c.online & c.is_seed).tolist():
                self.ledger.transfer(t, MINT, peer, p.bonus_per_hour * dt / 3600.0, "bonus")


@INCENTIVES.register("swap")
class Swap(BaseIncentive):
    """Swarm's SWAP (ethersphere/bee ``pkg/accounting``): each pair keeps a signed balance in
    accounting units; a 4 KiB chunk costs (31 - ``proximity`` + 1) x 10,000 units. Every pair
    forgives ``free_units_per_s`` of debt per second (time-based pseudosettle), so balanced
    tit-for-tat pairs pay nothing; a debtor past ``settle_at`` of ``payment_threshold_units``
    pays the debt in tokens by cheque (``tokens_per_unit``); a creditor stops serving a debtor
    past ``disconnect_at`` times the threshold. A piece's chunks arrive over its transfer, so
    the allowance earned meanwhile offsets them (debt grows only at the rate it outruns it)."""

    reasons = ("swap_cheque",)

    class Params(IncentiveParams):
        proximity: int = Field(16, ge=0, le=31, description="Kademlia proximity of the pair")
        chunk_bytes: int = Field(4096, gt=0)
        payment_threshold_units: float = Field(13_500_000.0, gt=0)
        settle_at: float = Field(
            0.5, gt=0, le=1, description="pay early at this share of the threshold"
        )
        disconnect_at: float = Field(1.25, gt=1)
        free_units_per_s: float = Field(4_500_000.0, ge=0)
        tokens_per_unit: float = Field(1e-6, gt=0)

    def setup(self, ctx: IncentiveContext) -> None:
        super().setup(ctx)
        self.debt: dict[tuple[int, int], list[float]] = {}  # (debtor, creditor) -> [units, t]

    def _current(self, debtor: int, creditor: int, t: float) -> list[float]:
        """The debt after the free allowance since it was last touched."""
        d = self.debt.get((debtor, creditor))
        if d is None:
            d = self.debt[(debtor, creditor)] = [0.0, t]
        d[0] = self._owed(d, t)
        d[1] = t
        return d

    def _owed(self, d: list[float], t: float) -> float:
        """What debt ``d`` comes to at ``t`` after the allowance, without touching it: a
        creditor looking at a debt must not move the time its allowance counts from."""
        return max(d[0] - self.params.free_units_per_s * (t - d[1]), 0.0)

    def on_piece(
        self, t: float, uploader: int, downloader: int, nbytes: float, duration_s: float = 0.0
    ) -> None:
        p = self.params
        start = t - duration_s
        owed = self._current(
            downloader, uploader, max(start, self.debt.get((downloader, uploader), [0, start])[1])
        )
        back = self._current(uploader, downloader, t)  # what the uploader owes first nets off
        units = (31 - p.proximity + 1) * 10_000.0 * nbytes / p.chunk_bytes
        netted = min(back[0], units)
        back[0] -= netted
        # over the transfer the debt grows by the cost and shrinks by the allowance
        owed[0] = max(owed[0] + (units - netted) - p.free_units_per_s * (t - owed[1]), 0.0)
        owed[1] = t
        if owed[0] > p.settle_at * p.payment_threshold_units:
            paid = self.ledger.transfer(
                t, downloader, uploader, owed[0] * p.tokens_per_unit, "swap_cheque"
            )
            owed[0] -= paid / p.tokens_per_unit

    def adjust(
        self,
        view: ChokeView,
        out: np.ndarray,
        rng: np.random.Generator,
        optimistic: np.ndarray | None = None,
    ) -> np.ndarray:
        limit = self.params.disconnect_at * self.params.payment_threshold_units
        result = out
        for b, u in enumerate(view.peers.tolist()):
            for s in np.flatnonzero(out[b] > 0).tolist():
                j = int(view.nbr[b, s])
                d = self.debt.get((j, u))
                if d is not None and self._owed(d, view.now_s) > limit:
                    if result is out:
                        result = out.copy()
                    result[b, s] = 0
        return result
