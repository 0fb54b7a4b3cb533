"""Collects rows while a run goes and turns them into typed DataFrames once at the end.

The core tables are declared here (``swarmsim.api.tables.declare``); a plug-in declares its
own and fills it through ``Recorder.rows``. Rows are
buffered in compact ``array`` columns, not Python tuples, so a 10-million-piece run fits in
memory.
"""

from __future__ import annotations

from array import array

import numpy as np
import pandas as pd

from swarmsim.api.tables import Rows, Table, declare

PEERS = declare(
    "peers",
    {
        "peer_id": "int32",
        "peer_class": "string",
        "join_s": "float64",
        "complete_s": "float64",
        "leave_s": "float64",
        "upload_bps": "float64",
        "download_bps": "float64",
        "uploaded_bytes": "float64",
        "downloaded_bytes": "float64",
        "starts_as_seed": "bool",
        "aborted": "bool",
        "tokens_start": "float64",
        "tokens_end": "float64",
    },
    "peer that joined",
)
TIMESERIES = declare(
    "timeseries",
    {
        "t_s": "float64",
        "leechers": "int32",
        "seeds": "int32",
        "upload_rate_bps": "float64",
        "upload_capacity_bps": "float64",
        "min_piece_copies": "int32",
        "mean_piece_copies": "float64",
    },
    "sample",
)
PIECES = declare(
    "pieces",
    {"peer_id": "int32", "piece": "int32", "t_s": "float64", "from_peer": "int32"},
    "piece completion",
)
TRANSFERS = declare(
    "transfers",
    {"uploader": "int32", "downloader": "int32", "bytes": "float64", "pieces": "int32"},
    "(uploader, downloader) pair",
)
UNCHOKES = declare(
    "unchokes",
    {"uploader": "int32", "downloader": "int32", "start_s": "float64", "end_s": "float64"},
    "unchoke interval",
)
PAYMENTS = declare(
    "payments",
    {"t_s": "float64", "payer": "int32", "payee": "int32", "amount": "float64", "reason": "string"},
    "token movement",
)
#: the tables every run writes; a plug-in's own tables come on top
CORE_TABLES = ("peers", "timeseries", "pieces", "transfers", "unchokes", "payments")


class Recorder:
    def __init__(self, record_pieces: bool = True):
        self.record_pieces = record_pieces
        self._pieces = (array("i"), array("i"), array("d"), array("i"))
        self._ts: list[tuple] = []
        self._unchokes = (array("i"), array("i"), array("d"), array("d"))
        self._extra: dict[str, Rows] = {}
        self._pairs: dict[tuple[int, int], list] = {}

    def piece(self, t: float, peer: int, piece: int, from_peer: int) -> None:
        if self.record_pieces:
            p, q, ts, f = self._pieces
            p.append(peer)
            q.append(piece)
            ts.append(t)
            f.append(from_peer)

    def unchoke(self, up: int, down: int, start_s: float, end_s: float) -> None:
        """One interval during which ``up`` unchoked ``down`` (an upload slot held)."""
        u, d, a, b = self._unchokes
        u.append(up)
        d.append(down)
        a.append(start_s)
        b.append(end_s)

    def rows(self, table: Table) -> Rows:
        """The row buffer of a plug-in's table (made on first use; written with the run)."""
        if table.name not in self._extra:
            self._extra[table.name] = Rows(table)
        return self._extra[table.name]

    def extra_tables(self) -> dict[str, pd.DataFrame]:
        return {name: rows.frame() for name, rows in self._extra.items()}

    def sample(self, row: tuple) -> None:
        self._ts.append(row)

    def transfer(self, up: int, down: int, nbytes: float, pieces: int) -> None:
        """Add bytes and whole pieces that ``up`` sent ``down`` over one connection."""
        if nbytes <= 0 and pieces == 0:
            return
        acc = self._pairs.get((up, down))
        if acc is None:
            self._pairs[(up, down)] = [nbytes, pieces]
        else:
            acc[0] += nbytes
            acc[1] += pieces

    def pieces_table(self) -> pd.DataFrame:
        p, q, ts, f = self._pieces
        return PIECES.frame(
            {
                "peer_id": np.frombuffer(p, np.int32) if p else [],
                "piece": np.frombuffer(q, np.int32) if q else [],
                "t_s": np.frombuffer(ts, np.float64) if ts else [],
                "from_peer": np.frombuffer(f, np.int32) if f else [],
            },
        )

    def unchokes_table(self) -> pd.DataFrame:
        u, d, a, b = self._unchokes
        cols = {"uploader": u, "downloader": d, "start_s": a, "end_s": b}
        return UNCHOKES.frame(
            {
                k: np.frombuffer(v, np.int32 if v.typecode == "i" else np.float64) if v else []
                for k, v in cols.items()
            },
        )

    def timeseries_table(self) -> pd.DataFrame:
        cols = list(TIMESERIES.columns)
        data = list(zip(*self._ts, strict=True)) if self._ts else [[] for _ in cols]
        return TIMESERIES.frame(dict(zip(cols, data, strict=True)))

    def transfers_table(self) -> pd.DataFrame:
        keys = sorted(self._pairs)
        return TRANSFERS.frame(
            {
                "uploader": [k[0] for k in keys],
                "downloader": [k[1] for k in keys],
                "bytes": [self._pairs[k][0] for k in keys],
                "pieces": [self._pairs[k][1] for k in keys],
            },
        )
