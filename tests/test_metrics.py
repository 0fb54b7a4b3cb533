"""Headline metrics computed from tables, on hand-made tables with known answers."""

from __future__ import annotations

import pandas as pd
import pytest

from swarmsim.analysis.metrics import availability, gini, lifetime, time_average, token_flows


def test_gini_known_values():
    assert gini([1, 1, 1, 1]) == pytest.approx(0.0)
    assert gini([0, 0, 0, 10]) == pytest.approx(0.75)  # (n - 1) / n for one holder of four
    assert gini([]) == 0.0 and gini([0, 0]) == 0.0


def test_availability_lifetime_and_time_average():
    ts = pd.DataFrame(
        {
            "t_s": [0, 10, 20, 30, 40],
            "min_piece_copies": [1, 2, 0, 1, 0],
            "leechers": [0, 4, 4, 2, 0],
        }
    )
    assert availability(ts) == pytest.approx(30 / 40)  # [0,20) and [30,40) have a full copy
    assert lifetime(ts) == 30
    assert time_average(ts, "leechers") == pytest.approx((0 + 40 + 40 + 20) / 40)


def test_token_flows_exclude_endowments():
    peers = pd.DataFrame({"peer_id": [0, 1, 2], "peer_class": ["a", "b", "b"]})
    payments = pd.DataFrame(
        {
            "payer": [-1, 1, 2, -1],
            "payee": [1, 0, 0, 2],
            "amount": [50.0, 3.0, 4.0, 1.0],
            "reason": ["initial", "piece", "piece", "seeding_reward"],
        }
    )
    flows = token_flows(peers, payments)
    assert flows.earned.tolist() == [7.0, 0.0, 1.0]
    assert flows.spent.tolist() == [0.0, 3.0, 4.0]
