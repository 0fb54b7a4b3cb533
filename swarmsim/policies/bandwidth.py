"""Bandwidth allocation: the rate each active transfer gets (flow level, no packets, no blocks).

An allocator is asked, after an event changed who transfers to whom, for the new rates of the
transfers that event could have affected; the engine reschedules only those whose rate moved.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from pydantic import BaseModel, ConfigDict

from swarmsim.registry import Registry

BANDWIDTH = Registry("bandwidth", "how capacity is shared among active transfers")


class FlowNet(Protocol):
    """What an allocator sees: capacities and the active transfers out of / into each peer."""

    up_bps: list[float]
    down_bps: list[float]

    def active_out(self, peer: int) -> list: ...

    def active_in(self, peer: int) -> list: ...


class Bandwidth(Protocol):
    def reallocate(self, net: FlowNet, uploaders: Iterable[int], downloaders: Iterable[int]):
        """Yield ``(flow, rate_bps)`` for every flow whose rate the change may have moved."""
        ...


class UploadShares:
    """The uploader's capacity times a flow's weight over the weights of its active flows,
    with each uploader's total computed once per reallocation."""

    def __init__(self, net: FlowNet):
        self.net = net
        self._per_weight: dict[int, float] = {}

    def __call__(self, f) -> float:
        per = self._per_weight.get(f.up)
        if per is None:
            total = sum(g.weight for g in self.net.active_out(f.up))
            per = self.net.up_bps[f.up] / total if total > 0 else 0.0
            self._per_weight[f.up] = per
        return per * f.weight


@BANDWIDTH.register("slot_share")
class SlotShare:
    """Each transfer gets min(the uploader's capacity split among its active uploads, the
    downloader's capacity split evenly among its active downloads) (DESIGN.md "Bandwidth").
    The uploader's split is even unless its choker weights the flows (propshare, bittyrant).
    Local, so an event touches a few flows only; not work-conserving: capacity that a
    download-bound transfer leaves unused is not handed on (see ``max_min``)."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

    def __init__(self, params: Params):
        self.params = params

    def reallocate(self, net: FlowNet, uploaders: Iterable[int], downloaders: Iterable[int]):
        down_bps = net.down_bps
        upload_share = UploadShares(net)
        seen: set[int] = set()
        for u in uploaders:
            for f in net.active_out(u):
                seen.add(id(f))
                yield f, min(upload_share(f), down_bps[f.down] / len(net.active_in(f.down)))
        for d in downloaders:
            flows = net.active_in(d)
            if flows:
                share = down_bps[d] / len(flows)
                for f in flows:
                    if id(f) not in seen:
                        seen.add(id(f))
                        yield f, min(upload_share(f), share)


@BANDWIDTH.register("max_min")
class MaxMin:
    """Weighted max-min fair rates by progressive filling over uploader and downloader
    capacities: every flow's rate rises with its weight until its uploader or downloader is
    full, then freezes, and the others go on rising. Work-conserving where ``slot_share`` is
    not: what a download-bound flow leaves unused goes to the uploader's other flows.

    Done locally: after an event, the flows of the peers it touched are re-filled within the
    capacity the rest of their flows leave free (those keep their rates). A global recompute
    would cascade through the whole swarm at every event; the local one still conserves work
    at every peer an event reaches."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

    def __init__(self, params: Params):
        self.params = params

    def reallocate(self, net: FlowNet, uploaders: Iterable[int], downloaders: Iterable[int]):
        chosen: dict[int, object] = {}
        for u in uploaders:
            for f in net.active_out(u):
                chosen[id(f)] = f
        for d in downloaders:
            for f in net.active_in(d):
                chosen[id(f)] = f
        if not chosen:
            return
        flows = list(chosen.values())
        # capacity left by flows that keep their rates, per resource ('u', peer) / ('d', peer)
        free: dict[tuple[str, int], float] = {}
        members: dict[tuple[str, int], list] = {}
        for f in flows:
            for key, cap, active in (
                (("u", f.up), net.up_bps[f.up], net.active_out(f.up)),
                (("d", f.down), net.down_bps[f.down], net.active_in(f.down)),
            ):
                if key not in free:
                    free[key] = cap - sum(g.rate for g in active if id(g) not in chosen)
                    members[key] = []
                members[key].append(f)
        rate = {id(f): 0.0 for f in flows}
        frozen: set[int] = set()
        level = 0.0
        while len(frozen) < len(flows):
            best, best_keys = None, []
            for key, group in members.items():
                weight = sum(f.weight for f in group if id(f) not in frozen)
                if weight <= 0:
                    continue
                headroom = max(free[key], 0.0) / weight
                if best is None or headroom < best - 1e-12:
                    best, best_keys = headroom, [key]
                elif headroom <= best + 1e-12:
                    best_keys.append(key)
            if best is None:
                break
            level_step = best
            for f in flows:  # everyone unfrozen rises by weight * step
                if id(f) not in frozen:
                    inc = f.weight * level_step
                    rate[id(f)] += inc
                    free[("u", f.up)] -= inc
                    free[("d", f.down)] -= inc
            level += level_step
            for key in best_keys:
                for f in members[key]:
                    frozen.add(id(f))
        for f in flows:
            yield f, max(rate[id(f)], 0.0)
