"""The ``swarmsim`` command: run a scenario, check it, list plug-ins, print the schema."""

from __future__ import annotations

import json
import math
import signal
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from swarmsim.build import build_plugins
from swarmsim.errors import ResultError, ScenarioError, SwarmsimError
from swarmsim.policies import REGISTRIES
from swarmsim.safeyaml import read_yaml
from swarmsim.scenario import json_schema, load_scenario

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Discrete-event simulator of BitTorrent swarms with token incentives.",
)
console = Console()
err = Console(stderr=True)


def _plots():
    """``swarmsim.plots`` on the Agg backend: the CLI writes files and never opens a window,
    whatever the display (the module itself leaves the backend alone, for notebooks)."""
    import matplotlib

    matplotlib.use("Agg")
    from swarmsim import plots

    return plots


def _fail(exc: Exception, code: int = 2) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc}", markup=True, highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _load(path: Path, overrides: list[str] | None, seed: int | None = None):
    try:
        scenario = load_scenario(path, overrides=overrides)
        build_plugins(scenario, str(path))  # every plug-in constructs and has its hooks
        return scenario.with_seed(seed) if seed is not None else scenario
    except ScenarioError as exc:
        raise _fail(exc) from None


def _sigterm_as_interrupt() -> None:
    """SIGTERM ends a run like Ctrl-C does, so the result folder records the failure."""

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


def _default_out(root: Path, name: str, seed: int | None = None) -> Path:
    """``root/NAME`` (``root/NAME-seedS``); the name is a single folder name inside root."""
    if not name or Path(name).name != name or name.startswith("."):
        raise _fail(SwarmsimError(f"name {name!r} cannot name a folder inside {root}"))
    return root / (name if seed is None else f"{name}-seed{seed}")


@app.command()
def run(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file")],
    seed: Annotated[int | None, typer.Option(help="replace the scenario's seed")] = None,
    out: Annotated[
        Path | None, typer.Option(help="result folder (default results/NAME-seedSEED)")
    ] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override: path=value")] = None,
    plot: Annotated[bool, typer.Option(help="draw overview.png / .pdf into the folder")] = True,
    check: Annotated[bool, typer.Option(help="check invariants at every sample (slow)")] = False,
    force: Annotated[
        bool, typer.Option(help="replace a finished result already in the folder")
    ] = False,
) -> None:
    """Run one scenario and write its result folder (Parquet tables + manifest + figure).
    The folder is locked while the run writes it; one that holds a finished result is
    replaced only with --force."""
    from swarmsim.results import claim_folder

    sc = _load(scenario, set_, seed)
    out = out or _default_out(Path("results"), sc.name, sc.seed)
    try:
        lock = claim_folder(out, force=force)
    except SwarmsimError as exc:
        raise _fail(exc, 1) from None
    with lock:
        _run_into(sc, out, plot, check)


def _run_into(sc, out: Path, plot: bool, check: bool) -> None:
    """``swarmsim run`` once its folder is claimed: simulate, draw, summarise."""
    from swarmsim.simulate import simulate

    _sigterm_as_interrupt()
    horizon = sc.stop.max_time_s
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("t = {task.fields[t]:>9.0f} s"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task(sc.name, total=horizon, t=0.0)

        def progress(t: float) -> None:
            bar.update(task, completed=min(t, horizon), t=t)

        try:
            result = simulate(sc, out=out, check=check, progress=progress, force=True)
        except KeyboardInterrupt:
            err.print(f"interrupted: {out}/manifest.json records status failed")
            raise typer.Exit(130) from None
        except SwarmsimError as exc:
            raise _fail(exc, 1) from None
    if plot:
        plots = _plots()

        try:
            for f in plots.save(plots.overview(result), out / "overview"):
                console.print(f"figure: {f}")
        except OSError as exc:
            raise _fail(SwarmsimError(f"cannot write the figure into {out}: {exc}"), 1) from None
    _print_summary(result)
    console.print(f"results: {out}")
    if result.manifest["status"] != "ok":
        raise _fail(
            SwarmsimError(
                f"run finished with status {result.manifest['status']}: "
                f"{result.manifest['invariants']}"
            ),
            1,
        )


def _fmt(v) -> str:
    if isinstance(v, float):
        return "-" if math.isnan(v) else f"{v:,.3f}" if abs(v) < 10 else f"{v:,.0f}"
    return str(v)


def _print_summary(result) -> None:
    m, s = result.manifest, result.summary
    table = Table(title=f"{m['scenario']['name']} (seed {m['seed']})", show_header=False)
    rows = [
        ("peers done", f"{s['completed']} / {s['leechers']} leechers"),
        ("mean download time (s)", _fmt(s["mean_download_s"])),
        ("p90 download time (s)", _fmt(s["p90_download_s"])),
        ("upload utilisation", _fmt(s["upload_utilisation"])),
        ("seed copies (seed upload / file)", _fmt(s.get("seed_copies", math.nan))),
        ("simulated time (s)", f"{_fmt(m['sim_time_s'])} ({m['stop_reason']})"),
        ("wall time (s)", _fmt(m["wall_time_s"])),
    ]
    if m.get("events_per_s") is not None:  # a live run has no events
        rows.append(("events per second", _fmt(m["events_per_s"])))
    for k, v in rows:
        table.add_row(k, v)
    console.print(table)


@app.command()
def validate(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file, or a validation grid")],
    set_: Annotated[list[str] | None, typer.Option("--set", help="override: path=value")] = None,
    live_runs: Annotated[
        int, typer.Option(help="also run N live libtorrent swarms and compare")
    ] = 0,
    sim_runs: Annotated[int, typer.Option(help="simulator replications for the comparison")] = 3,
    tolerance: Annotated[float, typer.Option(help="allowed relative error of the median")] = 0.10,
    out: Annotated[Path | None, typer.Option(help="folder for runs, report and figure")] = None,
) -> None:
    """Check a scenario and print it resolved; with --live-runs, compare the simulator against
    live libtorrent peers on it and exit 1 when the median completion time is off by more than
    --tolerance. Given a validation grid (a file listing cases), compare every case and the
    trends between them against the grid's own tolerances: live runs are kept beside the grid
    (LIVE/CASE/live-K) and reused, --live-runs tops each case up to N."""
    if _is_grid(scenario):
        _validate_grid(scenario, live_runs, sim_runs, out)
        return
    sc = _load(scenario, set_)
    if not live_runs:
        console.print(yaml.safe_dump(sc.resolved(), sort_keys=False), end="", highlight=False)
        console.print(
            f"# ok: {sc.n_peers} peers, {sc.torrent.n_pieces} pieces, hash {sc.digest()[:12]}"
        )
        return
    plots = _plots()
    from swarmsim.live.compare import compare
    from swarmsim.live.harness import run_live
    from swarmsim.live.settings import check_live
    from swarmsim.simulate import simulate

    try:
        check_live(sc)
    except ScenarioError as exc:
        raise _fail(exc) from None
    out = out or Path("results") / "validate" / sc.name
    _sigterm_as_interrupt()
    sims = [  # regenerated on every call: the report is made of this call's runs
        simulate(sc, seed=sc.seed + k, out=out / f"sim-{k}", force=True) for k in range(sim_runs)
    ]
    lives = []
    for k in range(live_runs):
        r = run_live(sc, seed=sc.seed + k, out=out / f"live-{k}")
        if r.manifest["status"] == "ok":
            lives.append(r)
        else:
            err.print(f"live run {k} is invalid and left out: {r.manifest['error']}")
    if not lives:
        raise _fail(SwarmsimError("no valid live run to compare with"), 1)
    report = compare(sims, lives)
    (out / "validation.json").write_text(json.dumps(report, indent=2))
    fig = plots.figure("sim-vs-live", sims + lives)
    plots.save(fig, out / "sim-vs-live")
    m = report["median_s"]
    spread = "" if m["live_spread"] is None else f", live run-to-run spread {m['live_spread']:.1%}"
    console.print(
        f"median completion: sim {m['sim']:.1f} s, live {m['live']:.1f} s "
        f"({m['error']:+.1%}{spread})"
    )
    console.print(
        f"p90: sim {report['p90_s']['sim']:.1f} s, live {report['p90_s']['live']:.1f} s "
        f"({report['p90_s']['error']:+.1%}); per-peer median |error| "
        f"{report['per_peer_error']['median_abs']:.1%}; KS distance {report['ks_distance']:.2f}"
    )
    console.print(f"report: {out}/validation.json, figure: {out}/sim-vs-live.png")
    if abs(m["error"]) > tolerance:
        raise typer.Exit(1)


def _is_grid(path: Path) -> bool:
    try:
        data = read_yaml(path)
    except ScenarioError:
        return False  # loading it as a scenario names the fault
    return isinstance(data, dict) and "cases" in data


def _validate_grid(path: Path, live_runs: int, sim_runs: int, out: Path | None) -> None:
    """Every case of a validation grid: live runs (stored ones reused), simulator runs, the
    table and the verdict; exit 1 if any claim fails."""
    plots = _plots()
    from swarmsim.live import grid as vgrid

    def report(r: dict) -> None:
        console.print(
            f"{r['case']}: median sim {r['median_sim_s']:.1f} s, live {r['median_live_s']:.1f} s "
            f"({r['median_error']:+.1%}, {r['live_runs']} live runs); seed copies "
            f"{r['seed_copies_sim']:.2f} / {r['seed_copies_live']:.2f}",
            highlight=False,
            soft_wrap=True,
        )

    _sigterm_as_interrupt()
    try:
        g, rows, runs = vgrid.run_grid(path, sim_runs, live_runs, on_case=report, warn=err.print)
    except ScenarioError as exc:
        raise _fail(exc) from None
    if not rows:
        raise _fail(SwarmsimError("no case has a live run to compare with"), 1)
    out = out or Path("results") / "validation"
    out.mkdir(parents=True, exist_ok=True)
    verdict = vgrid.write_report(out, g, rows)
    plots.save(plots.grid_figure(rows, runs), out / "grid")
    for c in verdict["checks"]:
        if not c["ok"]:
            console.print(
                f"[red]fails[/]: {escape(c['check'])} ({c['value']:+.1%})", soft_wrap=True
            )
    mean = np.mean([abs(r["median_error"]) for r in rows])
    console.print(
        f"{sum(c['ok'] for c in verdict['checks'])} of {len(verdict['checks'])} claims hold; "
        f"mean |median error| {mean:.1%}; table {out}/grid.md, figure {out}/grid.png",
        soft_wrap=True,
    )
    if not verdict["ok"]:
        raise typer.Exit(1)


@app.command()
def live(
    scenario: Annotated[Path, typer.Argument(help="scenario YAML file (libtorrent choker)")],
    runs: Annotated[int, typer.Option(help="number of live runs")] = 1,
    out: Annotated[Path | None, typer.Option(help="folder (default results/live/NAME)")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override: path=value")] = None,
) -> None:
    """Run the scenario's peers as real libtorrent sessions at libtorrent's defaults, each on
    a loopback address of its own."""
    from swarmsim.live.harness import run_live

    sc = _load(scenario, set_)
    out = out or Path("results") / "live" / sc.name
    _sigterm_as_interrupt()
    for k in range(runs):
        try:
            r = run_live(sc, seed=sc.seed + k, out=out / f"run-{k}")
        except ScenarioError as exc:
            raise _fail(exc) from None
        except KeyboardInterrupt:
            err.print("interrupted: sessions shut down; the run folder records status failed")
            raise typer.Exit(130) from None
        _print_summary(r)
        console.print(f"run {k}: status {r.manifest['status']} -> {out / f'run-{k}'}")


@app.command()
def schema() -> None:
    """Print the JSON schema of scenario files."""
    print(json.dumps(json_schema(), indent=2))


@app.command()
def policies() -> None:
    """List every registered plug-in of every kind with its parameters and defaults."""
    for kind, registry in REGISTRIES.items():
        table = Table(title=f"{kind} - {registry.doc}", show_lines=True)
        table.add_column("name", style="bold")
        table.add_column("what")
        table.add_column("parameters (default)")
        for name, cls in registry:
            doc = (cls.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
            params = []
            for pname, field in cls.Params.model_fields.items():
                default = "required" if field.is_required() else repr(field.default)
                desc = f": {field.description}" if field.description else ""
                params.append(f"{pname} = {default}{desc}")
            table.add_row(name, doc, "\n".join(params) or "-")
        console.print(table)


@app.command()
def sweep(
    sweep_file: Annotated[Path, typer.Argument(help="sweep YAML file")],
    out: Annotated[
        Path | None, typer.Option(help="sweep folder (default results/sweeps/NAME)")
    ] = None,
    workers: Annotated[
        int, typer.Option(help="local worker processes (or LocalCluster workers)")
    ] = 1,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler, e.g. tcp://10.0.0.5:8786")
    ] = None,
    dask: Annotated[
        str | None, typer.Option(help="'local' for an embedded Dask LocalCluster")
    ] = None,
) -> None:
    """Run a parameter grid x replications; finished runs are skipped, failed ones retried."""
    from swarmsim.sweep import Sweep, run_sweep

    if dask not in (None, "local"):
        raise _fail(
            SwarmsimError(f"--dask takes 'local', not {dask!r}; for a cluster use --scheduler")
        )
    try:
        sw = Sweep.load(sweep_file)
    except ScenarioError as exc:
        raise _fail(exc) from None
    out = out or _default_out(Path("results") / "sweeps", sw.spec.name)
    _sigterm_as_interrupt()
    total = len(sw.runs)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn(
            "{task.completed}/{task.total} done, {task.fields[failed]} failed, "
            "{task.fields[left]} left"
        ),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task(sw.spec.name, total=total, failed=0, left=total)

        def progress(done: int, failed: int, left: int) -> None:
            bar.update(task, completed=done, failed=failed, left=left)

        try:
            counts = run_sweep(
                sw,
                out,
                workers=workers,
                scheduler=scheduler,
                dask_local=dask == "local",
                progress=progress,
            )
        except KeyboardInterrupt:
            err.print(f"interrupted: re-run the same command to finish {out}")
            raise typer.Exit(130) from None
        except ResultError as exc:
            raise _fail(exc, 1) from None
    console.print(
        f"{counts['total']} runs: {counts['skipped']} already done, {counts['ran']} ran, "
        f"{counts['failed']} failed -> {out}/summary.parquet, {out}/aggregate.parquet"
    )
    if counts["failed"]:
        raise typer.Exit(1)


@app.command()
def check(
    baseline: Annotated[Path, typer.Argument(help="baseline folder (baseline.yaml + values.json)")],
    update: Annotated[
        bool, typer.Option(help="rewrite the baseline with the current values")
    ] = False,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override: path=value")] = None,
    seed_offset: Annotated[int, typer.Option(help="use other seeds (noise check)")] = 0,
) -> None:
    """Re-run a baseline and say which outcomes moved; exits 1 if any did."""
    from swarmsim.check import check as run_check

    try:
        verdicts, changed = run_check(
            baseline, update=update, overrides=set_, seed_offset=seed_offset
        )
    except (ScenarioError, SwarmsimError) as exc:
        raise _fail(exc, 2) from None
    table = Table(
        title=f"{baseline}" + (" (scenario changed since the baseline)" if changed else "")
    )
    for col in ("metric", "baseline", "now", "change", "p", "tolerance", "verdict"):
        table.add_column(col)
    for v in verdicts:
        table.add_row(
            escape(v.metric),
            _fmt(v.baseline),
            _fmt(v.now),
            f"{v.change:+.1%}",
            f"{v.p_value:.3f}",
            f"{v.tolerance:.0%}",
            "[red]moved[/]" if v.moved else "ok",
        )
    console.print(table)
    if update:
        console.print(f"baseline rewritten: {baseline}/values.json")
    elif any(v.moved for v in verdicts):
        raise typer.Exit(1)


@app.command()
def plot(
    paths: Annotated[list[Path], typer.Argument(help="result folders, or one sweep folder")],
    kind: Annotated[
        str,
        typer.Option(
            help="overview, cdf, population, availability, heatmap, "
            "utilisation, tokens, compare, sim-vs-live"
        ),
    ] = "overview",
    out: Annotated[Path | None, typer.Option(help="file stem; .png and .pdf are written")] = None,
    metric: Annotated[
        str, typer.Option(help="summary metric for --kind compare")
    ] = "mean_download_s",
    by: Annotated[str, typer.Option(help="sweep column to group by for --kind compare")] = "label",
    size: Annotated[str, typer.Option(help="single or double column")] = "single",
) -> None:
    """Draw a paper-ready figure from result folders (or a sweep's summary)."""
    plots = _plots()

    if kind not in plots.KINDS:
        raise _fail(SwarmsimError(f"unknown --kind {kind!r}; kinds: {', '.join(plots.KINDS)}"))
    if size not in plots.WIDTHS:
        raise _fail(SwarmsimError(f"--size is single or double, not {size!r}"))
    try:
        fig = plots.figure(kind, plots.load(paths), size=size, metric=metric, by=by)
    except (ResultError, SwarmsimError) as exc:  # escaped: column names such as x[peer]
        raise _fail(SwarmsimError(escape(str(exc))), 1) from None
    stem = out or (paths[0] / f"{kind}")
    for f in plots.save(fig, stem):
        console.print(f"figure: {f}")


@app.command()
def show(folder: Annotated[Path, typer.Argument(help="result folder")]) -> None:
    """Print the summary of a finished run."""
    from swarmsim.results import Result

    try:
        result = Result.read(folder)
    except ResultError as exc:
        raise _fail(exc, 1) from None
    _print_summary(result)


if __name__ == "__main__":
    app()
