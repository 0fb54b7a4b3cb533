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
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from swarmsim.api.tables import TABLES
from swarmsim.errors import ResultError
from swarmsim.recorder import CORE_TABLES
from swarmsim.version import __version__

MANIFEST = "manifest.json"


class Result:
    """The tables of one run (simulated or live), by name, and its manifest.

    Tables read as attributes (``r.peers``); a declared table the run did not write (a
    plug-in's, in a run without that plug-in) reads as its empty, typed self."""

    def __init__(
        self,
        tables: dict[str, pd.DataFrame] | None = None,
        manifest: dict[str, Any] | None = None,
        path: Path | None = None,
        **named: pd.DataFrame,
    ):
        self.tables = {name: TABLES[name].empty() for name in CORE_TABLES}
        self.tables.update(tables or {})
        self.tables.update(named)
        self.manifest = manifest if manifest is not None else {}
        self.path = path

    def __getattr__(self, name: str) -> pd.DataFrame:
        if name.startswith("_") or name in ("tables", "manifest", "path"):
            raise AttributeError(name)
        return self.table(name)

    def table(self, name: str) -> pd.DataFrame:
        """Table ``name``: the run's, or a declared table's empty self."""
        if name in self.tables:
            return self.tables[name]
        if name in TABLES:
            return TABLES[name].empty()
        raise AttributeError(f"no table {name!r}: this run has {sorted(self.tables)}")

    @property
    def summary(self) -> dict[str, Any]:
        """The run's headline metrics (the manifest's ``summary``)."""
        return self.manifest.get("summary", {})

    @property
    def scenario(self) -> dict[str, Any]:
        """The resolved scenario the run used."""
        return self.manifest.get("scenario", {})

    def write(self, out_dir: str | Path) -> Path:
        """Store every table and the manifest in ``out_dir`` (the manifest last)."""
        out = prepare_folder(out_dir)
        for name, frame in self.tables.items():
            tmp = out / f".{name}.parquet.tmp"
            frame.to_parquet(tmp, index=False, engine="pyarrow")
            os.replace(tmp, out / f"{name}.parquet")
        write_manifest(out, self.manifest)
        self.path = out
        return out

    @classmethod
    def read(cls, path: str | Path, *, allow_failed: bool = False) -> Result:
        """A stored run: every ``NAME.parquet`` in the folder, whatever wrote it."""
        path = Path(path)
        mpath = path / MANIFEST
        if not mpath.is_file():
            raise ResultError(
                f"{path} has no {MANIFEST}: the run did not finish (or this is not a result folder)"
            )
        manifest = json.loads(mpath.read_text())
        if manifest.get("status") != "ok" and not allow_failed:
            raise ResultError(f"{path} is from a failed run: {manifest.get('error')}")
        tables = {f.stem: pd.read_parquet(f) for f in sorted(path.glob("*.parquet"))}
        return cls(tables, manifest=manifest, path=path)


def prepare_folder(out_dir: str | Path) -> Path:
    """Create ``out_dir`` and remove an old manifest and tables, so it no longer looks complete."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).unlink(missing_ok=True)
    for table in out.glob("*.parquet"):
        table.unlink()
    return out


def write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest.json`` through a rename, so it is never half-written."""
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
