"""Read-only snapshots the engine hands to policies.

A policy never touches SimPy or the swarm's arrays directly (STYLE.md rule 1): a choker sees a
``ChokeView`` of one peer's connections, a picker a ``PickView`` of one (downloader, uploader)
pair. Views are plain objects, so policies are unit-tested with hand-built ones
(``ChokeView.from_arrays``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(eq=False)
class ChokeView:
    """One peer's connections at a rechoke, one array element per connected neighbour.

    ``received_bytes[r]`` / ``sent_bytes[r]`` hold the payload bytes received from / sent to each
    neighbour during the last ``r`` periodic rounds (``r`` = 1 .. ``rounds_kept``), counted from
    the later of the round's start and the connection's start; ``window_s[r]`` is the matching
    duration per neighbour, so ``received_bytes[r] / window_s[r]`` is a rate estimate.
    """

    now_s: float
    peer: int
    is_seed: bool
    periodic: bool
    round: int
    upload_bps: float
    have_pieces: int
    n_pieces: int
    peers: np.ndarray
    interested: np.ndarray
    unchoked: np.ndarray
    connected_s: np.ndarray
    last_unchoked_s: np.ndarray
    last_received_s: np.ndarray
    pieces_sent_since_unchoke: np.ndarray
    have_counts: np.ndarray
    received_bytes: dict[int, np.ndarray] = field(default_factory=dict)
    sent_bytes: dict[int, np.ndarray] = field(default_factory=dict)
    window_s: dict[int, np.ndarray] = field(default_factory=dict)

    def received_rate_bps(self, rounds: int) -> np.ndarray:
        """Download rate from each neighbour over the last ``rounds`` rechoke periods."""
        return self.received_bytes[rounds] / np.maximum(self.window_s[rounds], 1.0)

    def sent_rate_bps(self, rounds: int) -> np.ndarray:
        """Upload rate to each neighbour over the last ``rounds`` rechoke periods."""
        return self.sent_bytes[rounds] / np.maximum(self.window_s[rounds], 1.0)

    def snubbed(self, snub_s: float) -> np.ndarray:
        """Neighbours that sent us no payload for ``snub_s`` seconds (BEP 3 anti-snubbing)."""
        return (self.now_s - self.last_received_s) > snub_s

    @classmethod
    def from_arrays(cls, peers, *, now_s=0.0, peer=-1, is_seed=False, periodic=True, round=0,
                    upload_bps=1e5, have_pieces=0, n_pieces=100, interested=None,
                    unchoked=None, connected_s=None, last_unchoked_s=None,
                    last_received_s=None, pieces_sent_since_unchoke=None, have_counts=None,
                    received_bps=None, sent_bps=None, rounds_kept=3, round_s=10.0):
        """A hand-built view for tests: rates are turned into byte counts over each window."""
        peers = np.asarray(peers, dtype=np.int64)
        n = len(peers)

        def arr(x, default, dtype=float):
            return np.full(n, default, dtype=dtype) if x is None else np.asarray(x, dtype=dtype)

        recv = arr(received_bps, 0.0)
        sent = arr(sent_bps, 0.0)
        windows = {r: np.full(n, r * round_s) for r in range(1, rounds_kept + 1)}
        return cls(
            now_s=now_s, peer=peer, is_seed=is_seed, periodic=periodic, round=round,
            upload_bps=upload_bps, have_pieces=have_pieces, n_pieces=n_pieces, peers=peers,
            interested=arr(interested, True, bool), unchoked=arr(unchoked, False, bool),
            connected_s=arr(connected_s, 0.0), last_unchoked_s=arr(last_unchoked_s, -np.inf),
            last_received_s=arr(last_received_s, now_s),
            pieces_sent_since_unchoke=arr(pieces_sent_since_unchoke, 0, np.int64),
            have_counts=arr(have_counts, 0, np.int64),
            received_bytes={r: recv * w for r, w in windows.items()},
            sent_bytes={r: sent * w for r, w in windows.items()},
            window_s=windows,
        )


class PickView:
    """What a downloader knows when it asks an unchoking uploader for its next piece.

    ``wanted`` marks pieces the uploader has and the downloader neither has nor is fetching;
    ``rarity`` is the downloader's neighbourhood availability scaled by ``n_pieces`` plus a fixed
    per-peer random rank (so ``argmin`` is rarest first with random tie-breaks, libtorrent
    ``piece_picker``); ``endgame`` is true once every missing piece is already being fetched.
    """

    __slots__ = ("peer", "uploader", "wanted", "rarity", "n_pieces", "have_pieces",
                 "partial", "endgame", "in_flight", "uploader_has")

    def __init__(self, peer, uploader, wanted, rarity, n_pieces, have_pieces, partial, endgame,
                 in_flight, uploader_has):
        self.peer = peer
        self.uploader = uploader
        self.wanted = wanted
        self.rarity = rarity
        self.n_pieces = n_pieces
        self.have_pieces = have_pieces
        self.partial = partial
        self.endgame = endgame
        self.in_flight = in_flight
        self.uploader_has = uploader_has

    def availability(self) -> np.ndarray:
        """Copies of each piece among the downloader's non-seed neighbours."""
        return self.rarity // self.n_pieces

    def tie_rank(self) -> np.ndarray:
        """The downloader's fixed random order of pieces, used to break ties."""
        return self.rarity % self.n_pieces
