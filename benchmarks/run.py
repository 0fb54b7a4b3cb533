"""Run the reference benchmark scenarios and report wall time, peak memory and throughput.

    python benchmarks/run.py                  # flash-1k
    python benchmarks/run.py flash-10k        # any benchmarks/NAME.yaml (or a path)
    python benchmarks/run.py --profile flash-1k   # pyinstrument profile to benchmarks/NAME.html
    python benchmarks/run.py flash-1k --set "choker={name: libtorrent}"   # any override
    python benchmarks/run.py flash-1k --chokers   # every registered choker, ratio to mainline
    python benchmarks/run.py flash-1k flash-1k-bid  # bid within 1.5x of none
    python benchmarks/run.py flash-1k-bid --beside flash-1k   # the same, side by side
    python benchmarks/run.py flash-1k --chokers --beside flash-1k

This machine's speed drifts by 20 % within a day, so a ratio of two runs made at different
times says little. ``--beside REF`` runs each scenario while REF repeats on the other core and
divides by the mean of those repeats (each repeat starts while the scenario still runs).

Each scenario runs in a fresh process so that peak RSS is its own. Targets on a 2-core
machine: flash-1k < 8 s and > 50,000 piece transfers per wall second; flash-10k < 2 min and
< 2 GiB; flash-1k-bid within 1.5x of flash-1k.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = """
import json, sys, time
import swarmsim
t0 = time.perf_counter()
r = swarmsim.simulate(sys.argv[1], overrides=sys.argv[2:])
wall = time.perf_counter() - t0
m = r.manifest
print(json.dumps({"wall_s": wall, "events": m["events"], "pieces": len(r.pieces),
                  "sim_time_s": m["sim_time_s"], "status": m["status"],
                  "mean_download_s": m["summary"]["mean_download_s"]}))
"""


def run_one(path: Path, profile: bool, overrides: list[str]) -> dict:
    child = [str(path), *overrides]
    if profile:
        out = HERE / f"{path.stem}.html"
        cmd = [sys.executable, "-m", "pyinstrument", "-r", "html", "-o", str(out), "-c", CHILD]
        subprocess.run([*cmd, *child], check=True)
        return {"profile": str(out)}
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, *child], check=True, capture_output=True, text=True
    )
    elapsed = time.perf_counter() - t0
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row["process_s"] = elapsed
    # the largest child so far: run one scenario per invocation for a clean figure
    row["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    row["pieces_per_s"] = row["pieces"] / row["wall_s"]
    row["events_per_s"] = row["events"] / row["wall_s"]
    return row


def run_beside(path: Path, overrides: list[str], ref: Path) -> dict:
    """Run ``path`` while ``ref`` repeats beside it; the ratio to the repeats' mean wall."""
    cmd = [sys.executable, "-c", CHILD, str(path), *overrides]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    walls = []
    while proc.poll() is None:
        walls.append(run_one(ref, False, [])["wall_s"])
    out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"{path.stem} failed (exit {proc.returncode})")
    row = json.loads(out.strip().splitlines()[-1])
    row["pieces_per_s"] = row["pieces"] / row["wall_s"]
    row["beside_s"] = sum(walls) / len(walls)
    row["beside_runs"] = len(walls)
    row["ratio"] = row["wall_s"] / row["beside_s"]
    return row


def scenario_path(name: str) -> Path:
    return Path(name) if name.endswith(".yaml") else HERE / f"{name}.yaml"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("names", nargs="*", default=["flash-1k"])
    ap.add_argument("--profile", action="store_true")
    ap.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        help="scenario override path=value (repeatable)",
    )
    ap.add_argument(
        "--chokers",
        action="store_true",
        help="run each scenario once per registered choker and report the wall-time ratio to "
        "mainline (target: none more than 2x)",
    )
    ap.add_argument(
        "--beside",
        metavar="REF",
        help="run each scenario while REF (a benchmark name or path) repeats on the other "
        "core; report the ratio to REF's mean wall time",
    )
    args = ap.parse_args()
    variants = [[]]
    if args.chokers:
        from swarmsim.policies import CHOKERS

        names = sorted(CHOKERS.names(), key=lambda n: n != "mainline")
        variants = [[f"choker={{name: {n}}}"] for n in names]
    for name in args.names:
        path = scenario_path(name)
        base = None
        for extra in variants:
            overrides = [*args.overrides, *extra]
            if args.beside:
                row = run_beside(path, overrides, scenario_path(args.beside))
            else:
                row = run_one(path, args.profile, overrides)
            if "wall_s" in row and not args.beside:
                base = base or row["wall_s"]
                row["vs_first"] = row["wall_s"] / base
            label = " ".join([path.stem, *overrides])
            print(
                f"{label}: "
                + ", ".join(
                    f"{k}={v:,.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()
