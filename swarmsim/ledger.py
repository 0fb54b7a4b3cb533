"""The token ledger: balances, transfers with a reason, mint and burn, and its conservation law.

Accounts are peer ids; ``MINT`` (-1) stands for the protocol when tokens are created or
destroyed, and pool accounts (``pool(name)``, ids below -1) hold funds a policy pays out of.
Every movement is a row of the payments table. ``check()`` compares the sum of balances with
initial + minted - burned, kept separately, and checks every credit limit.
"""

from __future__ import annotations

from array import array

import numpy as np
import pandas as pd

from swarmsim.api.plugins import CORE_REASONS

MINT = -1


class Ledger:
    """Every account's balance and every payment, each with a reason: the core ones
    (``CORE_REASONS``) plus those the incentive policy declares (``Incentive.reasons``)."""

    def __init__(
        self,
        n_peers: int,
        credit_limit: np.ndarray | float = 0.0,
        reasons: tuple[str, ...] = (),
    ):
        self.reasons = tuple(dict.fromkeys((*CORE_REASONS, *reasons)))
        self._reason_code = {r: k for k, r in enumerate(self.reasons)}
        self.balance = np.zeros(n_peers)
        self.credit_limit = np.broadcast_to(
            np.asarray(credit_limit, dtype=float), (n_peers,)
        ).copy()
        self.pools: dict[int, float] = {}
        self._pool_names: dict[str, int] = {}
        self.initial = 0.0
        self.minted = 0.0
        self.burned = 0.0
        self.earned = np.zeros(n_peers)  # received from other accounts, mint included
        self.spent = np.zeros(n_peers)
        self._rows = (array("d"), array("i"), array("i"), array("d"), array("i"))

    # --- accounts -----------------------------------------------------------------------
    def pool(self, name: str, initial: float = 0.0) -> int:
        """A named account a policy funds and pays from (it can run dry)."""
        if name not in self._pool_names:
            acct = -2 - len(self._pool_names)
            self._pool_names[name] = acct
            self.pools[acct] = 0.0
            if initial:
                self.mint(0.0, acct, initial, "initial")
        return self._pool_names[name]

    def available(self, acct: int) -> float:
        """What ``acct`` can pay now (its balance plus its credit line)."""
        if acct == MINT:
            return np.inf
        if acct < MINT:
            return self.pools[acct]
        return float(self.balance[acct] + self.credit_limit[acct])

    def grant(self, peer: int, amount: float, t: float = 0.0) -> None:
        """A peer's starting balance (counted as initial supply, not as minting)."""
        if amount < 0:
            raise ValueError(f"initial balance must be >= 0, got {amount}")
        self.balance[peer] += amount
        self.initial += amount
        self._log(t, MINT, peer, amount, "initial")

    # --- movements -----------------------------------------------------------------------
    def transfer(
        self, t: float, payer: int, payee: int, amount: float, reason: str, partial: bool = True
    ) -> float:
        """Move up to ``amount`` from payer to payee; returns what moved. With ``partial``
        false a payment the payer cannot cover moves nothing. MINT as payer mints, as payee
        burns."""
        if amount < 0 or not np.isfinite(amount):
            raise ValueError(f"a transfer moves a finite amount >= 0, got {amount}")
        if payer == payee or amount == 0:
            return 0.0
        can = self.available(payer)
        if can < amount:
            if not partial:
                return 0.0
            amount = max(can, 0.0)
            if amount <= 0:
                return 0.0
        self._debit(payer, amount)
        self._credit(payee, amount)
        self._log(t, payer, payee, amount, reason)
        return amount

    def mint(self, t: float, payee: int, amount: float, reason: str) -> float:
        """Create ``amount`` tokens for ``payee``; returns what was minted."""
        return self.transfer(t, MINT, payee, amount, reason)

    def burn(self, t: float, payer: int, amount: float, reason: str) -> float:
        """Destroy up to ``amount`` of ``payer``'s tokens; returns what was burned."""
        return self.transfer(t, payer, MINT, amount, reason)

    def _debit(self, acct: int, amount: float) -> None:
        if acct == MINT:
            self.minted += amount
        elif acct < MINT:
            self.pools[acct] -= amount
        else:
            self.balance[acct] -= amount
            self.spent[acct] += amount

    def _credit(self, acct: int, amount: float) -> None:
        if acct == MINT:
            self.burned += amount
        elif acct < MINT:
            self.pools[acct] += amount
        else:
            self.balance[acct] += amount
            self.earned[acct] += amount

    def _log(self, t, payer, payee, amount, reason) -> None:
        ts, a, b, m, r = self._rows
        ts.append(t)
        a.append(payer)
        b.append(payee)
        m.append(amount)
        code = self._reason_code.get(reason)
        if code is None:
            raise ValueError(
                f"payment reason {reason!r} is not declared; declared: "
                f"{', '.join(self.reasons)} (an incentive lists its own in 'reasons')"
            )
        r.append(code)

    # --- checks and output ----------------------------------------------------------------
    def supply(self) -> float:
        """Tokens in existence: every balance plus every pool."""
        return float(self.balance.sum()) + sum(self.pools.values())

    def check(self) -> str:
        """'ok' or what broke: conservation, or a balance below its credit line."""
        expected = self.initial + self.minted - self.burned
        scale = max(abs(expected), self.minted, 1.0)
        if abs(self.supply() - expected) > 1e-9 * scale:
            return f"tokens not conserved: balances {self.supply():.6f} != initial + minted - burned {expected:.6f}"
        low = self.balance < -self.credit_limit - 1e-9 * scale
        if low.any():
            k = int(np.flatnonzero(low)[0])
            return f"peer {k} holds {self.balance[k]:.6f} tokens, below its credit limit -{self.credit_limit[k]}"
        if any(v < -1e-9 * scale for v in self.pools.values()):
            return "a pool account is overdrawn"
        return "ok"

    def payments_table(self) -> pd.DataFrame:
        """Every token movement so far, as the ``payments`` table."""
        from swarmsim.recorder import PAYMENTS

        ts, a, b, m, r = self._rows
        reasons = np.array(self.reasons, dtype=object)
        return PAYMENTS.frame(
            {
                "t_s": np.frombuffer(ts, np.float64) if ts else [],
                "payer": np.frombuffer(a, np.int32) if a else [],
                "payee": np.frombuffer(b, np.int32) if b else [],
                "amount": np.frombuffer(m, np.float64) if m else [],
                "reason": reasons[np.frombuffer(r, np.int32)] if r else [],
            },
        )
