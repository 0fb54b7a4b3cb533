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
    ack_share: float = 0.0


def _used(net: _Net, side: str, peer: int, rate) -> tuple[float, float]:
    """(payload, the other direction's payload) through one peer's capacity at ``rate``."""
    own, other = (net.act_out, net.act_in) if side == "u" else (net.act_in, net.act_out)
    return sum(rate(g) for g in own[peer].values()), sum(rate(g) for g in other[peer].values())


def _reference_fill(net: _Net, flows: dict, ack_rate) -> dict[int, float]:
    """Progressive filling, one level step at a time, of ``flows`` within what the other
    flows, and the ACKs of the other direction at ``ack_rate``, leave free."""
    keys = {}
    for f in flows.values():
        for key in (("u", f.up), ("d", f.down)):
            if key not in keys:
                cap = (net.up_bps if key[0] == "u" else net.down_bps)[key[1]]
                kept, _ = _used(net, *key, lambda g: 0.0 if id(g) in flows else g.rate)
                _, other = _used(net, *key, ack_rate)
                keys[key] = [cap - kept - net.ack_share * other, []]
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


def _reference_max_min(net: _Net, uploaders, downloaders) -> dict[int, float]:
    """The touched peers' flows (with ACKs: both directions of each touched peer), filled
    with the ACKs of the current rates and then of the rates that gave."""
    flows = {id(f): f for u in uploaders for f in net.act_out[u].values()}
    flows |= {id(f): f for d in downloaders for f in net.act_in[d].values()}
    if not net.ack_share:
        return _reference_fill(net, flows, lambda g: 0.0)
    flows |= {id(f): f for u in uploaders for f in net.act_in[u].values()}
    flows |= {id(f): f for d in downloaders for f in net.act_out[d].values()}
    first = _reference_fill(net, flows, lambda g: g.rate)
    return _reference_fill(net, flows, lambda g: first.get(id(g), g.rate))


@st.composite
def _swarms(draw):
    n = draw(st.integers(2, 7))
    caps = st.floats(1e3, 1e6)
    net = _Net([draw(caps) for _ in range(n)], [draw(caps) for _ in range(n)])
    net.ack_share = draw(st.sampled_from([0.0, 0.0, 0.0267]))
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
    # no capacity is overfilled by the new rates plus the kept ones and the ACKs of the
    # other direction (the second filling leaves an error of order ack_share^2)
    flows = {id(f): f for m in net.act_out for f in m.values()}
    for peer in range(len(net.up_bps)):
        for side, cap in (("u", net.up_bps), ("d", net.down_bps)):
            used, other = _used(net, side, peer, lambda g: got.get(id(g), g.rate))
            kept, _ = _used(net, side, peer, lambda g: 0.0 if id(g) in got else g.rate)
            slack = 2 * net.ack_share**2 * (used + other) + 1e-6
            limit = max(cap[peer], kept + net.ack_share * other)
            assert used + net.ack_share * other <= limit * (1 + 1e-9) + slack
    assert set(got) <= set(flows)


def _pair_net(ack: float) -> _Net:
    """Peer 0 uploads to peer 1 (upload cap 100) while it downloads from peer 2 at its
    download cap, 1,000."""
    net = _Net([100.0, 1e6, 1e6], [1000.0, 1e6, 1e6], ack_share=ack)
    net.act_out = [{}, {}, {}]
    net.act_in = [{}, {}, {}]
    for u, d in ((0, 1), (2, 0)):
        f = _Flow(u, d, 1.0)
        net.act_out[u][d] = f
        net.act_in[d][u] = f
    net.act_out[2][0].rate = 1000.0
    net.out_weight = [1.0, 0.0, 1.0]
    return net


@pytest.mark.parametrize("allocator", [MaxMin, SlotShare])
def test_a_downloading_peers_upload_cap_carries_its_acks(allocator):
    """Peer 0 downloads 1,000 from peer 2 and uploads to peer 1 with a cap of 100. With ACKs
    costing 2 % the other way it has 100 - 0.02 x 1,000 = 80 left for payload; its download
    is not held back by its upload cap, only by its download cap less the ACKs of those 80
    (max_min re-fills both directions of a touched peer). Without ACKs it uploads all 100."""
    alloc = allocator(allocator.Params())
    plain = {(f.up, f.down): r for f, r in alloc.reallocate(_pair_net(0.0), [0], [])}
    assert plain == pytest.approx({(0, 1): 100.0})
    rates = {(f.up, f.down): r for f, r in alloc.reallocate(_pair_net(0.02), [0], [])}
    want = {(0, 1): 80.0, (2, 0): 1000.0 - 0.02 * 80.0} if allocator is MaxMin else {(0, 1): 80.0}
    assert rates == pytest.approx(want)


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


def test_rate_history_keeps_a_saturated_uploaders_shares_and_starts_a_new_one_at_a_block():
    """libtorrent's limiter grants each connection its own last second's rate, so at a full
    uploader shares follow history. An uploader of 1 MB/s runs three connections at
    1/3 MB/s each; a fourth opens (rate estimate 0). With ``rate_history`` the newcomer claims
    one 16 KiB block per 500 ms tick, 32,768 B/s, against the others' 1e6 B/s: it gets
    1e6 x 32,768 / 1,032,768 and the others keep the rest in equal parts. Plain max-min
    gives everyone a quarter."""
    cap, block = 1e6, 16384
    net = _Net([cap, 0.0, 0.0, 0.0, 0.0], [0.0] + [1e9] * 4)
    net.act_out = [{} for _ in range(5)]
    net.act_in = [{} for _ in range(5)]
    estimate = {}
    for d in (1, 2, 3, 4):
        f = _Flow(0, d, 1.0, rate=cap / 3 if d < 4 else 0.0)
        f.i_in = d
        estimate[d] = f.rate
        net.act_out[0][d] = f
        net.act_in[d][0] = f
    net.out_weight = [4.0, 0.0, 0.0, 0.0, 0.0]
    net.block_bytes = block
    net.rate_estimate = estimate.__getitem__
    sticky = MaxMin(MaxMin.Params(rate_history=True)).reallocate(net, [0], [])
    new = cap * (2 * block) / (cap + 2 * block)
    want = {1: (cap - new) / 3, 2: (cap - new) / 3, 3: (cap - new) / 3, 4: new}
    assert {f.down: r for f, r in sticky} == pytest.approx(want)
    plain = MaxMin(MaxMin.Params()).reallocate(net, [0], [])
    assert {f.down: r for f, r in plain} == pytest.approx({d: cap / 4 for d in (1, 2, 3, 4)})
