"""Output tables: declared once by name, buffered as rows, held and stored by name."""

from __future__ import annotations

import pandas as pd
import pytest

from swarmsim.api.tables import TABLES, Rows, declare
from swarmsim.results import Result

PROBE = declare("probe", {"t_s": "float64", "peer": "int32", "note": "string"}, "probe event")


def test_rows_come_back_typed_in_declared_order():
    rows = Rows(PROBE)
    rows.add(t_s=1.5, peer=3, note="a")
    rows.extend(t_s=[2.0, 2.5], peer=[4, 5], note=["b", "c"])
    frame = rows.frame()
    assert list(frame.columns) == ["t_s", "peer", "note"]
    assert frame.dtypes.astype(str).tolist() == ["float64", "int32", "string"]
    assert frame.peer.tolist() == [3, 4, 5] and len(rows) == 3


def test_rows_name_what_is_wrong():
    rows = Rows(PROBE)
    with pytest.raises(KeyError, match="probe has columns"):
        rows.add(t_s=1.0, peer=2)
    with pytest.raises(ValueError, match="different lengths"):
        rows.extend(t_s=[1.0], peer=[1, 2], note=["x"])


def test_a_table_is_declared_once():
    assert declare("probe", dict(PROBE.columns), "again") is PROBE  # a module imported twice
    with pytest.raises(ValueError, match="already declared"):
        declare("probe", {"t_s": "float64"}, "other columns")
    assert TABLES["probe"] is PROBE


def test_a_result_stores_and_reads_every_table_by_name(tmp_path):
    rows = Rows(PROBE)
    rows.add(t_s=1.0, peer=7, note="x")
    stray = pd.DataFrame({"k": [1, 2]})  # a table nobody declared still round-trips
    r = Result(
        peers=TABLES["peers"].empty(), probe=rows.frame(), stray=stray, manifest={"status": "ok"}
    )
    r.write(tmp_path)
    back = Result.read(tmp_path)
    assert back.probe.peer.tolist() == [7] and back.stray.k.tolist() == [1, 2]
    assert len(back.auctions) == 0 and "price_per_byte" in back.auctions  # declared, not written
    with pytest.raises(AttributeError, match="no table 'nothing'"):
        _ = back.nothing
    # a rewrite into the folder leaves no table of the old run behind
    Result(manifest={"status": "ok"}).write(tmp_path)
    assert "probe" not in Result.read(tmp_path).tables
