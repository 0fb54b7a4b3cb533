"""A researcher's own plug-ins, one per family, each written against ``swarmsim.api`` only.

Run them with ``swarmsim run examples/my-plugins.yaml`` from the repository's root: a scenario
names each as ``examples.my_plugins:ClassName``.
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from swarmsim.api import Choker, ChokeView, Departure, Incentive, Picker, PickView, Unchoke
from swarmsim.api.tables import declare


class LowestIdChoker(Choker):
    """Unchoke the interested neighbours with the lowest peer ids; the first slot of every
    row that is not among them is an optimistic unchoke of a random interested peer."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)
        interval_s: float = Field(10.0, gt=0, description="seconds between rechokes")
        unchoke_slots: int = Field(4, ge=2, description="upload slots, one optimistic")

    def rechoke(self, view: ChokeView, rng: np.random.Generator) -> Unchoke:
        slots = self.params.unchoke_slots
        interested = view.interested
        ids = np.where(interested, view.nbr, np.iinfo(np.int64).max)
        order = np.argsort(ids, axis=1, kind="stable")
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(order.shape[1])[None, :], axis=1)
        regular = interested & (rank < slots - 1)
        # one optimistic unchoke per row among the interested peers left
        score = np.where(interested & ~regular, rng.random(interested.shape), np.inf)
        pick = score.argmin(axis=1)
        optimistic = np.zeros_like(interested)
        rows = np.flatnonzero(np.isfinite(score.min(axis=1)))
        optimistic[rows, pick[rows]] = True
        return Unchoke(regular | optimistic, optimistic)


class LowestIndexFirst(Picker):
    """Fetch the lowest-numbered piece the uploader can give (a streaming client's order)."""

    def pick(self, view: PickView, rng: np.random.Generator) -> int | None:
        wanted = np.flatnonzero(view.wanted)
        return int(wanted[0]) if wanted.size else None


# an output table of our own: the run writes it as tips.parquet, and Result.tips reads it
TIPS = declare(
    "tips",
    {"t_s": "float64", "downloader": "int32", "asked": "float64", "paid": "float64"},
    "tip asked for a delivered piece",
)


class TipTheUploader(Incentive):
    """The downloader tips its uploader ``tip_tokens`` per MiB it receives, as long as its
    balance allows. Payments carry this policy's own reason, ``tip``; the ``tips`` table
    shows each tip asked against what the wallet could pay."""

    reasons = ("tip",)

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)
        tip_tokens: float = Field(1.0, ge=0, description="tokens per MiB received")

    def setup(self, ctx) -> None:
        super().setup(ctx)
        self.tips = ctx.rows(TIPS)

    def on_piece(self, t, uploader, downloader, nbytes, duration_s=0.0):
        amount = self.params.tip_tokens * nbytes / 2**20
        paid = self.ledger.transfer(t, downloader, uploader, amount, "tip")
        self.tips.add(t_s=t, downloader=downloader, asked=amount, paid=paid)


class SeedWhileBroke(Departure):
    """Seed while the peer's balance is under ``target_tokens``; a peer at or over it
    uploads nothing and leaves once it is a seed (a scrip agent, Kash et al. EC 2006)."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)
        target_tokens: float = Field(10.0, ge=0)

    def serves(self, wealth: float) -> bool:
        return wealth < self.params.target_tokens

    def done_seeding(self, state) -> bool:
        return state.wealth >= self.params.target_tokens
