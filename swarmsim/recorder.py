"""Collects rows while a run goes and turns them into typed DataFrames once at the end.

Column names and dtypes of every table are declared once, here (STYLE.md rule 5). Rows are
buffered in compact ``array`` columns, not Python tuples, so a 10-million-piece run fits in
memory.
"""

from __future__ import annotations

from array import array

import numpy as np
import pandas as pd

PEERS_SCHEMA = {
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
}
TIMESERIES_SCHEMA = {
    "t_s": "float64",
    "leechers": "int32",
    "seeds": "int32",
    "upload_rate_bps": "float64",
    "upload_capacity_bps": "float64",
    "min_piece_copies": "int32",
    "mean_piece_copies": "float64",
}
PIECES_SCHEMA = {"peer_id": "int32", "piece": "int32", "t_s": "float64", "from_peer": "int32"}
TRANSFERS_SCHEMA = {
    "uploader": "int32",
    "downloader": "int32",
    "bytes": "float64",
    "pieces": "int32",
}
UNCHOKES_SCHEMA = {
    "uploader": "int32",
    "downloader": "int32",
    "start_s": "float64",
    "end_s": "float64",
}
PAYMENTS_SCHEMA = {
    "t_s": "float64",
    "payer": "int32",
    "payee": "int32",
    "amount": "float64",
    "reason": "string",
}
AUCTIONS_SCHEMA = {
    "t_s": "float64",
    "provider": "int32",
    "bidders": "int32",
    "winners": "int32",
    "price_per_byte": "float64",
}
SCHEMAS = {
    "peers": PEERS_SCHEMA,
    "timeseries": TIMESERIES_SCHEMA,
    "pieces": PIECES_SCHEMA,
    "transfers": TRANSFERS_SCHEMA,
    "unchokes": UNCHOKES_SCHEMA,
    "payments": PAYMENTS_SCHEMA,
    "auctions": AUCTIONS_SCHEMA,
}


def empty_table(name: str) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in SCHEMAS[name].items()})


def typed(name: str, columns: dict) -> pd.DataFrame:
    schema = SCHEMAS[name]
    missing = set(schema) - set(columns)
    if missing:
        raise KeyError(f"table {name} lacks columns {sorted(missing)}")
    return pd.DataFrame({c: pd.Series(np.asarray(columns[c]), dtype=t) for c, t in schema.items()})


class Recorder:
    def __init__(self, record_pieces: bool = True):
        self.record_pieces = record_pieces
        self._pieces = (array("i"), array("i"), array("d"), array("i"))
        self._ts: list[tuple] = []
        self._unchokes = (array("i"), array("i"), array("d"), array("d"))
        self._auctions: list[tuple] = []
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

    def auctions(self, t: float, providers, bidders, winners, prices) -> None:
        """Several providers' auctions at one instant."""
        self._auctions.extend(
            zip(
                [t] * len(providers),
                np.asarray(providers).tolist(),
                np.asarray(bidders).tolist(),
                np.asarray(winners).tolist(),
                np.asarray(prices).tolist(),
                strict=True,
            )
        )

    def auctions_table(self) -> pd.DataFrame:
        cols = list(AUCTIONS_SCHEMA)
        data = list(zip(*self._auctions, strict=True)) if self._auctions else [[] for _ in cols]
        return typed("auctions", dict(zip(cols, data, strict=True)))

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
        return typed(
            "pieces",
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
        return typed(
            "unchokes",
            {
                k: np.frombuffer(v, np.int32 if v.typecode == "i" else np.float64) if v else []
                for k, v in cols.items()
            },
        )

    def timeseries_table(self) -> pd.DataFrame:
        cols = list(TIMESERIES_SCHEMA)
        data = list(zip(*self._ts, strict=True)) if self._ts else [[] for _ in cols]
        return typed("timeseries", dict(zip(cols, data, strict=True)))

    def transfers_table(self) -> pd.DataFrame:
        keys = sorted(self._pairs)
        return typed(
            "transfers",
            {
                "uploader": [k[0] for k in keys],
                "downloader": [k[1] for k in keys],
                "bytes": [self._pairs[k][0] for k in keys],
                "pieces": [self._pairs[k][1] for k in keys],
            },
        )
