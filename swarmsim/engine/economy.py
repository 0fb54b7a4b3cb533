"""The swarm's token side: the ledger, the incentive policy and each peer's endowment, cost
of staying online and collusion group. The swarm calls it at joins, pieces, rechokes and on
the policy's own interval; with the ``none`` policy every hook is a no-op."""

from __future__ import annotations

import numpy as np

from swarmsim.api import SeedingState
from swarmsim.ledger import Ledger
from swarmsim.policies.incentives import IncentiveContext


class Economy:
    def __init__(self, swarm):
        sc = swarm.scenario
        n = swarm.n_peers
        self.swarm = swarm
        self.incentive = swarm.plugins.incentive
        self.ledger = Ledger(
            n, credit_limit=self.incentive.credit_tokens, reasons=self.incentive.reasons
        )
        self.tokens_start = np.zeros(n)
        self.cost_per_s = np.zeros(n)
        self.group = np.full(n, -1, dtype=np.int64)
        self.self_dealing_bps = np.zeros(n)
        groups: dict[str, int] = {}
        for ci, pc in enumerate(sc.peers):
            members = np.flatnonzero(swarm.peer_class == ci)
            rng = swarm.streams.get(f"tokens/{pc.name}")
            self.tokens_start[members] = pc.tokens.sample(rng, members.size)
            self.cost_per_s[members] = pc.seeding_cost_per_hour.sample(rng, members.size) / 3600.0
            if pc.collusion_group is not None:
                self.group[members] = groups.setdefault(pc.collusion_group, len(groups))
                self.self_dealing_bps[members] = pc.self_dealing_bps
        # only rules with their own ``serves`` are asked (at every rechoke, per peer)
        self.picky = [k for k, rule in enumerate(swarm.departure) if rule.gates_service]
        self.rng = swarm.streams.get("incentive")
        self.incentive.setup(
            IncentiveContext(
                ledger=self.ledger,
                rows=swarm.recorder.rows,
                file_bytes=sc.torrent.file_bytes,
                piece_bytes=sc.torrent.piece_bytes,
                online=swarm.online,
                is_seed=swarm.pieces.is_seed,
                have=swarm.pieces.have,
                uploaded=swarm.net.uploaded,
                downloaded=swarm.net.downloaded,
                group=self.group,
                self_dealing_bps=self.self_dealing_bps,
            )
        )
        self.active = self.incentive.active

    def start(self) -> None:
        interval = self.incentive.interval_s
        if interval:
            self._last = 0.0
            self.swarm._at(interval, self._on_interval, interval)

    def _on_interval(self, interval: float) -> None:
        now = self.swarm.clock.now
        self.incentive.on_interval(now, now - self._last)
        self._last = now
        self.swarm._at(interval, self._on_interval, interval)

    def on_join(self, peer: int) -> None:
        if self.tokens_start[peer] > 0:
            self.ledger.grant(peer, float(self.tokens_start[peer]), self.swarm.clock.now)

    def on_piece(self, uploader: int, downloader: int, nbytes: float, duration_s: float) -> None:
        if self.active:
            self.incentive.on_piece(self.swarm.clock.now, uploader, downloader, nbytes, duration_s)

    def adjust(self, view, out, optimistic=None):
        """The incentive's change to a choker's mask (it leaves ``optimistic`` unchokes)."""
        if not self.active:
            return out
        return self.incentive.adjust(view, out, self.rng, optimistic)

    def serving(self, peers: np.ndarray) -> np.ndarray:
        """Which of ``peers`` upload at all (wealth-threshold agents stop when rich)."""
        ok = np.ones(len(peers), dtype=bool)
        if self.picky:
            rules = self.swarm.departure
            for k, u in enumerate(peers.tolist()):
                ok[k] = rules[u].serves(float(self.ledger.balance[u]))
        return ok

    def seeding_state(self, u: int) -> SeedingState:
        sw = self.swarm
        since = sw.join_s[u] if sw.starts_seed[u] else sw.complete_s[u]
        return SeedingState(
            peer=u,
            now_s=sw.clock.now,
            seeded_s=sw.clock.now - since,
            uploaded_bytes=float(sw.net.uploaded[u]),
            downloaded_bytes=float(sw.net.downloaded[u]),
            wealth=float(self.ledger.balance[u]),
            earned=float(self.ledger.earned[u]),
            cost_per_s=float(self.cost_per_s[u]),
        )
