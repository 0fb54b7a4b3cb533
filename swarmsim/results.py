"""A result folder: Parquet tables plus ``manifest.json``, written so that nothing half-done
looks complete.

Writing removes any old manifest first, writes each table to a temporary name and renames it,
and writes the manifest last (also via rename). A folder without a manifest is an interrupted
run; a manifest with ``status: failed`` carries the error. ``Result.read`` refuses both unless
asked.
"""

from __future__ import annotations

import json
import os
import platform
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from swarmsim.errors import ResultError
from swarmsim.recorder import SCHEMAS, empty_table
from swarmsim.version import __version__

MANIFEST = "manifest.json"
TABLES = tuple(SCHEMAS)


@dataclass
class Result:
    """The tables of one run (simulated or live) and its manifest."""

    peers: pd.DataFrame
    timeseries: pd.DataFrame
    pieces: pd.DataFrame = field(default_factory=lambda: empty_table("pieces"))
    transfers: pd.DataFrame = field(default_factory=lambda: empty_table("transfers"))
    unchokes: pd.DataFrame = field(default_factory=lambda: empty_table("unchokes"))
    payments: pd.DataFrame = field(default_factory=lambda: empty_table("payments"))
    auctions: pd.DataFrame = field(default_factory=lambda: empty_table("auctions"))
    manifest: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def summary(self) -> dict[str, Any]:
        return self.manifest.get("summary", {})

    @property
    def scenario(self) -> dict[str, Any]:
        return self.manifest.get("scenario", {})

    def table(self, name: str) -> pd.DataFrame:
        return getattr(self, name)

    def write(self, out_dir: str | Path) -> Path:
        out = prepare_folder(out_dir)
        for name in TABLES:
            tmp = out / f".{name}.parquet.tmp"
            self.table(name).to_parquet(tmp, index=False, engine="pyarrow")
            os.replace(tmp, out / f"{name}.parquet")
        write_manifest(out, self.manifest)
        self.path = out
        return out

    @classmethod
    def read(cls, path: str | Path, *, allow_failed: bool = False) -> Result:
        path = Path(path)
        mpath = path / MANIFEST
        if not mpath.is_file():
            raise ResultError(
                f"{path} has no {MANIFEST}: the run did not finish (or this is not a result folder)"
            )
        manifest = json.loads(mpath.read_text())
        if manifest.get("status") != "ok" and not allow_failed:
            raise ResultError(f"{path} is from a failed run: {manifest.get('error')}")
        tables = {}
        for name in TABLES:
            f = path / f"{name}.parquet"
            tables[name] = pd.read_parquet(f) if f.is_file() else empty_table(name)
        return cls(**tables, manifest=manifest, path=path)


def prepare_folder(out_dir: str | Path) -> Path:
    """Create ``out_dir`` and remove an old manifest and tables, so it no longer looks complete."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)
    for name in TABLES:
        (out / f"{name}.parquet").unlink(missing_ok=True)
    return out


def write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    tmp = out / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=_jsonable))
    os.replace(tmp, out / MANIFEST)


def write_failure(out: Path | None, manifest: dict[str, Any], exc: BaseException, wall_s: float):
    """Record a run that raised (Ctrl-C included) as ``status: failed``: a folder that lost
    its run must never look complete."""
    if out is None:
        return
    manifest.update(
        status="failed",
        error=f"{type(exc).__name__}: {exc}",
        traceback=traceback.format_exc(),
        wall_time_s=wall_s,
    )
    write_manifest(out, manifest)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in a manifest")


def versions() -> dict[str, str]:
    """The versions a run's numbers depend on (read from the installed distributions)."""
    return {
        "swarmsim": __version__,
        "python": platform.python_version(),
        **{name: metadata.version(name) for name in ("numpy", "pandas", "pyarrow", "simpy")},
    }
