"""Bandwidth allocation: the rate each active transfer gets (flow level, no packets, no blocks).

An allocator is asked, after an event changed who transfers to whom, for the new rates of the
transfers that event could have affected; the engine reschedules only those whose rate moved.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict

from swarmsim.api import Bandwidth, FlowNet
from swarmsim.registry import Registry

BANDWIDTH = Registry("bandwidth", "how capacity is shared among active transfers")


@BANDWIDTH.register("slot_share")
class SlotShare(Bandwidth):
    """Each transfer gets min(the uploader's capacity split among its active uploads, the
    downloader's capacity split evenly among its active downloads).
    The uploader's split is even unless its choker weights the flows (propshare, bittyrant).
    Local, so an event touches a few flows only; not work-conserving: capacity that a
    download-bound transfer leaves unused is not handed on (see ``max_min``). With
    ``ack_share``, each side's capacity is first reduced by the ACKs of the other direction's
    current rates (re-read when that side's own flows are re-rated)."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

    def __init__(self, params: Params):
        self.params = params

    def reallocate(self, net: FlowNet, uploaders, downloaders) -> list:
        # The hot loop of every event: dict lookups on the flow tables, each uploader's
        # capacity per unit of weight computed once.
        act_out, act_in, out_weight = net.act_out, net.act_in, net.out_weight
        up_bps, down_bps = net.up_bps, net.down_bps
        if net.ack_share:
            up_bps = _LessAcks(up_bps, act_in, net.ack_share)
            down_bps = _LessAcks(down_bps, act_out, net.ack_share)
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


class _LessAcks(dict):
    """Capacities less the ACKs of the other direction, computed for the peers asked for."""

    def __init__(self, caps, other_flows, ack):
        super().__init__()
        self.caps, self.other_flows, self.ack = caps, other_flows, ack

    def __missing__(self, peer):
        used = self.ack * sum(f.rate for f in self.other_flows[peer].values())
        value = self[peer] = max(self.caps[peer] - used, 0.0)
        return value


@BANDWIDTH.register("max_min")
class MaxMin(Bandwidth):
    """Weighted max-min fair rates by progressive filling over uploader and downloader
    capacities: every flow's rate rises with its weight until its uploader or downloader is
    full, then freezes, and the others go on rising. Work-conserving where ``slot_share`` is
    not: what a download-bound flow leaves unused goes to the uploader's other flows.

    Done locally: after an event, the flows of the peers it touched are re-filled within the
    capacity the rest of their flows leave free (those keep their rates). A global recompute
    would cascade through the whole swarm at every event; the local one still conserves work
    at every peer an event reaches. With ``ack_share`` the ACKs of what a peer downloads come
    off its upload capacity first (and those of what it uploads off its download capacity),
    so a busy downloader has less upload left; an event then re-fills the touched peers'
    flows in both directions.

    The filling is event-driven (water-filling): unfrozen flows all sit at ``weight x level``,
    so each capacity has a level at which it fills, ``free / unfrozen weight``; a heap gives
    the lowest, its flows freeze there, and only their other capacity's level moves (it can
    only rise, so stale heap entries are re-pushed when popped). O((F + R) log R) for F flows
    over R capacities, where raising every flow step by step cost O(R x (F + R)): a rechoke
    batch re-fills thousands of flows at once."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid", frozen=True)

        #: weight each flow by its connection's recent rate, as libtorrent's rate limiter
        #: grants each connection the quota its own rate asked for (see ``_quota_weight``)
        rate_history: bool = False

    # capacities whose fill levels differ by less than this fill together (float noise)
    tie = 1e-12
    # libtorrent's rate limiter hands out quota every tick_interval (500 ms)
    quota_tick_s = 0.5

    def __init__(self, params: Params):
        self.params = params

    def reallocate(self, net: FlowNet, uploaders: Iterable[int], downloaders: Iterable[int]):
        ack = net.ack_share
        chosen: dict[int, object] = {}
        for u in uploaders:
            for f in net.act_out[u].values():
                chosen[id(f)] = f
            if ack:  # u's download cap carries the ACKs of what it sends
                for f in net.act_in[u].values():
                    chosen[id(f)] = f
        for d in downloaders:
            for f in net.act_in[d].values():
                chosen[id(f)] = f
            if ack:  # d's upload cap carries the ACKs of what it receives
                for f in net.act_out[d].values():
                    chosen[id(f)] = f
        if not chosen:
            return []
        flows = list(chosen.values())
        if not ack:
            return self._fill(net, flows, chosen, None)
        # ACKs are sent whatever the cap says (libtorrent drains them from the bucket after
        # the fact), so they come off a capacity first and payload fills the rest: filled
        # once with the ACKs of the current rates, then again with the ACKs of the new ones
        # (what is left is of order ack_share^2 of a rate)
        first = {id(f): r for f, r in self._fill(net, flows, chosen, lambda g: g.rate)}
        return self._fill(net, flows, chosen, lambda g: first.get(id(g), g.rate))

    def _fill(self, net: FlowNet, flows: list, chosen: dict, ack_rate) -> list:
        """Progressive filling of ``flows`` within what the other flows leave free and, with
        ``ack_rate``, what the ACKs of the other direction (at those rates) leave."""
        # capacities, numbered: what the flows that keep their rates leave free, the weight
        # of the still rising flows, and those flows
        free: list[float] = []
        weight: list[float] = []
        rising: list[int] = []  # how many (weight's float residue is no count)
        members: list[list[int]] = []
        ends: list[tuple[int, int]] = []  # each flow's (uploader, downloader) capacity
        number: tuple[dict[int, int], dict[int, int]] = ({}, {})
        ack = net.ack_share
        if self.params.rate_history:
            wts = [f.weight * self._quota_weight(net, f) for f in flows]
        else:
            wts = [f.weight for f in flows]
        for i, f in enumerate(flows):
            pair = []
            for side, peer in ((0, f.up), (1, f.down)):
                r = number[side].get(peer)
                if r is None:
                    r = number[side][peer] = len(free)
                    own, other, cap = (
                        (net.act_out, net.act_in, net.up_bps)
                        if side == 0
                        else (net.act_in, net.act_out, net.down_bps)
                    )
                    used = sum(g.rate for g in own[peer].values() if id(g) not in chosen)
                    if ack_rate is not None:
                        used += ack * sum(ack_rate(g) for g in other[peer].values())
                    free.append(cap[peer] - used)
                    weight.append(0.0)
                    rising.append(0)
                    members.append([])
                weight[r] += wts[i]
                rising[r] += 1
                members[r].append(i)
                pair.append(r)
            ends.append((pair[0], pair[1]))
        rate = [0.0] * len(flows)
        frozen = [False] * len(flows)
        heap = [(max(free[r], 0.0) / weight[r], r) for r in range(len(free)) if weight[r] > 0]
        heapq.heapify(heap)
        level = 0.0
        while heap:
            at, r = heapq.heappop(heap)
            if not rising[r]:
                continue  # every flow through it froze at another capacity
            now_at = max(free[r], 0.0) / weight[r] if weight[r] > 0.0 else level
            if now_at > at + self.tie:  # it rose since it was pushed: wait its turn
                heapq.heappush(heap, (now_at, r))
                continue
            level = max(level, now_at)
            for i in members[r]:
                if frozen[i]:
                    continue
                frozen[i] = True
                w = wts[i]
                rate[i] = w * level
                for c in ends[i]:
                    free[c] -= w * level
                    weight[c] -= w
                    rising[c] -= 1
        return [(f, max(x, 0.0)) for f, x in zip(flows, rate, strict=True)]

    def _quota_weight(self, net: FlowNet, f) -> float:
        """A flow's claim on a full capacity, in bytes per second. libtorrent's rate limiter
        (``bandwidth_manager::update_quotas``) grants each connection, every tick, what it
        asked for while the pool lasts, and a connection asks for its own rate over the last
        second (``peer_connection::wanted_transfer``: twice its upload rate times the 500 ms
        tick): shares follow history. A fresh connection asks for its send buffer, one block
        (the 10 KiB ``send_buffer_low_watermark`` rounds up to a block), once a tick."""
        return max(net.rate_estimate(f.i_in), net.block_bytes / self.quota_tick_s)
