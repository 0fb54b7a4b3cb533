"""Piece pickers on hand-built views: rarest first, random first, strict priority, endgame."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from swarmsim.api.views import PickView
from swarmsim.policies.pieces import PICKERS, _partial_first

P = 10


def view(
    wanted, avail, have=8, partial=None, endgame=False, in_flight=None, uploader_has=None, rank=None
):
    rank = np.arange(P) if rank is None else np.asarray(rank)
    rarity = np.asarray(avail) * P + rank
    wanted = np.asarray(wanted, dtype=bool)
    return PickView(
        0,
        1,
        wanted,
        rarity,
        P,
        have,
        partial or {},
        endgame,
        in_flight or {},
        np.ones(P, bool) if uploader_has is None else np.asarray(uploader_has, bool),
    )


def pick(name, v, seed=0, **params):
    return PICKERS.build(name, params).pick(v, np.random.default_rng(seed))


def test_rarest_first_takes_the_least_available_wanted_piece():
    avail = [5, 1, 3, 0, 2, 2, 4, 1, 6, 7]
    wanted = [1, 1, 1, 0, 1, 1, 1, 1, 1, 1]  # piece 3 (availability 0) is not on offer
    assert pick("rarest_first", view(wanted, avail)) == 1  # tie 1 vs 7 broken by rank
    assert pick("rarest_first", view(wanted, avail, rank=[0, 9, 2, 3, 4, 5, 6, 1, 8, 7])) == 7


def test_random_first_pieces_ignore_rarity():
    avail = [0] + [9] * 9
    rank = [5, 1, 2, 3, 4, 0, 6, 7, 8, 9]  # piece 5 comes first in this peer's random order
    v = view([1] * P, avail, have=2, rank=rank)
    assert pick("rarest_first", v) == 5
    assert pick("rarest_first", view([1] * P, avail, have=4, rank=rank)) == 0


def test_partial_pieces_have_strict_priority():
    v = view([1] * P, [0] * P, partial={6: 16384.0, 2: 49152.0})
    assert pick("rarest_first", v) == 2  # the most complete partial first
    assert pick("sequential", v) == 2
    assert pick("random", v) == 2


def test_endgame_joins_the_in_flight_piece_with_fewest_sources():
    v = view(
        [0] * P,
        [0] * P,
        endgame=True,
        in_flight={3: 2, 4: 1, 5: 1},
        uploader_has=[1, 1, 1, 1, 0, 1, 1, 1, 1, 1],
    )
    assert pick("rarest_first", v) == 5  # 4 has one source too, but this uploader lacks it
    assert pick("rarest_first", v, endgame=False) is None


def test_nothing_to_pick_returns_none():
    assert pick("rarest_first", view([0] * P, [0] * P)) is None
    assert pick("random", view([0] * P, [0] * P)) is None
    assert pick("sequential", view([0] * P, [0] * P)) is None


def test_sequential_and_random():
    wanted = [0, 0, 1, 0, 1, 1, 0, 0, 0, 1]
    assert pick("sequential", view(wanted, [0] * P)) == 2
    seen = {pick("random", view(wanted, [0] * P), seed=s) for s in range(50)}
    assert seen == {2, 4, 5, 9}


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.integers(0, 63), st.integers(1, 16).map(lambda b: b * 16384.0), max_size=40),
    st.lists(st.booleans(), min_size=64, max_size=64),
)
def test_partial_first_takes_the_most_complete_wanted_piece_first_interrupted(partial, wanted):
    """Both code paths (a loop for a few partials, numpy for many) pick the piece with the
    most kept bytes among those the uploader can give, the earliest interrupted on ties."""
    v = PickView(0, 1, np.array(wanted), np.arange(64), 64, 8, partial, False, {}, None)
    fits = [(kept, -k, p) for k, (p, kept) in enumerate(partial.items()) if wanted[p]]
    expected = max(fits)[2] if fits else None
    assert _partial_first(v) == expected
