"""``simulate(scenario) -> Result``: one run with a fixed lifecycle (desmod's ``simulate``).

Build the swarm, run it, check the invariants, turn the recorder's rows into tables, and
write the result folder if asked. The folder is claimed before the run starts (locked,
cleared, and refused if it holds a finished result and ``force`` is false) and held until
the result is written. Whatever happens, a manifest says how the run ended.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from swarmsim.analysis.metrics import summarize
from swarmsim.build import blame, build_plugins
from swarmsim.engine.invariants import check_invariants
from swarmsim.engine.swarm import Swarm
from swarmsim.errors import PluginError, SwarmsimError
from swarmsim.recorder import PEERS, Recorder
from swarmsim.results import (
    Result,
    claim_folder,
    versions,
    write_failure,
)
from swarmsim.scenario import Scenario, load_scenario


def simulate(
    scenario: Scenario | dict | str | Path,
    *,
    seed: int | None = None,
    out: str | Path | None = None,
    check: bool = False,
    progress: Callable[[float], None] | None = None,
    overrides: list[str] | None = None,
    force: bool = False,
) -> Result:
    """Run one simulation; ``seed`` replaces the scenario's; ``check`` turns on invariant
    checks at every sample (slower, for tests). Writes ``out`` if given: a folder that holds
    a finished result is replaced only with ``force=True`` (else ``ResultError``), and one
    that another run is writing is refused."""
    if not isinstance(scenario, Scenario) or overrides:
        scenario = load_scenario(
            scenario.resolved() if isinstance(scenario, Scenario) else scenario, overrides=overrides
        )
    if seed is not None:
        scenario = scenario.with_seed(seed)
    manifest: dict[str, Any] = {
        "status": "running",
        "source": "sim",
        "scenario": scenario.resolved(),
        "scenario_hash": scenario.digest(),
        "seed": scenario.seed,
        "versions": versions(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    lock = claim_folder(out, force=force) if out is not None else None
    try:
        return _run(scenario, manifest, lock, check, progress)
    finally:
        if lock is not None:
            lock.release()


def _run(scenario: Scenario, manifest: dict, lock, check: bool, progress) -> Result:
    folder = lock.folder if lock is not None else None
    wall0 = time.perf_counter()
    try:
        recorder = Recorder(record_pieces=scenario.record.pieces)
        plugins = build_plugins(scenario)
        swarm = None
        try:
            swarm = Swarm(scenario, recorder, check=check, progress=progress, plugins=plugins)
            swarm.run()
        except SwarmsimError:
            raise
        except Exception as exc:
            culprit = blame(plugins, exc)
            if culprit is None:
                raise
            now = float(swarm.clock.now) if swarm is not None else 0.0
            raise PluginError(f"{culprit} raised {type(exc).__name__}: {exc}", now) from exc
        _settle_all(swarm)
        invariants = check_invariants(swarm, raise_on_failure=check)
        result = Result(
            peers=_peers_table(swarm),
            timeseries=recorder.timeseries_table(),
            pieces=recorder.pieces_table(),
            transfers=recorder.transfers_table(),
            unchokes=recorder.unchokes_table(),
            payments=swarm.economy.ledger.payments_table(),
            **recorder.extra_tables(),
        )
        wall = time.perf_counter() - wall0
        manifest.update(
            status="ok" if all(v == "ok" for v in invariants.values()) else "invariant_failed",
            error=None,
            wall_time_s=wall,
            events=swarm.events,
            events_per_s=swarm.events / wall if wall > 0 else None,
            pieces_transferred=int(len(result.pieces)) if scenario.record.pieces else None,
            sim_time_s=float(swarm.clock.now),
            stop_reason=swarm.stop_reason,
            invariants=invariants,
            tables={name: len(frame) for name, frame in result.tables.items()},
            summary=summarize(
                result.peers,
                result.timeseries,
                float(swarm.clock.now),
                result.payments,
                result.auctions,
                file_bytes=scenario.torrent.file_bytes,
            ),
        )
        result.manifest = manifest
        if folder is not None:
            result.write(folder)
    except BaseException as exc:  # KeyboardInterrupt too: the folder must say it failed
        write_failure(folder, manifest, exc, time.perf_counter() - wall0)
        raise
    return result


def _settle_all(swarm: Swarm) -> None:
    """Credit in-flight bytes up to the end time and hand open connections to the recorder."""
    for downloads in swarm.net.downloads:
        for dl in downloads.values():
            swarm.net.settle(dl)
    swarm.flush_transfers()
    for flows in swarm.net.out_flows:
        for f in flows.values():
            swarm._record_unchoke(f)


def _peers_table(swarm: Swarm):
    joined = np.flatnonzero(swarm.join_s <= swarm.clock.now)
    joined = joined[swarm.online[joined] | ~np.isnan(swarm.leave_s[joined])]
    names = np.array(swarm.class_names, dtype=object)
    return PEERS.frame(
        {
            "peer_id": joined,
            "peer_class": names[swarm.peer_class[joined]],
            "join_s": swarm.join_s[joined],
            "complete_s": swarm.complete_s[joined],
            "leave_s": swarm.leave_s[joined],
            "upload_bps": swarm.nominal_up_bps[joined],
            "download_bps": swarm.down_bps[joined],
            "uploaded_bytes": swarm.net.uploaded[joined],
            "downloaded_bytes": swarm.net.downloaded[joined],
            "starts_as_seed": swarm.starts_seed[joined],
            "aborted": swarm.aborted[joined],
            "tokens_start": swarm.economy.tokens_start[joined],
            "tokens_end": swarm.economy.ledger.balance[joined],
        },
    )
