"""The engine keeps its conservation laws and protocol rules, and is deterministic by seed."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

import swarmsim
from swarmsim.engine.invariants import check_invariants
from swarmsim.engine.swarm import Swarm
from swarmsim.recorder import Recorder
from swarmsim.scenario import load_scenario
from tests.conftest import assert_invariants_ok, run


def test_tiny_swarm_completes_with_invariants(tiny):
    r = run(tiny)
    assert_invariants_ok(r)
    leechers = r.peers[~r.peers.starts_as_seed]
    assert leechers.complete_s.notna().all()
    # bytes uploaded = bytes downloaded, and every leecher fetched exactly the file
    assert r.peers.uploaded_bytes.sum() == pytest.approx(r.peers.downloaded_bytes.sum(), rel=1e-9)
    file_bytes = tiny["torrent"]["file_bytes"]
    assert (leechers.downloaded_bytes >= file_bytes - 1e-6).all()
    # one pieces row per (leecher, piece), each from a peer that was online and had it
    assert len(r.pieces) == len(leechers) * 16
    assert not r.pieces.duplicated(["peer_id", "piece"]).any()
    # transfer totals per pair add up to the per-peer upload totals
    up = r.transfers.groupby("uploader").bytes.sum()
    assert np.allclose(up.reindex(r.peers.peer_id, fill_value=0).to_numpy(), r.peers.uploaded_bytes)


def test_no_peer_beats_its_download_capacity(tiny):
    r = run(tiny)
    done = r.peers[~r.peers.starts_as_seed]
    fastest = tiny["torrent"]["file_bytes"] / done.download_bps
    assert ((done.complete_s - done.join_s) >= fastest * (1 - 1e-9)).all()


def _digest(result) -> dict[str, str]:
    return {
        name: hashlib.sha256(
            pd.util.hash_pandas_object(result.table(name), index=True).to_numpy().tobytes()
        ).hexdigest()
        for name in ("peers", "timeseries", "pieces", "transfers")
    }


@pytest.mark.parametrize("incentive", ["none", "bid"])
def test_same_seed_identical_files_and_other_seed_differs(tiny, tmp_path, incentive):
    """Every table the run writes (bid adds payments and its auctions) is byte-identical
    for the same seed."""
    tiny["incentive"] = {"name": incentive}
    for pc in tiny["peers"]:
        pc["tokens"] = {"distribution": "fixed", "mean": 50.0}
    a = swarmsim.simulate(tiny, out=tmp_path / "a")
    b = swarmsim.simulate(tiny, out=tmp_path / "b")
    c = swarmsim.simulate(tiny, seed=8, out=tmp_path / "c")
    written = sorted(f.name for f in (tmp_path / "a").glob("*.parquet"))
    assert written == sorted(f"{name}.parquet" for name in a.tables)
    assert ("auctions.parquet" in written) == (incentive == "bid")
    for name in written:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    if incentive == "bid":
        assert len(a.auctions) > 0 and len(a.payments[a.payments.reason == "bid"]) > 0
    assert _digest(a) == _digest(b)
    assert _digest(a)["pieces"] != _digest(c)["pieces"]
    assert a.manifest["scenario_hash"] == c.manifest["scenario_hash"]


def test_partial_pieces_survive_chokes_and_are_finished_elsewhere(tiny):
    # Slow uploads and a short rechoke interval make choking mid-piece common.
    tiny["choker"] = {"name": "mainline", "interval_s": 2.0}
    tiny["peers"][1]["upload_bps"] = 8000
    sc = load_scenario(tiny)
    swarm = Swarm(sc, Recorder(), check=True)
    kept_seen = []
    original = swarm._on_abandon

    def spy(dl, kept):
        kept_seen.append((dl.peer, dl.piece, kept, dl.size - dl.remaining))
        original(dl, kept)

    swarm._on_abandon = spy
    swarm.net.on_abandon = spy
    swarm.run()
    assert kept_seen, "no download was ever cut by a choke"
    block = sc.torrent.block_bytes
    assert all(k % block == 0 and k <= got + 1e-6 for _, _, k, got in kept_seen)
    assert any(k > 0 for _, _, k, _ in kept_seen)
    # Every leecher still completed every piece: partials were finished by someone.
    assert all(swarm.pieces.have[swarm.starts_seed == 0] == sc.torrent.n_pieces)
    assert check_invariants(swarm)["bytes_conserved"] == "ok"


def test_endgame_fetches_last_pieces_from_several_peers(tiny):
    sc = load_scenario(tiny)
    swarm = Swarm(sc, Recorder(), check=True)
    multi = []
    original = swarm.net.complete

    def spy(dl):
        multi.append(len(dl.flows))
        return original(dl)

    swarm.net.complete = spy
    swarm.run()
    assert max(multi) >= 2  # some piece finished with several sources (endgame)
    tiny["picker"] = {"name": "rarest_first", "endgame": False}
    swarm = Swarm(load_scenario(tiny), Recorder(), check=True)
    multi.clear()
    original = swarm.net.complete
    swarm.net.complete = spy
    swarm.run()
    assert max(multi) == 1


def test_free_riders_upload_nothing_and_finish_later(tiny):
    tiny["peers"][1]["free_rider"] = True
    tiny["peers"][1]["upload_bps"] = 100_000
    tiny["peers"][2]["upload_bps"] = 100_000
    r = run(tiny)
    riders = r.peers[r.peers.peer_class == "slow"]
    sharers = r.peers[r.peers.peer_class == "fast"]
    assert (riders.uploaded_bytes == 0).all()
    assert riders.complete_s.notna().all()  # optimistic unchokes and the seed still serve them
    mean = lambda g: (g.complete_s - g.join_s).mean()  # noqa: E731
    assert mean(riders) > mean(sharers)  # tit-for-tat: same capacity, uploading pays


def test_departure_rules_and_abort(tiny):
    tiny["departure"] = {"name": "seed_to_ratio", "ratio": 0.5}
    r = run(tiny)
    left = r.peers[~r.peers.starts_as_seed & r.peers.leave_s.notna()]
    assert (left.uploaded_bytes >= 0.5 * left.downloaded_bytes - 1e-6).all()
    tiny["departure"] = {"name": "leave", "abort_rate_per_s": 0.05}
    r = run(tiny)
    aborted = r.peers[r.peers.aborted]
    assert len(aborted) > 0 and aborted.complete_s.isna().all() and aborted.leave_s.notna().all()
    done = r.peers[~r.peers.starts_as_seed & ~r.peers.aborted]
    assert (done.leave_s == done.complete_s).all()  # 'leave' departs at completion


def test_arrivals_follow_their_process(tiny, tmp_path):
    tiny["peers"][1]["arrival"] = {"name": "poisson", "rate_per_s": 0.5, "start_s": 10}
    tiny["peers"][2]["arrival"] = {"name": "flash_crowd", "start_s": 5, "window_s": 20}
    r = run(tiny)
    slow = r.peers[r.peers.peer_class == "slow"].join_s
    fast = r.peers[r.peers.peer_class == "fast"].join_s
    assert (slow >= 10).all() and slow.is_monotonic_increasing
    assert fast.between(5, 25).all()


def test_interrupted_run_leaves_failed_manifest(tiny, tmp_path):
    def boom(t):
        if t > 20:
            raise KeyboardInterrupt("test interrupt")

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        swarmsim.simulate(tiny, out=out, progress=boom)
    m = swarmsim.Result.read(out, allow_failed=True).manifest
    assert m["status"] == "failed" and "KeyboardInterrupt" in m["error"]
    assert not (out / "peers.parquet").exists()
    with pytest.raises(swarmsim.errors.ResultError, match="failed run"):
        swarmsim.Result.read(out)
    with pytest.raises(swarmsim.errors.ResultError, match="did not finish"):
        swarmsim.Result.read(tmp_path)


def test_rerun_into_same_folder_replaces_it_whole(tiny, tmp_path):
    out = tmp_path / "run"
    swarmsim.simulate(tiny, out=out)
    first = (out / "manifest.json").read_text()

    def boom(t):
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        swarmsim.simulate(tiny, out=out, progress=boom, force=True)
    assert (
        "failed" in (out / "manifest.json").read_text()
        and first != (out / "manifest.json").read_text()
    )
    assert not (out / "pieces.parquet").exists()  # no stale table next to a failed manifest


def _worst_lead(result) -> float:
    """Largest bytes a leecher sent a neighbour beyond what it got back (initial seeds left out;
    with leave-on-completion every other upload happens while the uploader is a leecher)."""
    seeds = set(result.peers.peer_id[result.peers.starts_as_seed])
    t = result.transfers.set_index(["uploader", "downloader"]).bytes
    back = t.reindex([(d, u) for u, d in t.index], fill_value=0.0).to_numpy()
    lead = pd.Series(t.to_numpy() - back, index=t.index)
    return float(lead[[u not in seeds for u, _ in lead.index]].max())


def test_block_tft_chokes_a_neighbour_within_a_piece_of_the_allowed_lead(tiny):
    """Bharambe et al.'s rule, checked after every piece sent: a leecher's lead over any
    neighbour never exceeds delta blocks plus the one piece in flight when it was crossed.
    Mainline on the same swarm runs far past it, so the check has teeth."""
    tiny["departure"] = {"name": "leave"}
    tiny["choker"] = {"name": "block_tft", "delta_blocks": 2}
    bound = 2 * 16384 + tiny["torrent"]["piece_bytes"]
    assert _worst_lead(run(tiny)) <= bound * (1 + 1e-9)
    tiny["choker"] = {"name": "mainline"}
    assert _worst_lead(run(tiny)) > 2 * bound


def test_interest_matrix_matches_bitfields_for_small_and_batched_calls(tiny):
    """Interest is computed from packed words, in one pass for a few peers and word by word
    for a batch; both must say what the boolean bitfields say."""
    tiny["peers"][1]["count"] = 30
    tiny["peers"][2]["count"] = 30
    tiny["torrent"]["file_bytes"] = 100 * 262144  # 100 pieces: two words, one partial
    tiny["stop"] = {"all_done": False, "max_time_s": 60}
    swarm = Swarm(load_scenario(tiny), Recorder(), check=True)
    swarm.run()
    nbr = swarm.conns.nb
    online = np.flatnonzero(swarm.online)
    have = swarm.pieces.bits.sum(axis=1)
    assert len(online) >= 32 and have[online].min() < have[online].max()  # mid-download
    for peers in (online, online[:3]):
        got = swarm.pieces.interest_matrix(peers, nbr[peers], nbr[peers] >= 0)
        for b, u in enumerate(peers):
            for s, j in enumerate(nbr[u]):
                want = j >= 0 and bool((swarm.pieces.bits[u] & ~swarm.pieces.bits[j]).any())
                assert got[b, s] == want, (u, s, j)
    # one downloader against several uploaders (a finished piece tests its parked links)
    for j in online[:5].tolist():
        ups = [u for u in nbr[j].tolist() if u >= 0]
        want = [bool((swarm.pieces.bits[u] & ~swarm.pieces.bits[j]).any()) for u in ups]
        assert swarm.pieces.wants_from(j, ups) == want
        assert swarm.pieces.wants_from(j, ups[:1]) == want[:1]
        assert [swarm.pieces.wants(j, u) for u in ups] == want


@pytest.mark.parametrize("choker", ["mainline", "propshare"])
def test_batched_re_rating_gives_the_same_run_bit_for_bit(tiny, monkeypatch, choker):
    """A big re-rating writes its per-slot updates with numpy (``_rerate_batch``), a small
    one flow by flow; forcing either path everywhere must not change a single byte."""
    from swarmsim.engine.network import Network

    tiny["choker"] = {"name": choker}
    monkeypatch.setattr(Network, "batch_rerate", 1)
    batched = _digest(run(tiny))
    monkeypatch.setattr(Network, "batch_rerate", 10**9)
    assert _digest(run(tiny)) == batched
