"""BEP 6 allowed-fast sets: the pieces a choked peer may still request.

An uploader that supports the fast extension tells each interested peer a few pieces it will
serve even while it chokes that peer. The set is a pseudo-random function of the downloader's
address and the torrent's info-hash (BEP 6, "Allowed Fast Set Generation"), so every uploader
offers a downloader the same pieces and different downloaders get different ones.
"""

from __future__ import annotations

import hashlib
import ipaddress

import numpy as np


def peer_address(k: int) -> str:
    """Peer ``k``'s IPv4 address: its own loopback address (Linux routes all of 127.0.0.0/8 to
    loopback), which the live harness listens on and dials from, and from which the
    simulator derives the same peer's allowed-fast set."""
    return f"127.{(k + 2) >> 16 & 255}.{(k + 2) >> 8 & 255}.{(k + 2) & 255}"


def allowed_fast_set(
    address: str, info_hash: bytes, n_pieces: int, k: int, *, mask: bool = True
) -> list[int]:
    """The first ``k`` distinct pieces of BEP 6's sequence for ``address``.

    BEP 6 masks an IPv4 address to its /24 (``mask``); libtorrent's ``send_allowed_set``
    hashes the whole address instead. With ``k >= n_pieces`` every piece is allowed."""
    if k >= n_pieces:
        return list(range(n_pieces))
    ip = ipaddress.ip_address(address).packed
    if mask and len(ip) == 4:
        ip = ip[:3] + b"\x00"
    x = ip + info_hash
    out: list[int] = []
    while len(out) < k:
        x = hashlib.sha1(x).digest()
        for i in range(5):
            if len(out) >= k:
                break
            piece = int.from_bytes(x[4 * i : 4 * i + 4], "big") % n_pieces
            if piece not in out:
                out.append(piece)
    return out


class AllowedFast:
    """Every peer's allowed-fast sequence, as libtorrent generates it (unmasked address).

    A peer's set at an uploader is the first ``k`` pieces of its sequence, ``k`` being that
    uploader's ``allowed_fast_set_size``; pieces the peer already has are never requested
    (libtorrent counts them towards ``k`` but does not send them), so the set that matters is
    ``pieces(j, k)`` less the peer's own bitfield."""

    def __init__(self, addresses: list[str], info_hash: bytes, n_pieces: int, k_max: int):
        self.n_pieces = n_pieces
        k = min(k_max, n_pieces - 1)  # a set of every piece needs no sequence
        #: row ``j``: the start of peer ``j``'s BEP 6 sequence, ``k`` pieces
        self.matrix = np.array(
            [allowed_fast_set(a, info_hash, n_pieces, k, mask=False) for a in addresses]
            if k > 0
            else np.zeros((len(addresses), 0)),
            dtype=np.int64,
        ).reshape(len(addresses), max(k, 0))

    def pieces(self, peer: int, k: int) -> np.ndarray:
        """Peer ``peer``'s set at an uploader whose set size is ``k``: every piece when ``k``
        covers the torrent (``send_allowed_set``)."""
        if k >= self.n_pieces:
            return np.arange(self.n_pieces)
        return self.matrix[peer, :k]
