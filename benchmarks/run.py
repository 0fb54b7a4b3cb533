"""Run the reference benchmark scenarios and report wall time, peak memory and throughput.

    python benchmarks/run.py                  # flash-1k
    python benchmarks/run.py flash-10k        # any benchmarks/NAME.yaml (or a path)
    python benchmarks/run.py --profile flash-1k   # pyinstrument profile to benchmarks/NAME.html
    python benchmarks/run.py flash-1k --set "choker={name: libtorrent}"   # any override

Each scenario runs in a fresh process so that peak RSS is its own. Targets (ISSUE 2):
flash-1k < 20 s and > 50,000 piece transfers per wall second; flash-10k < 10 min, < 4 GiB.
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
    args = ap.parse_args()
    for name in args.names:
        path = Path(name) if name.endswith(".yaml") else HERE / f"{name}.yaml"
        row = run_one(path, args.profile, args.overrides)
        label = " ".join([path.stem, *args.overrides])
        print(
            f"{label}: "
            + ", ".join(
                f"{k}={v:,.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()
            )
        )


if __name__ == "__main__":
    main()
