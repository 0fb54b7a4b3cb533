"""Run a scenario's peers as real libtorrent sessions on 127.0.0.1 and record the same tables
as the simulator (``source: live``).

One process, one session per peer, each on a loopback address of its own (``peer_address``),
a full mesh of direct connections (every peer dials every peer already online), the
simulator's own join schedule (``plan_peers``), each peer's upload and download caps applied
through the global peer class. Sessions are always shut down, on errors and Ctrl-C too;
nothing outside 127.0.0.0/8 is contacted.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from swarmsim.engine.allowed_fast import peer_address
from swarmsim.engine.swarm import plan_peers
from swarmsim.live.checks import HostLoad, rate_check
from swarmsim.live.settings import (
    TRACE_ALERTS,
    changed_settings,
    check_live,
    session_settings,
)
from swarmsim.policies import DEPARTURES
from swarmsim.recorder import PEERS, PIECES, TIMESERIES, TRANSFERS
from swarmsim.results import Result, prepare_folder, versions, write_failure
from swarmsim.rng import Streams
from swarmsim.scenario import Scenario

POLL_S = 0.05
START_TIMEOUT_S = 10.0
SAMPLE_S = 1.0


def _lt():
    try:
        import libtorrent
    except ImportError as exc:  # pragma: no cover - the live extra is not installed
        from swarmsim.errors import SwarmsimError

        raise SwarmsimError("live runs need libtorrent: pip install 'swarmsim[live]'") from exc
    return libtorrent


def make_torrent(lt, folder: Path, sc: Scenario, seed: int):
    """The payload (seeded random bytes) and a v1 torrent of it (no SHA-256 merkle work)."""
    payload = folder / "payload.bin"
    rng = np.random.default_rng(seed)
    with payload.open("wb") as f:
        left = sc.torrent.file_bytes
        while left:
            n = min(left, 1 << 22)
            f.write(rng.integers(0, 256, n, dtype=np.uint8).tobytes())
            left -= n
    if hasattr(lt, "list_files"):  # libtorrent >= 2.1; add_files is deprecated there
        files = lt.list_files(str(payload))
    else:
        files = lt.file_storage()
        lt.add_files(files, str(payload))
    t = lt.create_torrent(files, sc.torrent.piece_bytes, flags=lt.create_torrent.v1_only)
    lt.set_piece_hashes(t, str(folder))
    return lt.torrent_info(t.generate()), payload


class LivePeer:
    """One peer: its libtorrent session is made when the peer joins, as a real client starts
    its session then (libtorrent's choker timers run from the session's start)."""

    def __init__(self, lt, pid, settings, info, save_path, is_seed, trace=False):
        self.lt = lt
        self.pid = pid
        self.address = peer_address(pid)
        self.wanted = settings
        self.info = info
        self.save_path = save_path
        self.trace = trace
        self.session = None
        self.handle = None
        self.port = 0
        self.settings: dict = {}
        self.is_seed = is_seed
        self.online = False
        self.pieces: set[int] = set()
        self.links: dict[int, tuple[float, float]] = {}  # remote pid -> (sent, received)

    def start(self, others: list[LivePeer]) -> None:
        lt = self.lt
        self.session = lt.session(self.wanted)
        if self.trace:
            self.session.apply_settings({"alert_mask": TRACE_ALERTS})
        # what the session really runs with, as far as it differs from the defaults
        self.settings = changed_settings(lt, self.session.get_settings())
        # loopback (forced): peers on 127.0.0.0/8 fall in libtorrent's local class, which
        # ignores rate limits and upload slots; map every address into the global class so
        # that the caps and the choker apply as they would between hosts
        flt = lt.ip_filter()
        cls = 1 << lt.session.global_peer_class_id
        flt.add_rule("0.0.0.0", "255.255.255.255", cls)
        flt.add_rule("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", cls)
        self.session.set_peer_class_filter(flt)
        atp = lt.add_torrent_params()
        atp.ti = self.info
        atp.save_path = str(self.save_path)
        flags = lt.torrent_flags
        # not auto-managed, so no queueing of torrents applies (one torrent per session);
        # the scenario's tracker makes the overlay, so no DHT or LSD for this torrent
        atp.flags = (atp.flags | flags.disable_dht | flags.disable_lsd) & ~(
            flags.auto_managed | flags.paused
        )
        # a seed checks its file when added, as a client does (seed_mode would defer each
        # piece's check to its first request, holding back pieces nobody asked for yet)
        self.handle = self.session.add_torrent(atp)
        self.port = self.session.listen_port()
        if not self.port:
            raise RuntimeError(f"libtorrent could not listen on {self.address}")
        ready = (lt.torrent_status.downloading, lt.torrent_status.seeding)
        deadline = time.perf_counter() + START_TIMEOUT_S
        while self.handle.status().state not in ready:  # connect_peer is dropped before
            if time.perf_counter() > deadline:
                raise RuntimeError(f"peer {self.pid}'s torrent did not start")
            time.sleep(0.001)
        self.online = True
        for other in others:  # full mesh: the newcomer dials everyone online
            self.handle.connect_peer((other.address, other.port))

    def totals(self) -> tuple[float, float]:
        if self.handle is None:
            return 0.0, 0.0
        st = self.handle.status()
        return float(st.total_payload_upload), float(st.total_payload_download)

    def snapshot_links(self, by_address: dict[str, int]) -> None:
        """Bytes per connection (the remote peer is known by its address)."""
        for p in self.handle.get_peer_info():
            other = by_address.get(p.ip[0])
            if other is not None:
                sent, got = self.links.get(other, (0.0, 0.0))
                self.links[other] = (
                    max(sent, float(p.total_upload)),
                    max(got, float(p.total_download)),
                )

    def stop(self) -> None:
        self.online = False
        self.handle.pause()


def run_live(
    sc: Scenario,
    *,
    seed: int | None = None,
    out: str | Path | None = None,
    work_dir: str | Path | None = None,
    progress=None,
    trace=None,
) -> Result:
    """One live run of ``sc``; the same manifest lifecycle as ``simulate``. ``trace``, if
    given, is called as ``trace(peer, t_s, alert)`` for every libtorrent alert (to study a
    mechanism: unchokes, requests, blocks)."""
    lt = _lt()
    check_live(sc)
    sc = sc.with_seed(seed) if seed is not None else sc
    folder = prepare_folder(out) if out is not None else None
    manifest = {
        "status": "running",
        "source": "live",
        "scenario": sc.resolved(),
        "scenario_hash": sc.digest(),
        "seed": sc.seed,
        "versions": {**versions(), "libtorrent": lt.__version__},
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    tmp = Path(tempfile.mkdtemp(prefix="swarmsim-live-", dir=work_dir))
    peers: list[LivePeer] = []
    t0 = time.perf_counter()
    try:
        result = _run(lt, sc, tmp, peers, manifest, progress, trace)
        result.manifest = manifest
    except BaseException as exc:
        write_failure(folder, manifest, exc, time.perf_counter() - t0)
        raise
    finally:
        for p in peers:
            if p.session is None:
                continue
            try:
                p.session.pause()
                p.session.remove_torrent(p.handle)
            except Exception:  # noqa: S110 - shutting down whatever state it is in
                pass
        peers.clear()
        shutil.rmtree(tmp, ignore_errors=True)
    if folder is not None:
        result.write(folder)
    return result


def _run(lt, sc: Scenario, tmp: Path, peers: list, manifest: dict, progress, trace) -> Result:
    streams = Streams(sc.seed)
    cls, join, starts_seed = plan_peers(sc, streams)
    n, n_pieces = len(join), sc.torrent.n_pieces
    info, payload = make_torrent(lt, tmp, sc, sc.seed)
    classes = sc.peers
    rng_depart = streams.get("departure")
    specs = [c.departure or (None if c.starts_as == "seed" else sc.departure) for c in classes]
    rules = [None if spec is None else spec.build(DEPARTURES) for spec in specs]
    rules = [rules[c] for c in cls]
    for k in range(n):
        pc = classes[cls[k]]
        save = tmp if starts_seed[k] else tmp / f"peer{k}"
        save.mkdir(exist_ok=True)
        peers.append(
            LivePeer(
                lt,
                k,
                session_settings(sc, k, pc.upload_bps, pc.download_bps),
                info,
                save,
                bool(starts_seed[k]),
                trace is not None,
            )
        )
    by_address = {p.address: p.pid for p in peers}
    complete = np.full(n, np.nan)
    leave = np.full(n, np.inf)
    left = np.full(n, np.nan)
    piece_rows: list[tuple[int, int, float]] = []
    samples: list[tuple] = []
    rates: dict[int, list[tuple[float, float]]] = {k: [] for k in range(n)}
    started = np.zeros(n, dtype=bool)

    def begin(k: int, now: float) -> None:
        started[k] = True
        peers[k].start([p for p in peers if p.online])
        if starts_seed[k]:
            peers[k].pieces = set(range(n_pieces))
            leave[k] = now + _seeding_time(rules[k], rng_depart)

    for k in np.flatnonzero(starts_seed & (join <= 0.0)).tolist():
        begin(k, 0.0)  # the swarm starts with its seeds online, their files checked
    start = time.perf_counter()
    host = HostLoad()
    next_sample = 0.0
    last_total = (0.0, 0.0)
    max_time = sc.stop.max_time_s
    while True:
        now = time.perf_counter() - start
        for k in np.flatnonzero(~started & (join <= now)).tolist():
            begin(k, now)
        for p in peers:
            if p.session is None:
                continue
            for a in p.session.pop_alerts():
                if trace is not None:
                    trace(p.pid, now, a)
                if isinstance(a, lt.piece_finished_alert) and not p.is_seed:
                    piece = int(a.piece_index)
                    if piece not in p.pieces:
                        p.pieces.add(piece)
                        piece_rows.append((p.pid, piece, now))
            if (
                p.online
                and not p.is_seed
                and len(p.pieces) == n_pieces
                and np.isnan(complete[p.pid])
            ):
                complete[p.pid] = now
                leave[p.pid] = now + _seeding_time(rules[p.pid], rng_depart)
        for k in np.flatnonzero(started & (leave <= now) & np.isnan(left)).tolist():
            peers[k].snapshot_links(by_address)
            peers[k].stop()
            left[k] = now
        if now >= next_sample:
            up_total = 0.0
            for p in peers:
                if p.online:
                    u, d = p.totals()
                    rates[p.pid].append((now, u))
                    up_total += u
                    p.snapshot_links(by_address)  # connections close (seed to seed): read often
            up_total += sum(r[-1][1] for k, r in rates.items() if r and not peers[k].online)
            online = [p for p in peers if p.online]
            copies = np.zeros(n_pieces)
            for p in online:
                copies[list(p.pieces)] += 1
            rate = (
                (up_total - last_total[1]) / (now - last_total[0]) if now > last_total[0] else 0.0
            )
            last_total = (now, up_total)
            samples.append(
                (
                    now,
                    sum(1 for p in online if len(p.pieces) < n_pieces),
                    sum(1 for p in online if len(p.pieces) == n_pieces),
                    rate,
                    float(sum(classes[cls[p.pid]].upload_bps for p in online)),
                    int(copies.min()) if online else 0,
                    float(copies.mean()) if online else 0.0,
                )
            )
            next_sample += SAMPLE_S
            if progress:
                progress(now)
        leechers_left = np.isnan(complete) & ~starts_seed & np.isnan(left)
        if (sc.stop.all_done and started.all() and not leechers_left.any()) or now >= max_time:
            break
        time.sleep(POLL_S)
    end = time.perf_counter() - start
    for p in peers:
        if p.online:
            p.snapshot_links(by_address)
    manifest["host"] = host.check(end)
    return _tables(
        sc, peers, cls, join, starts_seed, complete, left, piece_rows, samples, rates, end, manifest
    )


def _seeding_time(rule, rng) -> float:
    """How long a peer seeds once it has the file (initial seeds: from joining)."""
    return np.inf if rule is None else float(rule.seeding_time_s(rng))


def _tables(
    sc, peers, cls, join, starts_seed, complete, left, piece_rows, samples, rates, end, manifest
) -> Result:
    n = len(join)
    names = np.array([c.name for c in sc.peers], dtype=object)
    up = np.array(
        [
            peers[k].totals()[0] if peers[k].online else rates[k][-1][1] if rates[k] else 0.0
            for k in range(n)
        ]
    )
    down = np.array([peers[k].totals()[1] for k in range(n)])
    joined = np.flatnonzero(join <= end)
    peers_table = PEERS.frame(
        {
            "peer_id": joined,
            "peer_class": names[cls[joined]],
            "join_s": join[joined],
            "complete_s": complete[joined],
            "leave_s": left[joined],
            "upload_bps": [sc.peers[cls[k]].upload_bps for k in joined],
            "download_bps": [sc.peers[cls[k]].download_bps for k in joined],
            "uploaded_bytes": up[joined],
            "downloaded_bytes": down[joined],
            "starts_as_seed": starts_seed[joined],
            "aborted": np.zeros(len(joined), bool),
            "tokens_start": np.zeros(len(joined)),
            "tokens_end": np.zeros(len(joined)),
        },
    )
    pieces = PIECES.frame(
        {
            "peer_id": [r[0] for r in piece_rows],
            "piece": [r[1] for r in piece_rows],
            "t_s": [r[2] for r in piece_rows],
            "from_peer": [-1] * len(piece_rows),
        },
    )
    cols = [
        "t_s",
        "leechers",
        "seeds",
        "upload_rate_bps",
        "upload_capacity_bps",
        "min_piece_copies",
        "mean_piece_copies",
    ]
    ts = TIMESERIES.frame(
        dict(zip(cols, zip(*samples, strict=True), strict=True))
        if samples
        else {c: [] for c in cols},
    )
    # every connection is seen from both ends: each end reports what it sent
    links = [(a.pid, b, s) for a in peers for b, (s, _) in a.links.items()]
    transfers = TRANSFERS.frame(
        {
            "uploader": [x[0] for x in links],
            "downloader": [x[1] for x in links],
            "bytes": [x[2] for x in links],
            "pieces": [0] * len(links),
        },
    )
    first_done = float(np.nanmin(complete)) if np.isfinite(complete).any() else np.inf
    check = rate_check(sc, cls, starts_seed, rates, first_done)
    host = manifest.get("host", {"ok": True})
    from swarmsim.analysis.metrics import summarize

    errors = []
    if not check["valid"]:
        errors.append("measured upload rates differ from the limits by more than 5 % (see rates)")
    if not host["ok"]:
        errors.append(
            f"other processes used {host['other_cores']:.2f} cores of the host during the run "
            f"(allowed: {host['limit_cores']}; see host)"
        )
    manifest.update(
        status="invalid" if errors else "ok",
        error="; ".join(errors) or None,
        wall_time_s=end,
        sim_time_s=end,
        events=len(piece_rows),
        stop_reason="all_done",
        rates=check,
        libtorrent_settings={str(p.pid): p.settings for p in peers},
        invariants={
            "rates_within_limits": "ok" if check["valid"] else "failed",
            "host_otherwise_idle": "ok" if host["ok"] else "failed",
        },
    )
    result = Result(
        peers=peers_table, timeseries=ts, pieces=pieces, transfers=transfers, manifest=manifest
    )
    manifest["summary"] = summarize(peers_table, ts, end, file_bytes=sc.torrent.file_bytes)
    manifest["tables"] = {
        k: len(result.table(k)) for k in ("peers", "timeseries", "pieces", "transfers")
    }
    return result
