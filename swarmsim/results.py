"""A result folder: Parquet tables plus ``manifest.json``, written so that nothing half-done
looks complete and no two runs share a folder.

A run claims its folder first (``claim_folder``): it takes an exclusive lock (``.lock``), so
a second writer fails at once; it refuses a folder that holds a finished result unless
forced, and one that holds files that are not a result at all; and it removes every file of
an earlier run (manifest, tables, figures, temporary files). Each table is written to a
temporary name and renamed, the manifest last (also via rename); a temporary file is removed
on every way out. A folder without a manifest is an interrupted run; a manifest with
``status: failed`` carries the error. ``Result.read`` refuses both unless asked.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import threading
import traceback
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from swarmsim.api.tables import TABLES
from swarmsim.errors import ResultError
from swarmsim.recorder import CORE_TABLES
from swarmsim.version import __version__

try:
    import fcntl
except ImportError:  # not POSIX: the lock file's existence is the lock
    fcntl = None

MANIFEST = "manifest.json"
LOCK = ".lock"
#: figures a run or ``swarmsim plot`` writes into a run folder (``swarmsim.plots.KINDS``)
FIGURES = (
    "overview",
    "cdf",
    "population",
    "availability",
    "heatmap",
    "utilisation",
    "tokens",
    "compare",
    "sim-vs-live",
)


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
        """Store every table and the manifest in ``out_dir`` (the manifest last), holding
        the folder's lock while it writes."""
        out = Path(out_dir)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _io_error(out, exc) from None
        with FolderLock(out):
            prepare_folder(out)
            try:
                for name, frame in self.tables.items():
                    with _temporary(out / f".{name}.parquet.tmp") as tmp:
                        frame.to_parquet(tmp, index=False, engine="pyarrow")
                        os.replace(tmp, out / f"{name}.parquet")
                write_manifest(out, self.manifest)
            except OSError as exc:  # a full or read-only disk
                raise _io_error(out, exc) from None
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
    """Create ``out_dir`` and remove every file of an earlier run in it (manifest, tables,
    figures, temporary files), so that nothing of it looks like part of the next one."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        for entry in out.iterdir():
            if entry.is_file() and _stale(entry.name):
                entry.unlink(missing_ok=True)
    except OSError as exc:
        raise _io_error(out, exc) from None
    return out


def _stale(name: str) -> bool:
    """A file a run (or ``swarmsim plot`` on it) wrote: ours to remove before the next."""
    if name == MANIFEST or name.endswith(".parquet"):
        return True
    if name.startswith(".") and name.endswith(".tmp"):
        return True
    stem, _, ext = name.rpartition(".")
    return ext in ("png", "pdf") and stem in FIGURES


def _io_error(out: Path, exc: OSError) -> ResultError:
    if isinstance(exc, FileExistsError | NotADirectoryError):
        return ResultError(f"cannot write results to {out}: a file is in the way of the folder")
    return ResultError(f"cannot write results to {out}: {exc.strerror or exc}")


def claim_folder(out_dir: str | Path, *, force: bool = False) -> FolderLock:
    """Lock ``out_dir`` for one run and clear it; returns the held lock (release it, or use
    it as a context manager). Refused, with a ``ResultError`` naming the folder, when another
    run holds it; when it holds a finished result and ``force`` is false; or when it holds
    files that are not a swarmsim result (choose an empty or new folder then)."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _io_error(out, exc) from None
    lock = FolderLock(out).acquire()
    if lock.nested:
        return lock  # this thread claimed it already (the CLI around simulate)
    try:
        _check_claim(out, force)
        prepare_folder(out)
    except BaseException:
        lock.release()
        raise
    return lock


def _check_claim(out: Path, force: bool) -> None:
    try:
        names = sorted(e.name for e in out.iterdir())
    except OSError as exc:
        raise _io_error(out, exc) from None
    if MANIFEST in names:
        try:
            old = json.loads((out / MANIFEST).read_text())
        except (OSError, ValueError):
            old = {}  # unreadable: nothing finished here
        if isinstance(old, dict) and old.get("status") == "ok" and not force:
            raise ResultError(
                f"{out} holds a finished run (seed {old.get('seed')}, started "
                f"{old.get('started_at')}); pass --force (force=True) to replace it, or "
                "choose another --out"
            )
        return
    foreign = [n for n in names if n != LOCK and not (_stale(n) and _ours(n))]
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise ResultError(
            f"{out} is not empty and holds no swarmsim result (it has {shown}); "
            "choose an empty or new --out"
        )


def _ours(name: str) -> bool:
    """Without a manifest, only a declared table counts as a run's (not any Parquet file)."""
    return not name.endswith(".parquet") or name[: -len(".parquet")] in TABLES


class FolderLock:
    """An exclusive lock on a result folder (its ``.lock`` file), held while one run writes
    it: a second writer, in any process, fails at once with a ``ResultError``. On POSIX it
    is an ``flock``, so a killed holder's lock goes with it. Re-entrant within a thread (a
    run that holds its folder can write its result there)."""

    _held: dict[tuple[str, int], list] = {}

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.path = self.folder / LOCK
        self._key = (str(self.folder.resolve()), threading.get_ident())
        self._mine = False
        self.nested = False  # this thread held the lock already when this one took it

    def acquire(self) -> FolderLock:
        """Take the lock (or, if this thread holds it already, enter it once more)."""
        if self._mine:
            return self
        held = self._held.get(self._key)
        self.nested = held is not None
        if held is not None:
            held[1] += 1
        else:
            self._held[self._key] = [self._take(), 1]
        self._mine = True
        return self

    def release(self) -> None:
        """Leave the lock; the last release removes the lock file and frees it."""
        if not self._mine:
            return
        self._mine = False
        held = self._held[self._key]
        held[1] -= 1
        if held[1] == 0:
            del self._held[self._key]
            self.path.unlink(missing_ok=True)  # before the close: no one waits on it
            os.close(held[0])

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def _busy(self, holder: str) -> ResultError:
        return ResultError(
            f"{self.folder} is being written by another run ({holder or 'holder unknown'}); "
            "wait for it to finish, or choose another --out"
        )

    def _take(self) -> int:
        me = (
            f"pid {os.getpid()} on {socket.gethostname()}, since "
            f"{datetime.now(UTC).isoformat(timespec='seconds')}"
        ).encode()
        try:
            if fcntl is None:
                try:
                    fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
                except FileExistsError:
                    raise self._busy(self.path.read_text(errors="replace")[:200]) from None
                os.write(fd, me)
                return fd
            for _ in range(20):  # the file may be removed by a holder between open and lock
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    holder = os.read(fd, 200).decode(errors="replace").strip()
                    os.close(fd)
                    raise self._busy(holder) from None
                try:
                    same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
                except FileNotFoundError:
                    same = False
                if same:
                    os.ftruncate(fd, 0)
                    os.write(fd, me)
                    return fd
                os.close(fd)
        except OSError as exc:
            raise _io_error(self.folder, exc) from None
        raise ResultError(f"{self.folder}: could not take its lock ({self.path})")


class _temporary:
    """A temporary file's path, removed however the block ends (unless renamed away)."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc) -> None:
        self.path.unlink(missing_ok=True)


def write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest.json`` through a rename, so it is never half-written."""
    with _temporary(out / f".{MANIFEST}.tmp") as tmp:
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
    # a full or read-only disk: the folder stays without a manifest, which reads as
    # incomplete; the run's own error is what the caller sees
    with contextlib.suppress(OSError):
        for entry in out.iterdir():  # no table of a run that failed while writing them
            if entry.name != MANIFEST and entry.is_file() and _stale(entry.name):
                entry.unlink(missing_ok=True)
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
