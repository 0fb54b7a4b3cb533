"""The ledger and the auction: properties that must hold for any sequence of operations."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmsim.ledger import MINT, Ledger
from swarmsim.policies.incentives import uniform_price_auction

N = 5
accounts = st.integers(-2, N - 1)  # -1 mints/burns, -2 is a pool
amounts = st.floats(0, 1e6, allow_nan=False, allow_infinity=False)
ops = st.lists(
    st.tuples(st.sampled_from(["transfer", "grant", "strict"]), accounts, accounts, amounts),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(ops, st.lists(st.floats(0, 100), min_size=N, max_size=N))
def test_any_sequence_of_operations_conserves_tokens(sequence, credit):
    ledger = Ledger(N, credit_limit=np.array(credit), reasons=("piece",))
    pool = ledger.pool("rewards", 500.0)
    assert pool == -2
    for op, payer, payee, amount in sequence:
        before = ledger.available(payer)
        if op == "grant":
            if payee >= 0:
                ledger.grant(payee, amount)
            continue
        moved = ledger.transfer(0.0, payer, payee, amount, "piece", partial=(op == "transfer"))
        assert 0 <= moved <= amount + 1e-9
        if payer != MINT and payer != payee:
            assert moved <= max(before, 0.0) + 1e-9  # nobody pays beyond balance + credit
        if op == "strict":
            assert moved in (0.0, amount)
        assert ledger.check() == "ok", ledger.check()
    table = ledger.payments_table()
    # conservation seen from the payments table alone: net flow into peers = their balances
    inflow = table.groupby("payee").amount.sum()
    outflow = table.groupby("payer").amount.sum()
    for peer in range(N):
        assert ledger.balance[peer] == pytest.approx(
            inflow.get(peer, 0.0) - outflow.get(peer, 0.0), rel=1e-9, abs=1e-6
        )


def test_credit_limit_holds_and_strict_payments_refuse():
    ledger = Ledger(2, credit_limit=10.0, reasons=("piece",))
    assert ledger.transfer(0, 0, 1, 25.0, "piece") == 10.0  # partial: all the credit line
    assert ledger.balance[0] == -10.0 and ledger.check() == "ok"
    assert ledger.transfer(0, 0, 1, 1.0, "piece", partial=False) == 0.0
    ledger.balance[:] = [-11.0, 11.0]  # a bug elsewhere would show up here
    assert "below its credit limit" in ledger.check()


bids_rows = st.lists(
    st.lists(st.floats(0, 100, allow_nan=False), min_size=1, max_size=12), min_size=1, max_size=6
)


@settings(max_examples=300, deadline=None)
@given(bids_rows, st.integers(1, 6))
def test_auction_price_is_the_highest_losing_bid_and_no_winner_pays_more(rows, k):
    width = max(len(r) for r in rows)
    bids = np.zeros((len(rows), width))
    eligible = np.zeros((len(rows), width), dtype=bool)
    for b, r in enumerate(rows):
        bids[b, : len(r)] = r
        eligible[b, : len(r)] = np.array(r) > 0
    winners, price = uniform_price_auction(bids, eligible, k, np.zeros_like(bids))
    for b in range(len(rows)):
        valid = sorted(bids[b][eligible[b]], reverse=True)
        assert winners[b].sum() == min(k, len(valid))
        assert not (winners[b] & ~eligible[b]).any()
        expected = valid[k] if len(valid) > k else 0.0
        assert price[b] == pytest.approx(expected)
        if winners[b].any():
            assert bids[b][winners[b]].min() >= price[b]  # nobody pays above its bid
            losers = eligible[b] & ~winners[b]
            if losers.any():
                assert bids[b][winners[b]].min() >= bids[b][losers].max()
