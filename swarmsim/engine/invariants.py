"""Conservation laws and protocol invariants of a swarm, checked from independent bookkeeping.

Each check compares two things the engine keeps separately (byte counters vs bitfields,
incremental availability vs a recount from bitfields, unchoke flags vs flows), so a bug in one
shows up as a mismatch. Tests run every sample with ``check=True``; every run checks at the end
and writes the outcome into its manifest.
"""

from __future__ import annotations

import numpy as np

from swarmsim.engine.bitfields import pack_words
from swarmsim.errors import InvariantError


def check_invariants(swarm, raise_on_failure: bool = False) -> dict[str, str]:
    """Return ``{check: "ok" | description of the first failure}``."""
    results = {
        "bytes_conserved": _bytes(swarm),
        "availability_matches_bitfields": _availability(swarm),
        "packed_bitfields_match": _packed(swarm),
        "unchoked_are_interested": _unchoked(swarm),
        "rates_within_capacity": _capacity(swarm),
        "in_flight_consistent": _in_flight(swarm),
        "tokens_conserved": swarm.economy.ledger.check(),
        "no_completion_faster_than_capacity": swarm.violations[0] if swarm.violations else "ok",
    }
    failed = {k: v for k, v in results.items() if v != "ok"}
    if failed and raise_on_failure:
        raise InvariantError("; ".join(f"{k}: {v}" for k, v in failed.items()))
    return results


def _close(a, b, scale) -> bool:
    return abs(a - b) <= 1e-6 * max(scale, 1.0)


def _bytes(swarm) -> str:
    net = swarm.net
    total_up, total_down = float(net.uploaded.sum()), float(net.downloaded.sum())
    if not _close(total_up, total_down, total_up):
        return f"uploaded {total_up:.1f} B != downloaded {total_down:.1f} B"
    # Per peer: bytes received = whole pieces fetched + kept partial blocks + bytes of pieces in
    # flight + bytes lost with cut blocks. Bitfields and byte counters are kept apart.
    sizes = swarm.pieces.piece_size
    fetched = swarm.pieces.bits.astype(np.float64) @ sizes.astype(np.float64)
    fetched[swarm.starts_seed] = 0.0
    for j in range(swarm.n_peers):
        expected = fetched[j] + net.discarded[j]
        if swarm.online[j]:
            expected += sum(swarm.pieces.partial[j].values())
            for dl in net.downloads[j].values():
                expected += dl.size - dl.remaining
        if not _close(net.downloaded[j], expected, sizes.sum()):
            return (
                f"peer {j} downloaded {net.downloaded[j]:.1f} B but holds {expected:.1f} B of "
                "pieces, partials and in-flight data"
            )
    return "ok"


def _availability(swarm) -> str:
    conns, P = swarm.conns, swarm.pieces.n_pieces
    for i in np.flatnonzero(swarm.online).tolist():
        ids, _, _ = conns.neighbours(i)
        seeds = swarm.pieces.is_seed[ids]
        expected = swarm.pieces.bits[ids[~seeds]].sum(axis=0)
        if int(seeds.sum()) != conns.seed_nbrs[i]:
            return f"peer {i} counts {conns.seed_nbrs[i]} seed neighbours, has {int(seeds.sum())}"
        if not np.array_equal(conns.rarity[i] // P, expected):
            bad = int(np.flatnonzero(conns.rarity[i] // P != expected)[0])
            return f"peer {i} availability of piece {bad} is {conns.rarity[i, bad] // P}, bitfields say {expected[bad]}"
        if not swarm.online[ids].all():
            return f"peer {i} is connected to an offline peer"
    return "ok"


def _packed(swarm) -> str:

    if not np.array_equal(pack_words(swarm.pieces.bits).T, swarm.pieces.words_t):
        return "packed bitfields differ from the boolean ones"
    return "ok"


def _unchoked(swarm) -> str:
    conns, net = swarm.conns, swarm.net
    for u in np.flatnonzero(swarm.online).tolist():
        ids, slots, _ = conns.neighbours(u)
        unchoked = conns.unchoked[u, slots]
        wants = (
            (swarm.pieces.bits[u] & ~swarm.pieces.bits[ids]).any(axis=1) if ids.size else unchoked
        )
        if (unchoked & ~wants).any():
            return f"peer {u} unchokes a peer that is not interested"
        flows = {j for j, f in net.out_flows[u].items() if not f.fast}
        if flows != set(ids[unchoked].tolist()):
            return f"peer {u}'s flows {sorted(flows)} differ from its unchoked peers"
        fast = {j for j, f in net.out_flows[u].items() if f.fast}
        if fast & flows or not fast <= set(ids.tolist()):
            return (
                f"peer {u} serves allowed-fast pieces to peers it unchokes or is not connected to"
            )
    return "ok"


def _capacity(swarm) -> str:
    net = swarm.net
    for u in range(swarm.n_peers):
        out = sum(f.rate for f in net.act_out[u].values())
        weight = sum(f.weight for f in net.act_out[u].values())
        if abs(net.out_weight[u] - weight) > 1e-9 * max(weight, 1.0):
            return f"peer {u}'s running upload weight {net.out_weight[u]} is not {weight}"
        if out > net.up_bps[u] * (1 + 1e-9) + 1e-9:
            return f"peer {u} uploads at {out:.1f} B/s over its capacity {net.up_bps[u]:.1f}"
        inn = sum(f.rate for f in net.act_in[u].values())
        if inn > net.down_bps[u] * (1 + 1e-9) + 1e-9:
            return f"peer {u} downloads at {inn:.1f} B/s over its capacity {net.down_bps[u]:.1f}"
    return "ok"


def _in_flight(swarm) -> str:
    net = swarm.net
    for j in np.flatnonzero(swarm.online).tolist():
        busy = set(np.flatnonzero(swarm.pieces.busy[j]).tolist())
        queued = [p for f in net.in_flows[j].values() for p in f.queue]
        if busy != set(net.downloads[j]) | set(queued):
            return f"peer {j} marks pieces {sorted(busy)[:5]} busy but fetches {sorted(net.downloads[j])[:5]}"
        if len(queued) != len(set(queued)) or set(queued) != set(swarm.reserved[j]):
            return f"peer {j}'s reserved pieces disagree with its connections' queues"
        need = ~swarm.pieces.bits[j] & ~swarm.pieces.busy[j]
        if (
            not np.array_equal(need, swarm.pieces.need[j])
            or int(need.sum()) != swarm.pieces.free[j]
        ):
            return f"peer {j}'s needed-piece mask is out of date"
        if swarm.pieces.bits[j][list(swarm.pieces.partial[j])].any():
            return f"peer {j} keeps a partial copy of a piece it has"
    return "ok"
