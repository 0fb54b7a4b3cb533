"""Sweeps (local processes, Dask) and regression checks of designs against baselines."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from swarmsim.check import check
from swarmsim.cli import app
from swarmsim.errors import ScenarioError
from swarmsim.sweep import Sweep, run_sweep, seed_for

ROOT = Path(__file__).resolve().parents[1]
METRIC_COLUMNS = ["run_id", "seed", "status", "mean_download_s", "uploaded_bytes", "completed"]


def sweep_file(tmp_path, **extra) -> Path:
    spec = {
        "name": "t",
        "base": str(ROOT / "tests" / "tiny.yaml"),
        "grid": {"choker.unchoke_slots": [2, 4]},
        "zip": {"peers[1].count": [4, 6], "stop.max_time_s": [3000, 4000]},
        "replications": 2,
        "root_seed": 5,
        **extra,
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_grid_zip_and_seeds_from_the_root_sequence(tmp_path):
    sw = Sweep.load(sweep_file(tmp_path))
    assert len(sw.runs) == 2 * 2 * 2
    assert {(r.params["choker.unchoke_slots"], r.params["peers[1].count"]) for r in sw.runs} == {
        (2, 4),
        (2, 6),
        (4, 4),
        (4, 6),
    }
    assert [r.seed for r in sw.runs] == [seed_for(5, r.point, r.replication) for r in sw.runs]
    assert len({r.seed for r in sw.runs}) == len(sw.runs)


def test_every_point_is_validated_before_anything_runs(tmp_path):
    path = sweep_file(tmp_path, grid={"choker.unchoke_slots": [2, -1]})
    with pytest.raises(ScenarioError) as info:
        Sweep.load(path)
    assert any("point 2" in p and "unchoke_slots" in p for p, _ in info.value.problems)


def test_same_summary_with_one_worker_two_workers_and_a_dask_cluster(tmp_path):
    sw = Sweep.load(sweep_file(tmp_path))
    tables = []
    for name, kw in [
        ("one", {"workers": 1}),
        ("two", {"workers": 2}),
        ("dask", {"workers": 2, "dask_local": True}),
    ]:
        counts = run_sweep(sw, tmp_path / name, **kw)
        assert counts == {"total": 8, "skipped": 0, "ran": 8, "failed": 0}
        tables.append(pd.read_parquet(tmp_path / name / "summary.parquet")[METRIC_COLUMNS])
    pd.testing.assert_frame_equal(tables[0], tables[1])
    pd.testing.assert_frame_equal(tables[0], tables[2])
    agg = pd.read_parquet(tmp_path / "one" / "aggregate.parquet")
    assert len(agg) == 4 and (agg.n == 2).all()
    assert {"mean_download_s_mean", "mean_download_s_ci95", "choker.unchoke_slots"} <= set(
        agg.columns
    )


def test_rerun_completes_only_what_is_missing_or_failed(tmp_path):
    sw = Sweep.load(sweep_file(tmp_path))
    out = tmp_path / "s"
    run_sweep(sw, out)
    kept = out / "runs" / "p000-r00" / "manifest.json"
    stamp = kept.stat().st_mtime_ns
    shutil.rmtree(out / "runs" / "p001-r01")  # lost
    m = out / "runs" / "p002-r00" / "manifest.json"  # failed
    m.write_text(json.dumps({**json.loads(m.read_text()), "status": "failed"}))
    counts = run_sweep(sw, out)
    assert counts == {"total": 8, "skipped": 6, "ran": 2, "failed": 0}
    assert kept.stat().st_mtime_ns == stamp
    assert (pd.read_parquet(out / "summary.parquet").status == "ok").all()


def test_killed_sweep_resumes_where_it_stopped(tmp_path):
    path = sweep_file(tmp_path, replications=6)
    out = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "swarmsim", "sweep", str(path), "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("runs/*/manifest.json"))) < 3:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    done_before = {
        p.parent.name
        for p in out.glob("runs/*/manifest.json")
        if json.loads(p.read_text())["status"] == "ok"
    }
    assert 3 <= len(done_before) < 24
    counts = run_sweep(Sweep.load(path), out)
    assert counts["skipped"] == len(done_before) and counts["ran"] == 24 - len(done_before)
    assert (pd.read_parquet(out / "summary.parquet").status == "ok").all()


def copy_baseline(tmp_path, name):
    dest = tmp_path / name
    shutil.copytree(ROOT / "baselines" / name, dest)
    spec = yaml.safe_load((dest / "baseline.yaml").read_text())
    spec["scenario"] = str((ROOT / "baselines" / name / spec["scenario"]).resolve())
    (dest / "baseline.yaml").write_text(yaml.safe_dump(spec))
    return dest


def tiny_baseline(tmp_path, metrics, overrides=(), replications=3):
    """A baseline of tests/tiny.yaml with no values yet (the first check takes them): the
    mechanics of check and update at a fraction of a second a replication."""
    folder = tmp_path / "tiny-baseline"
    folder.mkdir()
    spec = {
        "scenario": str(ROOT / "tests" / "tiny.yaml"),
        "overrides": list(overrides),
        "replications": replications,
        "root_seed": 3,
        "metrics": {m: {"tolerance": t} for m, t in metrics.items()},
    }
    (folder / "baseline.yaml").write_text(yaml.safe_dump(spec))
    return folder


BASELINES = sorted(p.name for p in (ROOT / "baselines").iterdir() if p.is_dir())
# re-running these takes several seconds each: -m slow
SLOW_BASELINES = {"incentive-pay-per-piece"}


@pytest.fixture(scope="module")
def shipped():
    """check() of a shipped baseline as it stands (read only: no update, values exist),
    run once and shared by the tests that read it."""
    done = {}

    def get(name):
        if name not in done:
            done[name] = check(ROOT / "baselines" / name)
        return done[name]

    return get


def test_check_passes_unchanged_and_ignores_other_seeds(tmp_path, shipped):
    verdicts, changed = shipped("choker-mainline")
    assert not changed and not any(v.moved for v in verdicts)
    assert all(v.change == 0 for v in verdicts)  # same seeds, same code: identical
    verdicts, _ = check(copy_baseline(tmp_path, "choker-mainline"), seed_offset=1000)
    assert not any(v.moved for v in verdicts), verdicts


def test_check_fails_when_a_parameter_that_matters_changes(tmp_path):
    folder = copy_baseline(tmp_path, "choker-mainline")
    res = CliRunner().invoke(
        app, ["check", str(folder), "--set", "choker.unchoke_slots=1"], terminal_width=200
    )
    assert res.exit_code == 1 and "moved" in res.output


PAY_PER_PIECE = [
    "incentive={name: pay_per_piece, price_per_piece: 1.0}",
    "peers[1].tokens={mean: 100}",
    "peers[2].tokens={mean: 100}",
]


def test_check_flags_only_the_metrics_a_parameter_moves_small(tmp_path):
    """The tiny swarm paying per piece: doubling the price doubles the tokens that change
    hands and leaves downloads and seeding alone (nobody runs dry at 100 tokens)."""
    folder = tiny_baseline(
        tmp_path,
        {"tokens_between_peers": 0.15, "mean_seeding_s": 0.25, "mean_download_s": 0.15},
        overrides=PAY_PER_PIECE,
    )
    check(folder)  # takes the baseline
    verdicts, changed = check(folder, overrides=["incentive.price_per_piece=2.0"])
    assert changed
    assert {v.metric for v in verdicts if v.moved} == {"tokens_between_peers"}


@pytest.mark.slow
def test_check_flags_only_the_metrics_a_parameter_moves(tmp_path):
    folder = copy_baseline(tmp_path, "incentive-pay-per-piece")
    verdicts, changed = check(folder, overrides=["incentive.price_per_piece=2.0"])
    assert changed
    assert {v.metric for v in verdicts if v.moved} == {"tokens_between_peers"}


def test_update_rewrites_the_baseline(tmp_path):
    folder = tiny_baseline(tmp_path, {"mean_download_s": 0.10, "upload_utilisation": 0.10})
    check(folder)  # the baseline at 4 slots
    check(folder, update=True, overrides=["choker.unchoke_slots=2"])
    verdicts, changed = check(folder, overrides=["choker.unchoke_slots=2"])
    assert not changed and not any(v.moved for v in verdicts)
    assert all(v.change == 0 for v in verdicts)
    _, changed = check(folder)  # the 4-slot scenario is no longer the one stored
    assert changed


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_BASELINES else n for n in BASELINES],
    ids=BASELINES,
)
def test_shipped_baselines_hold(name, shipped):
    """CI guards the shipped designs: re-run every baseline under baselines/."""
    verdicts, changed = shipped(name)
    assert not changed, f"{name}: the scenario changed; re-take the baseline with --update"
    assert not any(v.moved for v in verdicts), verdicts
