"""Every plot kind drawn from a small real result, checked for its content."""

from __future__ import annotations

import copy

import matplotlib
import numpy as np
import pytest
from typer.testing import CliRunner

import swarmsim
from swarmsim import plots
from swarmsim.cli import app
from tests.conftest import TINY


@pytest.fixture(scope="module")
def result():
    data = copy.deepcopy(TINY)
    data["departure"] = {"name": "stay"}
    data["incentive"] = {"name": "pay_per_piece", "price_per_piece": 1.0}
    for pc in data["peers"][1:]:
        pc["tokens"] = {"mean": 30}
    return swarmsim.simulate(data)


def lines(ax):
    return [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]


def test_cdf_one_line_per_class_and_the_kumar_ross_bound(result):
    fig = plots.figure("cdf", [result])
    ax = fig.axes[0]
    labels = [ln.get_label() for ln in lines(ax)]
    assert "slow" in labels and "fast" in labels
    bound = [lbl for lbl in labels if "Kumar-Ross" in lbl]
    assert len(bound) == 1
    assert ax.get_xlabel() == "download time (s)" and ax.get_ylabel() == "fraction of peers done"
    fast = next(ln for ln in lines(ax) if ln.get_label() == "fast")
    assert fast.get_ydata()[-1] == pytest.approx(1.0)  # every fast peer finished


def test_sim_vs_live_pools_runs_per_source_and_draws_progress(result):
    sims = [result, swarmsim.simulate(result.scenario, seed=9)]
    live = swarmsim.simulate(result.scenario, seed=10)
    live.manifest = {**live.manifest, "source": "live"}  # stands in for a harness run
    fig = plots.figure("sim-vs-live", sims + [live])
    cdf, progress = fig.axes
    assert [ln.get_label() for ln in lines(cdf)] == [
        "simulator (2 runs)",
        "live libtorrent (1 run)",
    ]
    pooled = lines(cdf)[0]
    n_leechers = int((~result.peers.starts_as_seed).sum())
    assert len(pooled.get_xdata()) == 2 * n_leechers + 1  # every leecher of both runs
    assert [ln.get_label() for ln in lines(progress)] == ["simulator", "live libtorrent"]
    for ln in lines(progress):
        y = np.asarray(ln.get_ydata())
        assert np.all(np.diff(y) >= 0) and y[-1] == pytest.approx(1.0)  # all pieces arrive
    assert progress.get_ylabel() == "share of pieces downloaded"


def test_population_and_fluid_reference():
    ps = swarmsim.simulate("scenarios/poisson-steady.yaml", overrides=["stop.max_time_s=600"])
    fig = plots.figure("population", [ps])
    labels = [ln.get_label() for ln in lines(fig.axes[0])]
    assert labels[:2] == ["leechers", "seeds"]
    assert any("fluid model: 30 leechers" in lbl for lbl in labels)
    assert fig.axes[0].get_ylabel() == "peers online"


def test_availability_utilisation_and_heatmap(result):
    ax = plots.figure("availability", [result]).axes[0]
    assert [ln.get_label() for ln in lines(ax)] == ["mean copies", "rarest piece"]
    ax = plots.figure("utilisation", [result]).axes[0]
    y = ax.get_lines()[0].get_ydata()
    assert np.nanmax(y) <= 1.0 + 1e-9 and ax.get_ylim()[1] <= 1.05
    fig = plots.figure("heatmap", [result])
    mesh = [c for c in fig.axes[0].collections if isinstance(c, matplotlib.collections.QuadMesh)][0]
    grid = mesh.get_array().reshape(16, -1)  # 16 pieces
    assert grid.min() >= 0 and grid.max() <= len(result.peers)
    # with everyone staying, by the last time bin nearly every peer holds every piece (a
    # piece completed at the very end time falls after the last bin)
    assert grid[:, -1].min() >= len(result.peers) - 1 and grid[:, -1].max() == len(result.peers)


def test_tokens_lorenz_and_earnings(result):
    fig = plots.figure("tokens", [result])
    lorenz, bars = fig.axes[0], fig.axes[1]
    curve = lines(lorenz)[0]
    assert curve.get_ydata()[0] == 0 and curve.get_ydata()[-1] == pytest.approx(1.0)
    assert "Gini" in curve.get_label()
    assert [t.get_text() for t in bars.get_xticklabels()] == ["fast", "seed", "slow"]
    assert len(bars.patches) == 6  # earned and spent for three classes


def test_compare_draws_means_with_intervals(result):
    other = swarmsim.simulate(TINY, seed=2)
    fig = plots.figure("compare", [result, other], metric="mean_download_s")
    ax = fig.axes[0]
    assert len(ax.get_xticklabels()) == 1  # both runs are scenario 'tiny'
    assert "(n=2)" in ax.get_xticklabels()[0].get_text()


def test_files_are_deterministic_and_the_cli_writes_them(result, tmp_path):
    result.write(tmp_path / "run")
    a = plots.save(plots.figure("cdf", [result]), tmp_path / "a")
    b = plots.save(plots.figure("cdf", [result]), tmp_path / "b")
    for x, y in zip(a, b, strict=True):
        assert x.read_bytes() == y.read_bytes()
    res = CliRunner().invoke(
        app, ["plot", str(tmp_path / "run"), "--kind", "tokens", "--out", str(tmp_path / "t")]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "t.png").stat().st_size > 5000 and (tmp_path / "t.pdf").is_file()
    res = CliRunner().invoke(app, ["plot", str(tmp_path / "run"), "--kind", "pie"])
    assert res.exit_code == 2 and "unknown --kind" in res.output
