"""The libtorrent mechanisms of the model, each shown on its own: BEP 6 allowed-fast sets,
the request pipeline and whole-piece runs, connection set-up, header overhead."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from swarmsim.analysis.metrics import seed_copies
from swarmsim.api.views import PickView
from swarmsim.engine.allowed_fast import allowed_fast_set
from swarmsim.engine.swarm import Swarm, payload_share
from swarmsim.policies.pieces import PICKERS, expand_run
from swarmsim.recorder import Recorder
from tests.conftest import run

MiB = 1 << 20

LIBTORRENT = {
    "name": "lt",
    "seed": 3,
    "torrent": {"file_bytes": 8 * MiB, "piece_bytes": 262144},
    "peers": [
        {
            "class": "seed",
            "count": 1,
            "upload_bps": MiB,
            "download_bps": 4 * MiB,
            "starts_as": "seed",
        },
        {"class": "leech", "count": 8, "upload_bps": MiB, "download_bps": 4 * MiB},
    ],
    "departure": {"name": "stay"},
    "choker": {"name": "libtorrent", "unchoke_slots": 4},
    "picker": {"name": "libtorrent"},
    "bandwidth": {"name": "max_min"},
    "stop": {"all_done": True, "max_time_s": 900},
    "record": {"sample_every_s": 1},
}


def scenario(**changes) -> dict:
    data = copy.deepcopy(LIBTORRENT)
    for key, value in changes.items():
        data[key] = value
    return data


# --- BEP 6 ----------------------------------------------------------------------------------


def test_allowed_fast_set_matches_bep6s_published_example():
    """BEP 6, "Allowed Fast Set Generation": 1313 pieces, info-hash 0xaa * 20, 80.4.4.200."""
    info_hash = bytes([0xAA]) * 20
    assert allowed_fast_set("80.4.4.200", info_hash, 1313, 7) == [
        1059,
        431,
        808,
        1217,
        287,
        376,
        1188,
    ]
    assert allowed_fast_set("80.4.4.200", info_hash, 1313, 9)[7:] == [353, 508]
    # libtorrent hashes the whole address (send_allowed_set): other pieces, the same method
    unmasked = allowed_fast_set("80.4.4.200", info_hash, 1313, 9, mask=False)
    assert unmasked == [421, 309, 795, 1262, 381, 547, 10, 1003, 681]
    assert allowed_fast_set("80.4.4.200", info_hash, 4, 5) == [0, 1, 2, 3]  # k >= pieces


def served_while_choked(result) -> list[tuple[int, int, int]]:
    """(uploader, downloader, piece) of every piece that finished while its uploader
    choked its downloader."""
    u = result.unchokes
    out = []
    for row in result.pieces.itertuples():
        if row.from_peer < 0:
            continue
        mine = u[(u.uploader == row.from_peer) & (u.downloader == row.peer_id)]
        if not ((mine.start_s <= row.t_s) & (row.t_s <= mine.end_s)).any():
            out.append((row.from_peer, row.peer_id, row.piece))
    return out


def test_choked_peers_fetch_exactly_their_allowed_fast_pieces():
    """A peer choked by an uploader gets from it only pieces of its own allowed-fast set;
    with the set off, nothing reaches a choked peer."""
    data = scenario()
    sw = Swarm(load(data), Recorder())
    sets = {j: set(sw.allowed_fast.pieces(j, 5).tolist()) for j in range(sw.n_peers)}
    r = run(data)
    choked = served_while_choked(r)
    assert len(choked) >= 8  # every leecher pulls allowed-fast pieces from the seed at first
    assert all(piece in sets[j] for _, j, piece in choked)
    off = run(
        scenario(choker={"name": "libtorrent", "unchoke_slots": 4, "allowed_fast_set_size": 0})
    )
    assert served_while_choked(off) == []


def load(data):
    from swarmsim.scenario import load_scenario

    return load_scenario(data)


# --- request pipeline and whole pieces ----------------------------------------------------------


def test_expand_run_grows_around_the_rarest_piece_like_libtorrent():
    """piece_picker::expand_piece: down at most run - 1 pickable pieces, then up from there."""
    pickable = np.ones(10, bool)
    assert expand_run(5, 3, pickable) == [3, 4, 5]
    assert expand_run(1, 4, pickable) == [0, 1, 2, 3]
    pickable[4] = False
    assert expand_run(5, 3, pickable) == [5, 6, 7]
    assert expand_run(5, 1, pickable) == [5]


def pick_view(rate, queued=0.0, slow=False, received=0.0, have=10, n=64):
    wanted = np.ones(n, bool)
    rarity = np.arange(n)  # all unseen (availability 0), random order = index order
    return PickView(
        0,
        1,
        wanted,
        rarity,
        n,
        have,
        {},
        False,
        {},
        wanted,
        queued,
        rate,
        {},
        262144,
        16384,
        received,
        slow,
    )


def test_libtorrent_picker_reserves_whole_runs_ahead_and_blocks_when_slow():
    picker = PICKERS.build("libtorrent", {})
    rng = np.random.default_rng(0)
    # 256 KiB/s fetches a piece in 1 s: runs of 20 pieces (rate x 20 s), one run suffices
    assert picker.pick(pick_view(262144.0), rng) == list(range(20))
    # enough already reserved (3 s x rate): nothing more
    assert picker.pick(pick_view(262144.0, queued=3 * 262144.0), rng) == []
    # 8 kB/s cannot fetch a piece in 20 s: one piece, fetched block by block (an int)
    assert picker.pick(pick_view(8000.0), rng) == 0
    # slow start on a choked connection: 4 + blocks received requests, whole pieces
    slow = picker.pick(pick_view(30000.0, slow=True, received=64 * 16384.0), rng)
    assert isinstance(slow, list) and len(slow) * 16 >= 68
    off = PICKERS.build("libtorrent", {"whole_pieces_threshold_s": 0, "request_queue_time_s": 0})
    assert off.pick(pick_view(262144.0), rng) == 0  # one piece at a time, block by block


def max_reserved(data) -> int:
    sw = Swarm(load(data), Recorder(), check=True)
    most = 0
    feed = sw._feed

    def watching(f):
        nonlocal most
        feed(f)
        most = max(most, len(f.queue))

    sw._feed = watching
    sw.run()
    return most


def test_pipeline_off_reserves_nothing_and_whole_pieces_raise_the_seeds_copies():
    """Without a pipeline and whole-piece runs, no connection holds pieces ahead; with them
    (libtorrent's defaults) a connection reserves runs, leechers pull the same runs from the
    seed, and the seed uploads more copies of the file (live, 20 s vs 0: 1.42 vs 1.18)."""
    off = {"name": "libtorrent", "whole_pieces_threshold_s": 0, "request_queue_time_s": 0}
    assert max_reserved(scenario(picker=off)) == 0
    assert max_reserved(scenario()) >= 2
    copies_on = np.mean([seed_copies(run(scenario(), seed=s).peers, 8 * MiB) for s in (1, 2, 3)])
    copies_off = np.mean(
        [seed_copies(run(scenario(picker=off), seed=s).peers, 8 * MiB) for s in (1, 2, 3)]
    )
    assert copies_on > copies_off + 0.1, (copies_on, copies_off)


# --- wire --------------------------------------------------------------------------------------


@pytest.mark.parametrize("handshake", [0.0, 3.0])
def test_connections_carry_nothing_until_their_handshake_is_over(handshake):
    r = run(scenario(wire={"handshake_s": handshake}))
    first = r.pieces.t_s.min()
    piece_time = 262144 / MiB  # the seed alone, at full rate, needs this for one piece
    assert handshake + piece_time * 0.99 <= first < handshake + 12 * piece_time


def test_header_overhead_leaves_the_seed_its_payload_share():
    """libtorrent's caps count TCP/IP and message headers: payload runs at
    1 / (1 + 40/1460 + 13/16384) = 97.3 % of a cap. One seed, one leecher that can take it
    all: the download takes file / (cap x share)."""
    share = payload_share(16384)
    assert share == pytest.approx(0.9726, abs=1e-4)
    alone = scenario(
        peers=[
            {
                "class": "seed",
                "count": 1,
                "upload_bps": MiB,
                "download_bps": MiB,
                "starts_as": "seed",
            },
            {"class": "leech", "count": 1, "upload_bps": MiB, "download_bps": 8 * MiB},
        ]
    )
    for overhead, expected in ((False, 8.0), (True, 8.0 / share)):
        r = run({**alone, "wire": {"header_overhead": overhead}})
        assert r.peers.complete_s.max() == pytest.approx(expected, rel=2e-3), overhead
