"""The bandwidth allocators against the definitions they implement.

``max_min`` fills by events on a heap; the reference below raises every flow step by step, the
textbook progressive filling (Bertsekas & Gallager, "Data Networks", 6.5.2). Both must give
the same rates on any flow graph, weights and touched peers, and never overfill a capacity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmsim.policies.bandwidth import MaxMin, SlotShare


@dataclass(eq=False)
class _Flow:
    up: int
    down: int
    weight: float
    rate: float = 0.0


@dataclass
class _Net:
    up_bps: list[float]
    down_bps: list[float]
    act_out: list[dict] = field(default_factory=list)
    act_in: list[dict] = field(default_factory=list)
    out_weight: list[float] = field(default_factory=list)


def _reference_max_min(net: _Net, uploaders, downloaders) -> dict[int, float]:
    """Progressive filling, one level step at a time, over the touched peers' flows within
    what their other flows leave free."""
    flows = {id(f): f for u in uploaders for f in net.act_out[u].values()}
    flows |= {id(f): f for d in downloaders for f in net.act_in[d].values()}
    keys = {}
    for f in flows.values():
        for key, cap, active in (
            (("u", f.up), net.up_bps[f.up], net.act_out[f.up]),
            (("d", f.down), net.down_bps[f.down], net.act_in[f.down]),
        ):
            if key not in keys:
                kept = sum(g.rate for g in active.values() if id(g) not in flows)
                keys[key] = [cap - kept, []]
            keys[key][1].append(f)
    rate = {k: 0.0 for k in flows}
    frozen: set[int] = set()
    while len(frozen) < len(flows):
        steps = []
        for free, group in keys.values():
            w = sum(f.weight for f in group if id(f) not in frozen)
            if w > 0:
                steps.append((max(free, 0.0) / w, group))
        if not steps:
            break
        step = min(s for s, _ in steps)
        for k, f in flows.items():
            if k not in frozen:
                rate[k] += f.weight * step
                keys[("u", f.up)][0] -= f.weight * step
                keys[("d", f.down)][0] -= f.weight * step
        for s, group in steps:
            if s <= step + 1e-12:
                frozen.update(id(f) for f in group)
    return rate


@st.composite
def _swarms(draw):
    n = draw(st.integers(2, 7))
    caps = st.floats(1e3, 1e6)
    net = _Net([draw(caps) for _ in range(n)], [draw(caps) for _ in range(n)])
    net.act_out = [{} for _ in range(n)]
    net.act_in = [{} for _ in range(n)]
    pairs = draw(
        st.lists(
            st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)).filter(lambda p: p[0] != p[1]),
            min_size=1,
            max_size=n * (n - 1),
            unique=True,
        )
    )
    for u, d in pairs:
        f = _Flow(u, d, draw(st.sampled_from([1.0, 1.0, 0.5, 2.0, 3.7])))
        net.act_out[u][d] = f
        net.act_in[d][u] = f
    # the swarm's state before the event: a full fill, then a new flow on a touched peer
    for f, r in MaxMin(MaxMin.Params()).reallocate(net, range(n), range(n)):
        f.rate = r
    up = draw(st.lists(st.integers(0, n - 1), max_size=3, unique=True))
    down = draw(st.lists(st.integers(0, n - 1), max_size=3, unique=True))
    return net, up, down


@settings(max_examples=300, deadline=None)
@given(_swarms())
def test_max_min_fills_as_progressive_filling_does(case):
    net, up, down = case
    got = {id(f): r for f, r in MaxMin(MaxMin.Params()).reallocate(net, up, down)}
    want = _reference_max_min(net, up, down)
    assert got.keys() == want.keys()
    for k, r in want.items():
        assert got[k] == pytest.approx(r, rel=1e-9, abs=1e-6)
    # no capacity is overfilled by the new rates plus the kept ones
    flows = {id(f): f for m in net.act_out for f in m.values()}
    for peer in range(len(net.up_bps)):
        for table, cap in ((net.act_out, net.up_bps), (net.act_in, net.down_bps)):
            used = sum(got.get(id(f), f.rate) for f in table[peer].values())
            kept = sum(f.rate for f in table[peer].values() if id(f) not in got)
            assert used <= max(cap[peer], kept) * (1 + 1e-9) + 1e-6
    assert set(got) <= set(flows)


def test_max_min_hands_a_download_bound_flows_leftover_to_the_others():
    """One uploader (100) to a slow downloader (10) and a fast one (1000): slot_share gives
    them 10 and 50, max_min 10 and 90 (the work-conserving answer)."""
    net = _Net([100.0, 0.0, 0.0], [0.0, 10.0, 1000.0])
    net.act_out = [{}, {}, {}]
    net.act_in = [{}, {}, {}]
    for d in (1, 2):
        f = _Flow(0, d, 1.0)
        net.act_out[0][d] = f
        net.act_in[d][0] = f
    net.out_weight = [2.0, 0.0, 0.0]
    rates = {f.down: r for f, r in MaxMin(MaxMin.Params()).reallocate(net, [0], [])}
    assert rates == pytest.approx({1: 10.0, 2: 90.0})
    slot = {f.down: r for f, r in SlotShare(SlotShare.Params()).reallocate(net, [0], [])}
    assert slot == pytest.approx({1: 10.0, 2: 50.0})
