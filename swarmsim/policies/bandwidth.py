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


def upload_share(net: FlowNet, f) -> float:
    """The uploader's capacity times this flow's weight over its active flows' weights."""
    flows = net.active_out(f.up)
    total = sum(g.weight for g in flows) if len(flows) > 1 else f.weight
    return net.up_bps[f.up] * f.weight / total if total > 0 else 0.0


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
        seen: set[int] = set()
        for u in uploaders:
            for f in net.active_out(u):
                seen.add(id(f))
                yield f, min(upload_share(net, f), down_bps[f.down] / len(net.active_in(f.down)))
        for d in downloaders:
            flows = net.active_in(d)
            if flows:
                share = down_bps[d] / len(flows)
                for f in flows:
                    if id(f) not in seen:
                        seen.add(id(f))
                        yield f, min(upload_share(net, f), share)
