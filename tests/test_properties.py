"""Property: any valid small scenario runs to its stop condition with every invariant holding
and never fails with anything but a documented swarmsim error."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import swarmsim
from tests.conftest import assert_invariants_ok

KiB = 1024


@st.composite
def scenarios(draw):
    piece = draw(st.sampled_from([16, 32, 64, 256])) * KiB
    n_pieces = draw(st.integers(1, 24))
    tail = draw(st.integers(0, piece // KiB - 1)) * KiB
    file_bytes = piece * n_pieces + tail if n_pieces else piece
    classes = [
        {
            "class": "seed",
            "count": draw(st.integers(1, 2)),
            "upload_bps": draw(st.floats(20_000, 500_000)),
            "download_bps": draw(st.floats(20_000, 500_000)),
            "starts_as": "seed",
        }
    ]
    for k in range(draw(st.integers(1, 3))):
        arrival = draw(
            st.sampled_from(
                [
                    {"name": "flash_crowd"},
                    {"name": "flash_crowd", "window_s": 30},
                    {"name": "poisson", "rate_per_s": 0.2},
                    {"name": "decaying", "lambda0_per_s": 0.5, "tau_s": 20},
                ]
            )
        )
        classes.append(
            {
                "class": f"c{k}",
                "count": draw(st.integers(1, 8)),
                "upload_bps": draw(st.sampled_from([0.0, 5_000.0, 40_000.0, 200_000.0])),
                "download_bps": draw(st.floats(10_000, 800_000)),
                "free_rider": draw(st.booleans()),
                "arrival": arrival,
            }
        )
    departure = draw(
        st.sampled_from(
            [
                {"name": "leave"},
                {"name": "stay"},
                {"name": "seed_for", "mean_s": 20},
                {"name": "seed_to_ratio", "ratio": 0.5, "max_s": 100},
                {"name": "leave", "abort_rate_per_s": 0.01},
            ]
        )
    )
    return {
        "name": "prop",
        "seed": draw(st.integers(0, 2**31)),
        "torrent": {"file_bytes": file_bytes, "piece_bytes": piece},
        "peers": classes,
        "departure": departure,
        "tracker": {
            "peers_per_announce": draw(st.integers(1, 10)),
            "max_connections": draw(st.integers(1, 12)),
            "min_peers": 2,
            "reannounce_interval_s": 60,
        },
        "choker": draw(
            st.sampled_from(
                [
                    {
                        "name": "mainline",
                        "unchoke_slots": draw(st.integers(1, 5)),
                        "interval_s": 2.0,
                    },
                    {"name": "mainline", "unchoke_slots": 4, "interval_s": 10.0},
                    {
                        "name": "libtorrent",
                        "unchoke_slots": draw(st.integers(1, 5)),
                        "interval_s": 5.0,
                        "allowed_fast_set_size": draw(st.sampled_from([0, 2, 5, 64])),
                    },
                    {"name": "libtorrent", "choking_algorithm": "rate_based", "interval_s": 5.0},
                ]
            )
        ),
        "picker": {
            "name": draw(st.sampled_from(["rarest_first", "random", "sequential", "libtorrent"]))
        },
        "timers": {"tick_s": draw(st.sampled_from([0.0, 1.0]))},
        "wire": {
            "handshake_s": draw(st.sampled_from([0.0, 0.5, 3.0])),
            "header_overhead": draw(st.booleans()),
        },
        "stop": {"all_done": True, "max_time_s": 3000},
        "record": {"sample_every_s": 10},
    }


def check_runs_with_invariants(data):
    result = swarmsim.simulate(data, check=True)
    assert_invariants_ok(result)
    p = result.peers
    assert (p.uploaded_bytes >= -1e-6).all() and (p.downloaded_bytes >= -1e-6).all()
    done = p[p.complete_s.notna() & ~p.starts_as_seed]
    assert (done.downloaded_bytes >= data["torrent"]["file_bytes"] * (1 - 1e-9)).all()
    assert result.manifest["sim_time_s"] <= 3000 + 1e-9


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_any_valid_scenario_runs_with_invariants(data):
    """30 examples in the default suite (a few seconds); -m slow draws 100."""
    check_runs_with_invariants(data)


@pytest.mark.slow
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_any_valid_scenario_runs_with_invariants_100_examples(data):
    check_runs_with_invariants(data)
