"""Piece pickers: which piece a downloader requests next from an uploader that unchoked it.

A picker is ``pick(view, rng) -> piece | None`` over a ``PickView``. The engine reserves a picked
piece for the connection that fetches it (one source per piece outside endgame); blocks of a
piece interrupted by a choke are kept and the piece is offered first to the next uploader that
has it ("strict priority", BEP 3 / libtorrent's partial-piece preference).
"""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from swarmsim.api import Picker as PickerHooks
from swarmsim.api import PickView
from swarmsim.registry import Registry

PICKERS = Registry("picker", "which piece to request next")


class PickerParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    endgame: bool = Field(
        True,
        description="once every missing piece is being fetched, fetch them from more peers too "
        "(BEP 3 endgame; modelled as the remaining bytes split among the sources, no waste)",
    )


def _partial_first(view: PickView) -> int | None:
    """The most complete interrupted piece this uploader can finish (strict priority; the
    first such piece in the order the pieces were interrupted)."""
    partial = view.partial
    if len(partial) > 12:  # chokers that churn leave many partials: one numpy pass
        pieces = np.fromiter(partial, dtype=np.int64, count=len(partial))
        kept = np.fromiter(partial.values(), dtype=float, count=len(partial))
        kept[~view.wanted[pieces]] = -1.0
        k = int(kept.argmax())
        return int(pieces[k]) if kept[k] >= 0.0 else None
    best, best_bytes = None, -1
    wanted = view.wanted
    for piece, kept in partial.items():
        if kept > best_bytes and wanted[piece]:
            best, best_bytes = piece, kept
    return best


def _endgame(view: PickView) -> int | None:
    """In endgame, join the in-flight piece with the fewest sources that the uploader has."""
    best, best_sources = None, None
    for piece, sources in view.in_flight.items():
        if view.uploader_has[piece] and (best_sources is None or sources < best_sources):
            best, best_sources = piece, sources
    return best


def _argmin_over(wanted: np.ndarray, score: np.ndarray) -> int | None:
    idx = wanted.nonzero()[0]  # 4x faster than np.flatnonzero on short rows
    if idx.size == 0:
        return None
    return int(idx[score[idx].argmin()])


class Picker(PickerHooks):
    """The shared frame of the built-in pickers: partial pieces first (strict priority), then
    the picker's own ``choose``, then, in endgame, an in-flight piece from one more source."""

    Params = PickerParams

    def pick(self, view: PickView, rng: np.random.Generator) -> int | None:
        piece = _partial_first(view) if view.partial else None
        if piece is None:
            piece = self.choose(view, rng)
        if piece is None and view.endgame and self.params.endgame:
            return _endgame(view)
        return piece

    def choose(self, view: PickView, rng: np.random.Generator) -> int | None:
        raise NotImplementedError


@PICKERS.register("rarest_first")
class RarestFirst(Picker):
    """Rarest first over the downloader's own neighbourhood (BEP 3, libtorrent ``piece_picker``).

    The first ``random_first_pieces`` pieces are picked at random (mainline's
    ``rarest_first_cutoff`` = 4, libtorrent's ``initial_picker_threshold`` = 4) so that a new
    peer quickly gets something to trade; ties in rarity break by the peer's random rank.
    """

    class Params(PickerParams):
        random_first_pieces: int = Field(4, ge=0, description="pieces picked at random first")

    def choose(self, view: PickView, rng: np.random.Generator) -> int | None:
        if view.have_pieces < self.params.random_first_pieces:
            return _argmin_over(view.wanted, view.tie_rank())
        return _argmin_over(view.wanted, view.rarity)


@PICKERS.register("random")
class RandomPicker(Picker):
    """Uniformly random among the pieces the uploader can give (the rarest-first control)."""

    def choose(self, view: PickView, rng: np.random.Generator) -> int | None:
        idx = view.wanted.nonzero()[0]
        return int(idx[rng.integers(idx.size)]) if idx.size else None


@PICKERS.register("sequential")
class Sequential(Picker):
    """Lowest-index piece first, as a streaming client does (libtorrent sequential_download)."""

    def choose(self, view: PickView, rng: np.random.Generator) -> int | None:
        first = int(view.wanted.argmax())
        return first if view.wanted[first] else None


# request_blocks.cpp / peer_connection.cpp constants
RUN_LIMIT_BYTES = 8 << 20  # whole-piece runs: min(rate * whole_pieces_threshold, 8 MiB)
MIN_QUEUE_BLOCKS = 2  # min_request_queue
START_QUEUE_BLOCKS = 4  # m_desired_queue_size before any rate is known (slow start)
MAX_QUEUE_BLOCKS = 500  # max_out_request_queue


def expand_run(piece: int, run: int, pickable: np.ndarray) -> list[int]:
    """libtorrent's ``piece_picker::expand_piece`` (unaligned): grow ``piece`` into up to
    ``run`` contiguous pickable pieces, first downward (at most ``run - 1``), then upward from
    the run's start."""
    start = piece
    lower = max(piece - run + 1, 0)
    while start > lower and pickable[start - 1]:
        start -= 1
    end = piece + 1
    upper = min(start + run, pickable.size)
    while end < upper and pickable[end]:
        end += 1
    return list(range(start, end))


@PICKERS.register("libtorrent")
class LibtorrentPicker(Picker):
    """libtorrent's default piece picker and request pipeline (``piece_picker.cpp``,
    ``request_blocks.cpp``, ``peer_connection.cpp``, read at RC_2_1), so a scenario can mirror
    a libtorrent peer whose settings are all defaults.

    Each connection keeps ``request_queue_time_s`` of its estimated rate reserved (at least 2
    blocks, at most 500); while it ramps up (slow start: until it is unchoked and its rate
    stops growing) it asks for 4 blocks plus one more for every block received, so a choked
    connection fetching allowed-fast pieces soon has all of them requested. A connection whose rate fetches a piece
    within ``whole_pieces_threshold_s`` reserves whole pieces, in runs of as many contiguous
    pieces as it fetches in that time (at most 8 MiB), grown around the rarest piece
    (``expand_piece``); the reserved pieces are its own until it is choked. A slower
    connection picks block by block, so several connections fetch one piece together. Pieces
    rank by availability among non-seed neighbours, pieces in progress first among equals,
    ties in the peer's random order. Until the peer has ``random_first_pieces`` pieces it
    takes pieces in progress first, then the first piece at or after a random index. A
    connection that finds nothing to request stays idle until the peer completes a piece its
    uploader also has (``torrent::we_have`` -> ``update_interest``): an uploader's HAVE does
    not wake it (``incoming_have`` asks only peers that were not interesting).
    """

    uses_rate_estimates = True
    request_on_have = False

    class Params(PickerParams):
        random_first_pieces: int = Field(
            4, ge=0, description="initial_picker_threshold: random pieces until we have this many"
        )
        whole_pieces_threshold_s: float = Field(
            20.0,
            ge=0,
            description="whole_pieces_threshold: a connection that can fetch a piece within "
            "this many seconds reserves whole pieces, in runs of as many contiguous pieces as "
            "it fetches in that time (0 = never)",
        )
        request_queue_time_s: float = Field(
            3.0,
            ge=0,
            description="request_queue_time: requests kept outstanding per connection, in "
            "seconds of its download rate (0 = one piece at a time)",
        )

    def pick(self, view: PickView, rng: np.random.Generator):
        p = self.params
        rate, block = view.rate_bps, view.block_bytes
        if view.slow_start:  # one more request for every block received
            blocks = START_QUEUE_BLOCKS + view.received_bytes // block
        else:
            blocks = p.request_queue_time_s * rate / block
        wanted_bytes = min(max(blocks, MIN_QUEUE_BLOCKS), MAX_QUEUE_BLOCKS) * block
        if view.queued_bytes >= wanted_bytes:
            return []
        run = int(min(rate * p.whole_pieces_threshold_s, RUN_LIMIT_BYTES) // view.piece_bytes)
        if run >= 1:
            picks = self._whole_pieces(view, rng, run, wanted_bytes - view.queued_bytes)
            if picks:
                return picks
        if view.queued_bytes > 0:
            return []  # block by block only when nothing else is outstanding
        piece = self._blocks(view, rng)
        if piece is None and view.endgame and p.endgame:
            return _endgame(view)
        return piece

    def _random_start(self, view: PickView, candidates: np.ndarray, rng) -> int | None:
        """The first candidate at or after a random index, wrapping (random mode)."""
        return self._scan_from(candidates, int(rng.integers(view.n_pieces)))

    def _whole_pieces(self, view: PickView, rng, run: int, need_bytes: float) -> list[int]:
        """Whole pieces until ``need_bytes`` are reserved: a kept partial piece alone (its
        free blocks; it ranks first among equally available pieces, ``add_blocks_downloading``
        with nobody else requesting it), an open piece grown into a run. In random mode one
        random start per pick, the scan going on after each run."""
        n = view.n_pieces
        partial = np.zeros(n, dtype=bool)
        for piece in view.partial:
            partial[piece] = view.wanted[piece]
        open_ = view.wanted & ~partial
        random_mode = view.have_pieces < self.params.random_first_pieces
        score = None if random_mode else (2 * (view.rarity // n) + ~partial) * n + view.tie_rank()
        start = int(rng.integers(n)) if random_mode else 0
        picks: list[int] = []
        while need_bytes > 0:
            if random_mode:  # prioritize_partials, then the scan from the random start
                first = _argmin_over(partial, np.arange(n))
                if first is None:
                    first = self._scan_from(open_, start)
            else:
                first = _argmin_over(partial | open_, score)
            if first is None:
                break
            if partial[first]:
                pieces = [first]
                partial[first] = False
            else:
                pieces = expand_run(first, run, open_)
                open_[pieces] = False
                start = pieces[-1] + 1
            picks += pieces
            need_bytes -= len(pieces) * view.piece_bytes
        return picks

    @staticmethod
    def _scan_from(candidates: np.ndarray, start: int) -> int | None:
        """The first candidate at or after ``start``, wrapping (libtorrent's random mode)."""
        idx = candidates.nonzero()[0]
        if idx.size == 0:
            return None
        return int(idx[int(np.searchsorted(idx, start)) % idx.size])

    def _blocks(self, view: PickView, rng) -> int | None:
        """One piece to fetch block by block: pieces in progress (kept partials, or fetched
        block by block on other connections) rank first among equally available ones."""
        started = np.zeros(view.n_pieces, dtype=bool)
        for piece in view.partial:
            started[piece] = view.wanted[piece]
        for piece in view.shared:
            started[piece] = True
        candidates = view.wanted | started
        if view.have_pieces < self.params.random_first_pieces:
            # random mode: in-progress pieces first (prioritize_partials), then a random start
            piece = _argmin_over(started, np.arange(view.n_pieces))
            return piece if piece is not None else self._random_start(view, candidates, rng)
        avail = view.rarity // view.n_pieces
        score = (2 * avail + ~started) * view.n_pieces + view.tie_rank()
        return _argmin_over(candidates, score)
