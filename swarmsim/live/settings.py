"""What a live libtorrent run can honour, and each peer's libtorrent settings.

Every item of REFERENCES.md section 6 is a trap that silently invalidates a live run; each is
handled here and named in a comment. A scenario a live run cannot reproduce is refused with a
``ScenarioError`` that names the field and why.
"""

from __future__ import annotations

from swarmsim.errors import ScenarioError
from swarmsim.scenario import Scenario

MAX_LIVE_PEERS = 40  # sessions in one process on 2 cores; beyond this the host is the bottleneck
LIVE_DEPARTURES = {"leave", "stay", "seed_for"}


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
    if sc.picker.name not in ("rarest_first", "sequential"):
        problems.append(
            ("picker.name", f"{sc.picker.name!r}: libtorrent picks rarest first or sequentially")
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


def session_settings(sc: Scenario, upload_bps: float, download_bps: float) -> dict:
    """libtorrent settings for one peer, mirroring the scenario."""
    ch = sc.choker.params
    pk = sc.picker.params
    return {
        "listen_interfaces": "127.0.0.1:0",
        "outgoing_interfaces": "127.0.0.1",
        # nothing but loopback, and no discovery that would make peers dial themselves
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        # uTP would become the transport on loopback: another congestion controller
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
        # one address for every peer: else each session keeps one connection from 127.0.0.1
        "allow_multiple_connections_per_ip": True,
        # 100 ms ticks: per-second upload within ~1 % of the cap (500 ms quantises transfers)
        "tick_interval": 100,
        "upload_rate_limit": int(upload_bps),
        "download_rate_limit": int(download_bps),
        "rate_limit_ip_overhead": False,  # limits apply to payload, as the simulator's do
        "request_queue_time": 1,  # tames the 0-4x bursts of download caps
        # the allowed-fast set derives from the IP: on one address every leecher gets the same
        "allowed_fast_set_size": 0,
        # rarest first piece by piece, as the simulator's picker: libtorrent's default (20 s)
        # makes a leecher that can fetch a piece within 20 s ask for runs of contiguous
        # pieces, so all leechers pull the same pieces from the seed (live-small: the seed sent
        # 1.42 copies of the file instead of 1.18, and the median completion went from ~38 s
        # to 45 s)
        "whole_pieces_threshold": 0 if sc.picker.name == "rarest_first" else 20,
        "initial_picker_threshold": getattr(pk, "random_first_pieces", 4),
        "choking_algorithm": 0 if ch.choking_algorithm == "fixed_slots" else 2,
        "seed_choking_algorithm": {"round_robin": 0, "fastest_upload": 1, "anti_leech": 2}[
            ch.seed_choking_algorithm
        ],
        "unchoke_slots_limit": ch.unchoke_slots,
        "num_optimistic_unchoke_slots": ch.optimistic_slots,
        "unchoke_interval": int(round(ch.interval_s)),
        "optimistic_unchoke_interval": int(round(ch.optimistic_interval_s)),
        "seeding_piece_quota": ch.seeding_piece_quota,
        "connections_limit": sc.tracker.max_connections,
        "alert_mask": 0x7FFFFFFF,  # the default mask shows errors only
        "alert_queue_size": 100_000,  # the default 2000 silently drops the rest
        "active_downloads": -1,
        "active_seeds": -1,
        "active_limit": -1,
    }
