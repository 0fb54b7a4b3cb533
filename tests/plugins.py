"""A user's own choker, loaded by ``name: tests.plugins:EveryoneChoker``."""

import numpy as np
from pydantic import BaseModel, ConfigDict


class EveryoneChoker:
    """Unchokes the first ``unchoke_slots`` interested neighbours, no reciprocity."""

    rechoke_on_interest = False

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)
        interval_s: float = 10.0
        unchoke_slots: int = 4

    def __init__(self, params):
        self.params = params
        self.interval_s = params.interval_s

    def setup(self, n_peers, max_connections):
        pass

    def rechoke(self, view, rng):
        """First ``unchoke_slots`` interested slots of each row."""
        return view.interested & (np.cumsum(view.interested, axis=1) <= self.params.unchoke_slots)
