"""Output tables: each declared once, by name, with its columns' dtypes.

The engine declares the core tables (``swarmsim.recorder``); a plug-in declares its own next
to its code and fills it through the ``Rows`` its context hands out, so adding a table
touches one file. ``Result`` holds a run's tables by name and writes each as
``NAME.parquet``.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Table:
    """A table's name, its columns (name -> pandas dtype, in order) and one line on what a
    row is."""

    name: str
    columns: Mapping[str, str]
    row: str

    def empty(self) -> pd.DataFrame:
        """The table with no rows, typed."""
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in self.columns.items()})

    def frame(self, data: Mapping[str, Sequence]) -> pd.DataFrame:
        """The table from one sequence per column, typed; every column must be there."""
        missing = set(self.columns) - set(data)
        if missing:
            raise KeyError(f"table {self.name} lacks columns {sorted(missing)}")
        return pd.DataFrame(
            {c: pd.Series(np.asarray(data[c]), dtype=t) for c, t in self.columns.items()}
        )


TABLES: dict[str, Table] = {}


def declare(name: str, columns: Mapping[str, str], row: str) -> Table:
    """Register table ``name``. Declaring it again with the same columns returns it (a module
    imported twice); with other columns it is an error, since two writers would clash."""
    table = Table(name, dict(columns), row)
    known = TABLES.get(name)
    if known is not None and dict(known.columns) != dict(columns):
        raise ValueError(f"table {name!r} is already declared with columns {list(known.columns)}")
    return TABLES.setdefault(name, table)


_NUMERIC = {"int32": "i", "int64": "q", "float64": "d", "bool": "b"}


class Rows:
    """Rows of one table, buffered column by column (numeric columns in compact arrays)."""

    def __init__(self, table: Table):
        self.table = table
        self._columns = {
            c: array(_NUMERIC[t]) if t in _NUMERIC else [] for c, t in table.columns.items()
        }

    def add(self, **values) -> None:
        """One row, every column by name."""
        self.extend(**{c: (v,) for c, v in values.items()})

    def extend(self, **columns: Sequence) -> None:
        """Several rows: one equally long sequence (or array) per column."""
        if set(columns) != set(self._columns):
            raise KeyError(
                f"table {self.table.name} has columns {list(self._columns)}, got {sorted(columns)}"
            )
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"table {self.table.name}: columns of different lengths {lengths}")
        for c, v in columns.items():
            self._columns[c].extend(np.asarray(v).tolist())

    def __len__(self) -> int:
        return len(next(iter(self._columns.values()), ()))

    def frame(self) -> pd.DataFrame:
        """The rows so far as the typed table."""
        return self.table.frame(self._columns)
