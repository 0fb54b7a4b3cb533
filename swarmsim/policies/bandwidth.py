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
    """What an allocator sees: capacities and the active transfers out of / into each peer
    (``act_out[u]`` / ``act_in[d]``: dicts from the other peer to the flow) and the sum of
    the weights of each peer's active uploads (``out_weight``)."""

    up_bps: list[float]
    down_bps: list[float]
    act_out: list[dict]
    act_in: list[dict]
    out_weight: list[float]

    def active_out(self, peer: int) -> list: ...

    def active_in(self, peer: int) -> list: ...


class Bandwidth(Protocol):
    def reallocate(self, net: FlowNet, uploaders: dict, downloaders: dict):
        """``(flow, rate_bps)`` for every flow whose rate the change may have moved; the peers
        come as dicts (ordered sets) so that membership tests are cheap."""
        ...


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

    def reallocate(self, net: FlowNet, uploaders, downloaders) -> list:
        # The hot loop of every event: dict lookups on the flow tables, each uploader's
        # capacity per unit of weight computed once.
        up_bps, down_bps = net.up_bps, net.down_bps
        act_out, act_in, out_weight = net.act_out, net.act_in, net.out_weight
        per_weight: dict[int, float] = {}
        out = []
        for u in uploaders:
            flows = act_out[u]
            if not flows:
                continue
            total = out_weight[u]
            per = per_weight[u] = up_bps[u] / total if total > 0 else 0.0
            for f in flows.values():
                d = f.down
                out.append((f, min(per * f.weight, down_bps[d] / len(act_in[d]))))
        for d in downloaders:
            flows = act_in[d]
            if not flows:
                continue
            share = down_bps[d] / len(flows)
            for f in flows.values():
                u = f.up
                if u in uploaders:  # already re-rated above
                    continue
                per = per_weight.get(u)
                if per is None:
                    total = out_weight[u]
                    per = per_weight[u] = up_bps[u] / total if total > 0 else 0.0
                out.append((f, min(per * f.weight, share)))
        return out


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
