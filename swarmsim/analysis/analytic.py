"""Analytic models the simulator is validated against (Kumar & Ross's flash-crowd bound; Qiu & Srikant's fluid model)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.integrate import solve_ivp


def kumar_ross_tmin(
    file_bytes: float, seed_bps: float, peer_up_bps: Sequence[float], min_down_bps: float
) -> float:
    """Minimum time to bring a file to N peers present at t=0 (Kumar & Ross 2006):
    max(F/u_s, F/d_min, N F / (u_s + sum u_i)). No schedule, P2P or not, can beat it."""
    n = len(peer_up_bps)
    return max(
        file_bytes / seed_bps,
        file_bytes / min_down_bps,
        n * file_bytes / (seed_bps + float(np.sum(peer_up_bps))),
    )


def client_server_time(
    file_bytes: float, seed_bps: float, n_peers: int, min_down_bps: float
) -> float:
    """The same bound when peers upload nothing: max(N F / u_s, F / d_min)."""
    return max(n_peers * file_bytes / seed_bps, file_bytes / min_down_bps)


@dataclass(frozen=True)
class FluidSteadyState:
    leechers: float
    seeds: float
    download_s: float


def qiu_srikant_steady_state(
    lam: float, mu: float, c: float, gamma: float, theta: float = 0.0, eta: float = 1.0
) -> FluidSteadyState:
    """Steady state of Qiu & Srikant's fluid model (SIGCOMM 2004); rates in files per second.

    1/beta = max(1/c, (1/eta)(1/mu - 1/gamma)); x = lam/(beta+theta);
    y = lam/(gamma (1 + theta/beta)); T = 1/(theta + beta). Needs gamma > mu so that seeds
    do not outnumber demand without bound (else the download side binds: beta = c).
    """
    inv_beta = max(1.0 / c, (1.0 / eta) * (1.0 / mu - 1.0 / gamma))
    beta = 1.0 / inv_beta
    return FluidSteadyState(
        leechers=lam / (beta + theta),
        seeds=lam / (gamma * (1.0 + theta / beta)),
        download_s=1.0 / (theta + beta),
    )


def qiu_srikant_trajectory(
    lam: float,
    mu: float,
    c: float,
    gamma: float,
    theta: float = 0.0,
    eta: float = 1.0,
    x0: float = 0.0,
    y0: float = 1.0,
    t_end_s: float = 5000.0,
    n: int = 501,
):
    """Integrate dx/dt = lam - theta x - min(c x, mu (eta x + y)), dy/dt = min(...) - gamma y."""

    def rhs(_t, z):
        x, y = max(z[0], 0.0), max(z[1], 0.0)
        served = min(c * x, mu * (eta * x + y))
        return [lam - theta * x - served, served - gamma * y]

    t = np.linspace(0.0, t_end_s, n)
    sol = solve_ivp(rhs, (0.0, t_end_s), [x0, y0], t_eval=t, max_step=t_end_s / 200)
    return sol.t, sol.y[0], sol.y[1]


def mundinger_optimum(n_pieces: int, n_clients: int) -> float:
    """Piece-level optimum in units of one file upload time: 1 + floor(log2 N) / M."""
    return 1.0 + math.floor(math.log2(n_clients)) / n_pieces
