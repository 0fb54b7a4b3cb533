"""Read-only snapshots the engine hands to policies.

A policy never touches SimPy or the swarm's arrays directly (STYLE.md rule 1): a choker sees a
``ChokeView`` of one peer's connections, a picker a ``PickView`` of one (downloader, uploader)
pair. Both are plain objects, so policies are unit-tested with hand-built ones
(``ChokeView.build``). The engine's ``ChokeView`` computes each array only when a choker asks.
"""

from __future__ import annotations

import numpy as np


class ChokeView:
    """One peer's connections at a rechoke; every array has one element per neighbour.

    Attributes: ``now_s``, ``peer``, ``is_seed``, ``periodic`` (a timer round, not an event
    rechoke), ``round`` (periodic rounds so far), ``upload_bps``, ``have_pieces``, ``n_pieces``,
    ``peers`` (neighbour ids), ``slots`` (stable per-connection keys, reused after a
    disconnect), ``interested`` (they want something we have), ``unchoked`` (by us),
    ``connected_s``, ``last_unchoked_s``, ``last_received_s`` (last payload from them),
    ``pieces_sent_since_unchoke``, ``have_counts`` (their piece counts).

    ``received_bytes(r)`` / ``sent_bytes(r)`` are the payload bytes received from / sent to each
    neighbour during the last ``r`` periodic rounds (1 <= r <= ``rounds_kept``), counted from the
    later of the window's start and the connection's; ``window_s(r)`` is that duration.
    """

    rounds_kept = 3

    def received_rate_bps(self, rounds: int) -> np.ndarray:
        """Download rate from each neighbour over the last ``rounds`` rechoke periods."""
        return self.received_bytes(rounds) / np.maximum(self.window_s(rounds), 1.0)

    def sent_rate_bps(self, rounds: int) -> np.ndarray:
        """Upload rate to each neighbour over the last ``rounds`` rechoke periods."""
        return self.sent_bytes(rounds) / np.maximum(self.window_s(rounds), 1.0)

    def snubbed(self, snub_s: float) -> np.ndarray:
        """No payload from them for ``snub_s`` seconds, or never (mainline ``is_snubbed``)."""
        return (self.now_s - self.last_received_s) > snub_s

    def received_bytes(self, rounds: int) -> np.ndarray:
        return self._received[rounds]

    def sent_bytes(self, rounds: int) -> np.ndarray:
        return self._sent[rounds]

    def window_s(self, rounds: int) -> np.ndarray:
        return self._window[rounds]

    @classmethod
    def build(
        cls,
        n: int | None = None,
        *,
        peers=None,
        now_s=100.0,
        peer=-1,
        is_seed=False,
        periodic=True,
        round=1,
        upload_bps=1e5,
        have_pieces=10,
        n_pieces=100,
        interested=None,
        unchoked=None,
        connected_s=None,
        last_unchoked_s=None,
        last_received_s=None,
        pieces_sent_since_unchoke=None,
        have_counts=None,
        received_bps=None,
        sent_bps=None,
        round_s=10.0,
    ) -> ChokeView:
        """A hand-built view for tests; rates become byte counts over each window."""
        peers = np.arange(n) if peers is None else np.asarray(peers, dtype=np.int64)
        n = len(peers)

        def arr(x, default, dtype=float):
            return np.full(n, default, dtype=dtype) if x is None else np.asarray(x, dtype=dtype)

        view = cls()
        view.__dict__.update(
            now_s=now_s,
            peer=peer,
            is_seed=is_seed,
            periodic=periodic,
            round=round,
            upload_bps=upload_bps,
            have_pieces=have_pieces,
            n_pieces=n_pieces,
            peers=peers,
            slots=np.arange(n),
            interested=arr(interested, True, bool),
            unchoked=arr(unchoked, False, bool),
            connected_s=arr(connected_s, 0.0),
            last_unchoked_s=arr(last_unchoked_s, -np.inf),
            last_received_s=arr(last_received_s, now_s),
            pieces_sent_since_unchoke=arr(pieces_sent_since_unchoke, 0, np.int64),
            have_counts=arr(have_counts, 0, np.int64),
        )
        windows = {r: np.full(n, r * round_s) for r in range(1, cls.rounds_kept + 1)}
        recv, sent = arr(received_bps, 0.0), arr(sent_bps, 0.0)
        view._window = windows
        view._received = {r: recv * w for r, w in windows.items()}
        view._sent = {r: sent * w for r, w in windows.items()}
        return view


class PickView:
    """What a downloader knows when it asks an unchoking uploader for its next piece.

    ``wanted`` marks pieces the uploader has and the downloader neither has nor is fetching;
    ``rarity`` is the downloader's neighbourhood availability times ``n_pieces`` plus a fixed
    per-peer random rank (so ``argmin`` is rarest first with random tie-breaks, libtorrent
    ``piece_picker``); ``endgame`` is true once every missing piece is already being fetched,
    and ``in_flight`` then maps those pieces to their number of sources.
    """

    __slots__ = (
        "peer",
        "uploader",
        "wanted",
        "rarity",
        "n_pieces",
        "have_pieces",
        "partial",
        "endgame",
        "in_flight",
        "uploader_has",
    )

    def __init__(
        self,
        peer,
        uploader,
        wanted,
        rarity,
        n_pieces,
        have_pieces,
        partial,
        endgame,
        in_flight,
        uploader_has,
    ):
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
