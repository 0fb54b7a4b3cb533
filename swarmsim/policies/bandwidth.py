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
