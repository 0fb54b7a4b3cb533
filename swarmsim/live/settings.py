"""What a live libtorrent run can honour, and each peer's libtorrent settings.

Each way a live run can silently depart from the scenario (local peers ignoring rate limits,
peer discovery, uTP on loopback, ...) is handled here and named in a comment. A scenario a live run cannot reproduce is refused with a
``ScenarioError`` that names the field and why.
"""

from __future__ import annotations

import hashlib
import json

from swarmsim.engine.allowed_fast import peer_address
from swarmsim.errors import ScenarioError
from swarmsim.scenario import Scenario

MAX_LIVE_PEERS = 48  # sessions in one process on 2 cores; beyond this the host is the bottleneck
LIVE_DEPARTURES = {"leave", "stay", "seed_for"}
# libtorrent alert categories: errors, status changes and finished pieces
ALERTS = 0x1 | 0x40 | 0x400000
# what a traced run adds: peers, connections, blocks, requests, uploads and the picker's log
TRACE_ALERTS = ALERTS | 0x2 | 0x20 | 0x10000 | 0x100000 | 0x800000 | 0x1000000


# parts of a scenario that only the simulator reads: the live swarm is the same without them
MODEL_ONLY = ("seed", "bandwidth", "wire", "timers", "record")


def live_digest(sc: Scenario) -> str:
    """sha256 of what a live run of ``sc`` depends on: runs of scenarios that differ only in
    the simulator's own model choices are runs of the same live experiment."""
    data = {k: v for k, v in sc.resolved().items() if k not in MODEL_ONLY}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def check_live(sc: Scenario) -> None:
    """Raise ``ScenarioError`` listing every field a live run cannot honour."""
    problems = []
    n = sc.n_peers
    if n > MAX_LIVE_PEERS:
        problems.append(
            (
                "peers",
                f"{n} peers: a live run on one machine handles at most "
                f"{MAX_LIVE_PEERS} libtorrent sessions",
            )
        )
    if sc.choker.name != "libtorrent":
        problems.append(
            (
                "choker.name",
                f"{sc.choker.name!r}: live peers run libtorrent's own "
                "choker; use {name: libtorrent, ...} to compare like with like",
            )
        )
    if sc.picker.name != "libtorrent":
        problems.append(
            (
                "picker.name",
                f"{sc.picker.name!r}: live peers run libtorrent's own picker; use "
                "{name: libtorrent, ...} to compare like with like",
            )
        )
    if sc.incentive.name != "none":
        problems.append(("incentive.name", f"{sc.incentive.name!r}: libtorrent moves no tokens"))
    if sc.tracker.peers_per_announce < n - 1:
        problems.append(
            (
                "tracker.peers_per_announce",
                f"{sc.tracker.peers_per_announce}: the live "
                f"harness connects every peer to every other, so it must be >= {n - 1}",
            )
        )
    if sc.tracker.max_connections < n - 1:
        problems.append(
            (
                "tracker.max_connections",
                f"{sc.tracker.max_connections}: a full mesh needs >= {n - 1}",
            )
        )
    for i, pc in enumerate(sc.peers):
        if pc.free_rider:
            problems.append((f"peers[{i}].free_rider", "libtorrent has no free-riding mode"))
        if pc.choker is not None and pc.choker.name != "libtorrent":
            problems.append((f"peers[{i}].choker", "live peers run libtorrent's choker"))
        dep = pc.departure or (None if pc.starts_as == "seed" else sc.departure)
        if dep is not None and dep.name not in LIVE_DEPARTURES:
            where = f"peers[{i}].departure" if pc.departure else "departure"
            problems.append((where, f"{dep.name!r}: live runs support {sorted(LIVE_DEPARTURES)}"))
        if dep is not None and dep.params.abort_rate_per_s > 0:
            where = f"peers[{i}].departure" if pc.departure else "departure"
            problems.append((f"{where}.abort_rate_per_s", "aborts are not replayed live"))
    if problems:
        raise ScenarioError(problems, f"{sc.name} (live)")


def session_settings(sc: Scenario, k: int, upload_bps: float, download_bps: float) -> dict:
    """libtorrent settings for peer ``k``: libtorrent's defaults, changed only where the
    scenario says otherwise or loopback forces it (each change names its reason)."""
    ch = sc.choker.params
    address = peer_address(k)
    return {
        # loopback: the peer's own address, for listening and for dialling out
        "listen_interfaces": f"{address}:6881",
        "outgoing_interfaces": address,
        # loopback: there is no network to discover peers or map ports on
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        # loopback: uTP's delay-based congestion control sees no queueing delay on a
        # loopback path; peers talk TCP, as the rate caps then govern alone
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        # scenario: the peer's capacities (payload plus protocol and IP overhead, as
        # libtorrent's default rate_limit_ip_overhead counts them)
        "upload_rate_limit": int(upload_bps),
        "download_rate_limit": int(download_bps),
        # scenario: the choker
        "choking_algorithm": {"fixed_slots": 0, "rate_based": 2}[ch.choking_algorithm],
        "seed_choking_algorithm": {"round_robin": 0, "fastest_upload": 1, "anti_leech": 2}[
            ch.seed_choking_algorithm
        ],
        "unchoke_slots_limit": ch.unchoke_slots,
        "num_optimistic_unchoke_slots": ch.optimistic_slots,
        "unchoke_interval": int(round(ch.interval_s)),
        "optimistic_unchoke_interval": int(round(ch.optimistic_interval_s)),
        "seeding_piece_quota": ch.seeding_piece_quota,
        "rate_choker_initial_threshold": int(ch.rate_choker_initial_threshold),
        "allowed_fast_set_size": ch.allowed_fast_set_size,
        **picker_settings(sc.picker),
        # scenario: the tracker's connection limit
        "connections_limit": sc.tracker.max_connections,
        # instrumentation, not behaviour: piece alerts reach the harness (the default mask
        # shows errors only, and the default queue of 2000 would drop some); the debug log
        # categories stay off, as their formatting costs the sessions CPU
        "alert_mask": ALERTS,
        "alert_queue_size": 100_000,
    }


def picker_settings(picker) -> dict:
    """libtorrent's picker settings from the scenario's ``libtorrent`` picker."""
    pk = picker.params
    return {
        "whole_pieces_threshold": int(round(pk.whole_pieces_threshold_s)),
        "initial_picker_threshold": pk.random_first_pieces,
        "request_queue_time": int(round(pk.request_queue_time_s)),
    }


def changed_settings(lt, applied: dict) -> dict:
    """The settings that differ from libtorrent's defaults, read back from a session's
    ``get_settings()`` output (what the manifest records)."""
    defaults = lt.default_settings()
    return {k: v for k, v in applied.items() if (defaults.get(k) or "") != (v or "")}
