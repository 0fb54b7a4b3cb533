"""Read-only snapshots the engine hands to policies.

A policy never touches SimPy or the swarm's arrays directly: chokers see a
``ChokeView`` of the peers that rechoke at one instant, a picker a ``PickView`` of one
(downloader, uploader) pair. Both are plain objects, so policies are unit-tested with
hand-built ones (``ChokeView.build``). The engine's views compute arrays on first use.
"""

from __future__ import annotations

import numpy as np


class ChokeView:
    """The connections of B peers that rechoke together, as (B, C) arrays.

    Row ``b`` is peer ``peers[b]``; column ``s`` is its connection slot ``s``, stable for the
    lifetime of a connection (``nbr[b, s]`` is the neighbour, -1 for a free slot, ``valid``
    marks used slots). Per row: ``is_seed``, ``round`` (periodic rounds so far),
    ``upload_bps``, ``have_pieces``; ``n_pieces`` and ``piece_bytes`` of the torrent. Per
    slot: ``interested`` (they want a piece we have;
    False on free slots), ``unchoked`` (by us), ``upload_share`` (the weight we gave each
    unchoked slot at the last rechoke, 0 if choked), ``connected_s``, ``last_unchoked_s``,
    ``last_received_s`` (last payload from them; -inf if none yet),
    ``pieces_sent_since_unchoke``, ``have_counts`` (their piece counts), ``lost_unchoked``
    (a neighbour we had unchoked lost interest in us or left since our last rechoke).

    ``received_bytes(r)`` / ``sent_bytes(r)`` are the payload bytes received from / sent to
    each neighbour over the last ``r`` periodic rounds (1 <= r <= ``rounds_kept``), counted
    from the later of the window's start and the connection's; ``window_s(r)`` is that span.
    A choker answers with a (B, C) boolean mask of the slots to unchoke.
    """

    rounds_kept = 3

    def received_rate_bps(self, rounds: int) -> np.ndarray:
        """Bytes per second received from each neighbour over the last ``rounds`` rounds."""
        return self.received_bytes(rounds) / np.maximum(self.window_s(rounds), 1.0)

    def sent_rate_bps(self, rounds: int) -> np.ndarray:
        """Bytes per second sent to each neighbour over the last ``rounds`` rounds."""
        return self.sent_bytes(rounds) / np.maximum(self.window_s(rounds), 1.0)

    def snubbed(self, snub_s: float) -> np.ndarray:
        """No payload from them for ``snub_s`` seconds, or never (mainline ``is_snubbed``)."""
        return (self.now_s - self.last_received_s) > snub_s

    def received_total_bytes(self) -> np.ndarray:
        """Payload bytes received from each neighbour over the whole connection."""
        return self._received_total

    def sent_total_bytes(self) -> np.ndarray:
        """Payload bytes sent to each neighbour over the whole connection."""
        return self._sent_total

    def received_bytes(self, rounds: int) -> np.ndarray:
        """Payload bytes received from each neighbour over the last ``rounds`` rounds."""
        return self._received[rounds]

    def sent_bytes(self, rounds: int) -> np.ndarray:
        """Payload bytes sent to each neighbour over the last ``rounds`` rounds."""
        return self._sent[rounds]

    def window_s(self, rounds: int) -> np.ndarray:
        """Seconds the last ``rounds`` rounds span, per connection (shorter if younger)."""
        return self._window[rounds]

    def take(self, rows: np.ndarray) -> ChokeView:
        """The same view restricted to some rows (e.g. the seeds of a batch)."""
        sub = ChokeView()
        for key, value in self.__dict__.items():
            if key.startswith("_") and isinstance(value, dict):
                sub.__dict__[key] = {r: a[rows] for r, a in value.items()}
            elif isinstance(value, np.ndarray):
                sub.__dict__[key] = value[rows]
            else:
                sub.__dict__[key] = value
        return sub

    @classmethod
    def build(
        cls,
        n: int | None = None,
        *,
        nbr=None,
        now_s=100.0,
        peers=None,
        is_seed=False,
        periodic=True,
        round=1,
        upload_bps=1e5,
        have_pieces=10,
        n_pieces=100,
        piece_bytes=262144,
        interested=None,
        unchoked=None,
        connected_s=None,
        last_unchoked_s=None,
        last_received_s=None,
        pieces_sent_since_unchoke=None,
        have_counts=None,
        lost_unchoked=None,
        upload_share=None,
        received_bps=None,
        sent_bps=None,
        received_total=None,
        sent_total=None,
        round_s=10.0,
    ) -> ChokeView:
        """A hand-built view for tests. Per-slot arguments are 1-D (one peer) or 2-D (B rows);
        rates become byte counts over each window."""
        if nbr is None:
            nbr = np.arange(n)
        nbr = np.atleast_2d(np.asarray(nbr, dtype=np.int64))
        shape = nbr.shape
        b = shape[0]

        def slot(x, default, dtype=float):
            if x is None:
                return np.full(shape, default, dtype=dtype)
            return np.broadcast_to(np.atleast_2d(np.asarray(x, dtype=dtype)), shape).copy()

        def row(x, dtype):
            return np.broadcast_to(np.asarray(x, dtype=dtype), (b,)).copy()

        valid = nbr >= 0
        view = cls()
        view.__dict__.update(
            now_s=now_s,
            periodic=periodic,
            n_pieces=n_pieces,
            piece_bytes=piece_bytes,
            peers=np.arange(b) if peers is None else np.asarray(peers),
            nbr=nbr,
            valid=valid,
            is_seed=row(is_seed, bool),
            round=row(round, np.int64),
            upload_bps=row(upload_bps, float),
            have_pieces=row(have_pieces, np.int64),
            interested=slot(interested, True, bool) & valid,
            unchoked=slot(unchoked, False, bool) & valid,
            connected_s=slot(connected_s, 0.0),
            last_unchoked_s=slot(last_unchoked_s, -np.inf),
            last_received_s=slot(last_received_s, now_s),
            pieces_sent_since_unchoke=slot(pieces_sent_since_unchoke, 0, np.int64),
            have_counts=slot(have_counts, 0, np.int64),
            lost_unchoked=slot(lost_unchoked, False, bool) & valid,
        )
        view.upload_share = (
            view.unchoked * 1.0 if upload_share is None else slot(upload_share, 0.0) * view.unchoked
        )
        windows = {r: np.full(shape, r * round_s) for r in range(1, cls.rounds_kept + 1)}
        recv, sent = slot(received_bps, 0.0), slot(sent_bps, 0.0)
        view._window = windows
        view._received = {r: recv * w for r, w in windows.items()}
        view._sent = {r: sent * w for r, w in windows.items()}
        view._received_total = slot(received_total, 0.0)
        view._sent_total = slot(sent_total, 0.0)
        return view


class PickView:
    """What a downloader knows when it asks an unchoking uploader for its next piece.

    ``wanted`` marks pieces the uploader has and the downloader neither has nor is fetching;
    ``rarity`` is the downloader's neighbourhood availability times ``n_pieces`` plus a fixed
    per-peer random rank (so ``argmin`` is rarest first with random tie-breaks, libtorrent
    ``piece_picker``); ``endgame`` is true once every missing piece is already being fetched,
    and ``in_flight`` then maps those pieces to their number of sources.

    For pickers that keep a request pipeline: ``queued_bytes`` are the bytes already reserved
    on this connection (pieces picked earlier, not yet started); ``rate_bps`` is the
    downloader's estimate of this connection's rate; ``received_bytes`` what it brought so
    far, and ``slow_start`` whether it is still ramping up (libtorrent: until it is unchoked
    and its rate stops growing); ``shared`` maps the downloader's pieces
    in flight block by block that the uploader has (another connection may fetch their other
    blocks) to their number of sources. A picker answers with one piece (fetched block by
    block, so others may join it), a list of pieces (reserved whole, in that order, the first
    fetched now) or ``None``; an empty list when nothing more is needed yet.
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
        "queued_bytes",
        "rate_bps",
        "shared",
        "piece_bytes",
        "block_bytes",
        "received_bytes",
        "slow_start",
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
        queued_bytes=0.0,
        rate_bps=0.0,
        shared=None,
        piece_bytes=262144,
        block_bytes=16384,
        received_bytes=0.0,
        slow_start=False,
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
        self.queued_bytes = queued_bytes
        self.rate_bps = rate_bps
        self.shared = shared or {}
        self.piece_bytes = piece_bytes
        self.block_bytes = block_bytes
        self.received_bytes = received_bytes
        self.slow_start = slow_start

    def availability(self) -> np.ndarray:
        """Copies of each piece among the downloader's non-seed neighbours."""
        return self.rarity // self.n_pieces

    def tie_rank(self) -> np.ndarray:
        """The downloader's fixed random order of pieces, used to break ties."""
        return self.rarity % self.n_pieces
