"""Every plot kind drawn from small real results -- one run, several runs, a sweep folder and
simulator with live runs -- and checked as a reviewer would: TrueType fonts in the PDF, a
300 dpi PNG, legends off the data, labels inside the figure, shares within [0, 1], readable
labels made from what differs between the runs; and kinds without data refuse."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")  # the tests save files; importing swarmsim.plots selects no backend

import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import yaml  # noqa: E402
from matplotlib.text import Text  # noqa: E402
from PIL import Image  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

import swarmsim  # noqa: E402
from swarmsim import plots  # noqa: E402
from swarmsim.cli import app  # noqa: E402
from swarmsim.sweep import Sweep, run_sweep  # noqa: E402
from tests.conftest import TINY  # noqa: E402

PAY = {"name": "pay_per_piece", "price_per_piece": 1.0}
REWARD = {"name": "seeding_reward", "basis": "seconds", "rate": 6}


def tokens_scenario() -> dict:
    data = copy.deepcopy(TINY)
    data["departure"] = {"name": "stay"}
    data["incentive"] = dict(PAY)
    for pc in data["peers"][1:]:
        pc["tokens"] = {"mean": 30}
    return data


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def result():
    return swarmsim.simulate(tokens_scenario())


@pytest.fixture(scope="module")
def runs(result):
    """Two replications of pay_per_piece and one seeding_reward run."""
    other = tokens_scenario()
    other["incentive"] = dict(REWARD)
    return [result, swarmsim.simulate(result.scenario, seed=9), swarmsim.simulate(other)]


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    """A stored sweep: three incentive designs x two replications of the tokens scenario."""
    root = tmp_path_factory.mktemp("sweep")
    (root / "base.yaml").write_text(yaml.safe_dump(tokens_scenario()))
    spec = {
        "name": "tiny-designs",
        "base": "base.yaml",
        "grid": {"incentive": [{"name": "none"}, PAY, {"name": "bid"}]},
        "replications": 2,
        "metrics": ["mean_download_s", "availability", "completed"],
    }
    (root / "sweep.yaml").write_text(yaml.safe_dump(spec))
    run_sweep(Sweep.load(root / "sweep.yaml"), root / "out")
    return root / "out"


@pytest.fixture(scope="module")
def sim_live(result):
    sims = [result, swarmsim.simulate(result.scenario, seed=9)]
    live = swarmsim.simulate(result.scenario, seed=10)
    live.manifest = {**live.manifest, "source": "live"}  # stands in for a harness run
    return sims + [live]


def lines(ax):
    return [ln for ln in ax.get_lines() if not ln.get_label().startswith("_")]


# --- the reviewer's checks ---------------------------------------------------------------------


def data_points(ax) -> np.ndarray:
    """Display-space points, 1 px apart, along everything ``ax`` draws as data (lines with
    their steps, markers, error bars), clipped to the axes; and the boxes of bars and
    meshes. An independent sampler, not plots.covers."""
    pts, boxes = [], []
    for art in ax.get_children():
        if not art.get_visible() or art is ax.patch:
            continue
        if isinstance(art, matplotlib.lines.Line2D):
            xy = art.get_transform().transform(art.get_path().vertices)
            if art.get_linestyle() not in ("None", "none", "", " "):
                for a, b in zip(xy[:-1], xy[1:], strict=True):
                    if np.isfinite(a).all() and np.isfinite(b).all():
                        n = int(np.hypot(*(b - a))) + 2
                        pts.append(a + np.linspace(0, 1, n)[:, None] * (b - a))
            if art.get_marker() not in (None, "None", "none", "", " "):
                m = art.get_transform().transform(art.get_xydata())
                pts.append(m[np.isfinite(m).all(axis=1)])
        elif isinstance(art, matplotlib.collections.LineCollection):
            for seg in art.get_segments():
                s = art.get_transform().transform(seg)
                for a, b in zip(s[:-1], s[1:], strict=True):
                    n = int(np.hypot(*(b - a))) + 2
                    pts.append(a + np.linspace(0, 1, n)[:, None] * (b - a))
        elif isinstance(art, matplotlib.patches.Rectangle | matplotlib.collections.QuadMesh):
            boxes.append(art.get_window_extent())
    p = np.concatenate(pts) if pts else np.zeros((0, 2))
    box = ax.bbox
    inside = (p[:, 0] >= box.x0) & (p[:, 0] <= box.x1) & (p[:, 1] >= box.y0) & (p[:, 1] <= box.y1)
    return p[inside], boxes


def legends_clear_of_data(fig) -> list[str]:
    legends = [ax.get_legend() for ax in fig.axes if ax.get_legend()] + list(fig.legends)
    bad = []
    for leg in legends:
        box = leg.get_window_extent()
        for ax in fig.axes:
            p, boxes = data_points(ax)
            hit = (
                (p[:, 0] > box.x0 + 1)
                & (p[:, 0] < box.x1 - 1)
                & (p[:, 1] > box.y0 + 1)
                & (p[:, 1] < box.y1 - 1)
            )
            if hit.any() or any(b.width and b.height and box.overlaps(b) for b in boxes):
                bad.append(f"legend {[t.get_text() for t in leg.get_texts()]} on {ax.get_ylabel()}")
    return bad


def labels_fit(fig) -> list[str]:
    """Every text inside the figure; axis labels no longer than their panel; tick labels
    that do not run into each other."""
    bad = []
    fb = fig.bbox
    undrawn = set()  # labels of ticks outside the view limits, which matplotlib skips
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not lo - 1e-9 * abs(hi - lo) <= tick.get_loc() <= hi + 1e-9 * abs(hi - lo):
                    undrawn.update({id(tick.label1), id(tick.label2)})
    for t in fig.findobj(Text):
        if id(t) in undrawn:
            continue
        if t.get_visible() and t.get_text().strip() and t.get_figure(root=True) is fig:
            e = t.get_window_extent()
            if e.x0 < fb.x0 - 1 or e.x1 > fb.x1 + 1 or e.y0 < fb.y0 - 1 or e.y1 > fb.y1 + 1:
                bad.append(f"clipped: {t.get_text()!r}")
    for ax in fig.axes:
        if (
            ax.yaxis.label.get_text()
            and ax.yaxis.label.get_window_extent().height > ax.bbox.height + 1
        ):
            bad.append(f"y label taller than its panel: {ax.get_ylabel()!r}")
        if (
            ax.xaxis.label.get_text()
            and ax.xaxis.label.get_window_extent().width > ax.bbox.width + 1
        ):
            bad.append(f"x label wider than its panel: {ax.get_xlabel()!r}")
        if ticks_overlap([t for t in ax.get_xticklabels() if t.get_text()]):
            bad.append(f"x tick labels overlap: {[t.get_text() for t in ax.get_xticklabels()]}")
        if any("{" in t.get_text() for t in ax.get_xticklabels()):
            bad.append("raw JSON tick labels")
    return bad


def ticks_overlap(ticks) -> bool:
    """Upright labels: their boxes overlap. Labels turned by an angle: the distance between
    their parallel baselines (tick spacing x sin angle) is under their text height."""
    if not ticks:
        return False
    angle = np.radians(ticks[0].get_rotation())
    if angle == 0:
        boxes = [t.get_window_extent() for t in ticks]
        return any(a.overlaps(b) for a, b in zip(boxes, boxes[1:], strict=False))
    x = np.array([t.get_transform().transform(t.get_position())[0] for t in ticks])
    flat = []  # each label's height as drawn upright
    for t in ticks:
        rot = t.get_rotation()
        t.set_rotation(0)
        flat.append(t.get_window_extent().height)
        t.set_rotation(rot)
    return bool(np.min(np.abs(np.diff(x))) * np.sin(angle) < max(flat) - 1)


def shares_bounded(fig) -> list[str]:
    bad = []
    for ax in fig.axes:
        if ax.get_ylabel().replace("\n", " ").startswith(("share", "fraction")):
            for ln in ax.get_lines():
                y = np.asarray(ln.get_ydata(), dtype=float)
                y = y[np.isfinite(y)]
                if y.size and (y.min() < -1e-9 or y.max() > 1 + 1e-6):
                    bad.append(f"{ax.get_ylabel()!r}: {ln.get_label()} in [{y.min()}, {y.max()}]")
            if ax.get_ylim()[1] > 1.06:
                bad.append(f"{ax.get_ylabel()!r}: axis to {ax.get_ylim()[1]}")
    return bad


def pdf_fonts(path) -> tuple[int, int]:
    """(Type 3 fonts, TrueType fonts) in a PDF (font dictionaries are not compressed)."""
    data = path.read_bytes()
    return data.count(b"/Subtype /Type3"), data.count(b"/FontFile2")


def check_files(fig, tmp_path, name):
    w, h = fig.get_size_inches()
    png, pdf = plots.save(fig, tmp_path / name)
    type3, truetype = pdf_fonts(pdf)
    assert type3 == 0 and truetype > 0, f"{name}: {type3} Type 3 fonts, {truetype} TrueType"
    with Image.open(png) as im:
        assert im.info["dpi"] == pytest.approx((300, 300), abs=0.01), name
        assert im.size == (round(w * 300), round(h * 300)), name


DATASETS = ["run", "runs", "sweep", "sim+live"]
#: the default suite checks the files of each kind on several runs (where most lines and
#: legends are) and all of them with -m slow; each save takes 0.2-0.9 s
FILES = "runs"


@pytest.fixture(scope="module")
def sweep(sweep_dir):
    return plots.load(sweep_dir)  # its runs are read once, when a figure first needs them


@pytest.fixture
def dataset(request, result, runs, sweep, sim_live):
    return {
        "run": [result],
        "runs": runs,
        "sweep": sweep,
        "sim+live": sim_live,
    }[request.param]


def paper_ready(kind, data, tmp_path, name, files: bool) -> None:
    if kind == "sim-vs-live" and not any(
        r.manifest.get("source") == "live" for r in plots._runs_of(data)
    ):
        with pytest.raises(plots.PlotError, match="needs simulator and live runs"):
            plots.figure(kind, data)
        return
    fig = plots.figure(kind, data)
    fig.draw_without_rendering()  # the layout a save or a notebook draws
    assert not legends_clear_of_data(fig), legends_clear_of_data(fig)
    assert not labels_fit(fig), labels_fit(fig)
    assert not shares_bounded(fig), shares_bounded(fig)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    if len(panels) > 1:
        letters = [ax.get_title(loc="left")[:3] for ax in panels]
        assert letters == [f"({chr(97 + k)})" for k in range(len(panels))], letters
    if files:
        check_files(fig, tmp_path, name)


@pytest.mark.parametrize("dataset", DATASETS, indirect=True)
@pytest.mark.parametrize("kind", plots.KINDS)
def test_every_kind_on_every_dataset_is_paper_ready(kind, dataset, request, tmp_path):
    which = request.node.callspec.params["dataset"]
    files = which == FILES or kind == "sim-vs-live"
    paper_ready(kind, dataset, tmp_path, f"{kind}-{which}", files)


@pytest.mark.slow
@pytest.mark.parametrize("dataset", DATASETS, indirect=True)
@pytest.mark.parametrize("kind", plots.KINDS)
def test_every_figure_file_is_paper_ready(kind, dataset, request, tmp_path):
    paper_ready(kind, dataset, tmp_path, f"{kind}-{request.node.callspec.params['dataset']}", True)


# --- what each kind shows -----------------------------------------------------------------------


def grey(colour) -> float:
    """CIE lightness L* (0 black .. 100 white): what a colour prints as in grey."""
    r, g, b = (
        c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in mcolors.to_rgb(colour)
    )
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return 116 * y ** (1 / 3) - 16 if y > 0.008856 else 903.3 * y


def test_cdf_classes_by_capacity_apart_in_grey_with_the_kumar_ross_bound(result):
    flash = swarmsim.simulate(
        "scenarios/flash-crowd.yaml",
        overrides=["peers[1].count=3", "peers[2].count=3", "peers[3].count=3", "peers[4].count=3"],
    )
    ax = plots.figure("cdf", [flash]).axes[0]
    classes = [ln for ln in lines(ax) if "Kumar-Ross" not in ln.get_label()]
    leechers = flash.peers[~flash.peers.starts_as_seed]
    up = leechers.groupby("peer_class").upload_bps.mean()
    assert [ln.get_label() for ln in classes] == sorted(up.index, key=lambda c: -up[c])
    greys = [grey(ln.get_color()) for ln in classes]
    assert all(b - a >= 12 for a, b in zip(greys, greys[1:], strict=False)), greys
    assert len([ln for ln in lines(ax) if "Kumar-Ross" in ln.get_label()]) == 1
    ax = plots.figure("cdf", [result]).axes[0]
    fast = next(ln for ln in lines(ax) if ln.get_label() == "fast")
    assert fast.get_ydata()[-1] == pytest.approx(1.0)  # every fast peer finished
    assert ax.get_xlabel() == "download time (s)" and ax.get_ylabel() == "fraction of peers done"


def test_cdf_of_several_runs_labels_lines_by_what_differs(runs, sweep_dir):
    labels = [ln.get_label() for ln in lines(plots.figure("cdf", runs).axes[0])]
    assert labels[:2] == ["pay_per_piece (2 runs)", "seeding_reward"]
    pooled = lines(plots.figure("cdf", runs).axes[0])[0]
    assert len(pooled.get_xdata()) == 2 * 16 + 1  # both replications' 16 leechers
    fig = plots.figure("cdf", plots.load(sweep_dir))
    labels = [
        t.get_text()
        for leg in [*fig.legends, fig.axes[0].get_legend()]
        if leg
        for t in leg.get_texts()
    ]
    assert labels[:3] == ["none (2 runs)", "pay_per_piece (2 runs)", "bid (2 runs)"]
    # runs that differ only in their seed are told apart by it
    seeds = [ln.get_label() for ln in lines(plots.figure("cdf", runs[:2]).axes[0])]
    assert seeds[:2] == ["seed 7", "seed 9"]
    styles = {
        (ln.get_color(), ln.get_linestyle()) for ln in lines(plots.figure("cdf", runs).axes[0])
    }
    assert len(styles) == len(lines(plots.figure("cdf", runs).axes[0]))  # apart in grey too


def test_design_labels_are_short_and_name_what_varies():
    configs = [
        {"name": "s", "seed": 1, "incentive": {"name": "none"}},
        {"name": "s", "seed": 2, "incentive": {"name": "pay_per_piece", "price_per_piece": 0.5}},
        {"name": "s", "seed": 3, "incentive": {"name": "pay_per_piece", "price_per_piece": 1.0}},
    ]
    labels, dims = plots.design_labels(configs)
    assert labels == [
        "none",
        "pay_per_piece (price_per_piece 0.5)",
        "pay_per_piece (price_per_piece 1)",
    ]
    assert dims == ["incentive"]
    two = [
        {"choker": {"name": c}, "torrent": {"file_bytes": f}} for c in ("a", "b") for f in (1, 2)
    ]
    assert plots.design_labels(two)[0] == [
        "choker a, file_bytes=1",
        "choker a, file_bytes=2",
        "choker b, file_bytes=1",
        "choker b, file_bytes=2",
    ]
    assert plots.design_labels(two, by="choker")[0] == ["a", "a", "b", "b"]
    with pytest.raises(plots.PlotError, match="nothing called 'stop'"):
        plots.design_labels(two, by="stop")


def test_sim_vs_live_pools_runs_per_source_and_draws_progress(result, sim_live):
    fig = plots.figure("sim-vs-live", sim_live)
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


def test_utilisation_is_a_share_of_the_capacity_online_in_each_interval():
    data = copy.deepcopy(TINY)
    data["departure"] = {"name": "leave"}  # peers leave as they finish, mid-interval
    data["record"] = {"sample_every_s": 10}
    r = swarmsim.simulate(data, seed=1)
    ts = r.timeseries
    naive = ts.upload_rate_bps / ts.upload_capacity_bps.replace(0, np.nan)
    assert naive.max() > 1.3  # the interval's mean rate over the capacity left at its end
    t, share = plots.utilisation(r)
    # brute force: each interval's bytes over each peer's upload_bps x its time online in it
    p = r.peers
    edges = ts.t_s.to_numpy()
    leave = p.leave_s.fillna(np.inf).to_numpy()
    online = np.clip(
        np.minimum(leave, edges[1:, None]) - np.maximum(p.join_s.to_numpy(), edges[:-1, None]),
        0,
        None,
    )
    cap = online @ p.upload_bps.to_numpy()
    sent = ts.upload_rate_bps.to_numpy()[1:] * np.diff(edges)
    assert t == pytest.approx(edges[1:])
    assert share == pytest.approx(
        np.where(cap > 0, sent / np.where(cap > 0, cap, 1), np.nan), nan_ok=True
    )
    assert np.nanmax(share) <= 1 + 1e-9 and np.nanmin(share) >= 0
    # weighted by capacity, the intervals give the run's upload_utilisation
    assert sent.sum() / cap.sum() == pytest.approx(r.summary["upload_utilisation"], rel=1e-3)
    ax = plots.figure("utilisation", [r]).axes[0]
    assert ax.get_ylabel() == "share of upload capacity used" and ax.get_ylim() == (0, 1.05)


def test_availability_and_heatmap(result):
    ax = plots.figure("availability", [result]).axes[0]
    assert [ln.get_label() for ln in lines(ax)] == ["mean copies", "rarest piece"]
    fig = plots.figure("heatmap", [result])
    mesh = [c for c in fig.axes[0].collections if isinstance(c, matplotlib.collections.QuadMesh)][0]
    grid = mesh.get_array().reshape(16, -1)  # 16 pieces
    assert grid.min() >= 0 and grid.max() <= len(result.peers)
    # with everyone staying, by the last time bin nearly every peer holds every piece (a
    # piece completed at the very end time falls after the last bin)
    assert grid[:, -1].min() >= len(result.peers) - 1 and grid[:, -1].max() == len(result.peers)


def test_tokens_lorenz_and_earnings_by_capacity(result, sweep_dir):
    fig = plots.figure("tokens", [result])
    lorenz, bars = fig.axes[0], fig.axes[1]
    curve = lines(lorenz)[0]
    assert curve.get_ydata()[0] == 0 and curve.get_ydata()[-1] == pytest.approx(1.0)
    assert "Gini" in curve.get_label()
    assert [t.get_text() for t in bars.get_xticklabels()] == ["seed", "fast", "slow"]
    assert len(bars.patches) == 6  # earned and spent for three classes
    fig = plots.figure("tokens", plots.load(sweep_dir))  # 'none' moved no token: left out
    assert [t.get_text() for t in fig.axes[1].get_xticklabels()] == ["pay_per_piece", "bid"]
    assert "none" in fig.axes[1].get_xlabel()


def test_compare_groups_replications_with_intervals(runs):
    fig = plots.figure("compare", runs, metric="mean_download_s")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["pay_per_piece", "seeding_reward"]
    assert ax.get_xlabel().startswith("incentive")
    assert ax.get_ylabel() == "mean download time (s)"


def test_compare_intervals_stay_within_what_the_metric_can_take():
    table = pd.DataFrame(
        {"label": ["a"] * 3 + ["b"] * 3, "availability": [1.0, 1.0, 0.4, 0.1, 0.0, 0.05]}
    )
    fig = plots.figure("compare", [], metric="availability", table=table)
    assert not shares_bounded(fig), shares_bounded(fig)  # the t interval of 'a' passes 1
    ends = [y for ln in fig.axes[0].get_lines() for y in np.asarray(ln.get_ydata(), float)]
    assert max(ends) == pytest.approx(1.0) and min(ends) == pytest.approx(0.0)


def test_long_tick_labels_turn_and_edge_labels_stay_inside():
    names = ["seeding_reward", "pay_per_piece", "ratio_credit", "none", "bid", "swap"]
    table = pd.DataFrame({"label": names * 2, "mean_seeding_s": np.arange(12.0)})
    fig = plots.figure("compare", [], metric="mean_seeding_s", table=table)
    fig.draw_without_rendering()
    assert not labels_fit(fig), labels_fit(fig)
    fig, axes = plots.new_figure()
    axes[0, 0].plot([0, 100_000_000], [0, 1])
    axes[0, 0].set_xlim(0, 100_000_000)
    axes[0, 0].ticklabel_format(style="plain")
    plots.finish(fig)
    fig.draw_without_rendering()
    assert not labels_fit(fig), labels_fit(fig)


def test_kinds_without_data_refuse_with_a_reason(result, runs, tmp_path):
    bare = copy.deepcopy(TINY)
    bare["record"] = {"sample_every_s": 5, "pieces": False}
    bare_run = swarmsim.simulate(bare)
    with pytest.raises(
        plots.PlotError, match=r"heatmap needs piece records.*record\.pieces: false"
    ):
        plots.figure("heatmap", [bare_run])
    with pytest.raises(plots.PlotError, match="sim-vs-live needs simulator and live runs"):
        plots.figure("sim-vs-live", runs)
    with pytest.raises(plots.PlotError, match=r"no token moved .*incentive: none"):
        plots.figure("tokens", [bare_run])
    with pytest.raises(plots.PlotError, match="no values of 'nope'"):
        plots.figure("compare", runs, metric="nope")
    bare_run.write(tmp_path / "bare")
    res = CliRunner().invoke(app, ["plot", str(tmp_path / "bare"), "--kind", "tokens"])
    assert res.exit_code == 1 and "no token moved" in res.output
    assert len(res.output.strip().splitlines()) == 1, res.output
    assert not (tmp_path / "bare" / "tokens.png").exists()


def test_plot_sweep_draws_the_designs_side_by_side(sweep_dir, tmp_path):
    cli = CliRunner()
    res = cli.invoke(app, ["plot", str(sweep_dir), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    fig = plots.figure("overview", plots.load(sweep_dir))
    assert [ax.get_ylabel().replace("\n", " ") for ax in fig.axes] == [
        "mean download time (s)",
        "share of time with a full copy",
        "leechers that finished",
    ]
    for ax in fig.axes:
        assert [t.get_text() for t in ax.get_xticklabels()] == ["none", "pay_per_piece", "bid"]
        assert ax.get_xlabel() == "incentive"
    for args in ([], ["--by", "incentive"]):
        res = cli.invoke(
            app, ["plot", str(sweep_dir), "--kind", "compare", "--out", str(tmp_path / "c"), *args]
        )
        assert res.exit_code == 0, res.output
    fig = plots.figure("compare", plots.load(sweep_dir), by="incentive")
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["none", "pay_per_piece", "bid"]
    assert "label" not in fig.axes[0].get_xlabel() and "2 runs" in fig.axes[0].get_xlabel()
    # errors keep bracketed names (rich markup would eat "[slow]")
    res = cli.invoke(app, ["plot", str(sweep_dir), "--kind", "compare", "--metric", "nope"])
    assert res.exit_code == 1 and "mean_download_s[slow]" in res.output, res.output
    res = cli.invoke(app, ["plot", str(sweep_dir), "--kind", "compare", "--by", "choker"])
    assert res.exit_code == 1 and "varies incentive" in res.output, res.output


def test_a_summary_only_sweep_draws_compare_and_refuses_run_kinds(sweep_dir, tmp_path):
    folder = tmp_path / "stored"
    folder.mkdir()
    for name in ("summary.parquet", "sweep.json"):
        (folder / name).write_bytes((sweep_dir / name).read_bytes())
    sweep = plots.load(folder)
    assert json.loads((folder / "sweep.json").read_text())["name"] == sweep.name
    plots.figure("compare", sweep, metric=["availability", "mean_download_s"])
    with pytest.raises(plots.PlotError, match="without its run folders"):
        plots.figure("cdf", sweep)


def test_importing_plots_selects_no_backend():
    env = {**os.environ, "MPLBACKEND": "svg"}
    code = "import swarmsim.plots, matplotlib; print(matplotlib.get_backend())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "svg", out.stderr


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
