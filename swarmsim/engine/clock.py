"""The simulation clock: the one module that touches SimPy.

The engine schedules plain calls, ``fn(payload)`` at a time, and never sees a SimPy event.
Underneath, a call is a bare entry on SimPy's heap: ``Environment.step`` reads only an
event's ``callbacks`` and ``_ok``, and a ``Timeout`` costs several times more to make, which
matters when every rate change reschedules a download. Entries keep SimPy's own ordering
(time, priority, insertion id), so runs are reproducible to the event.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from itertools import count
from typing import Any

import simpy
from simpy.events import NORMAL

LATE = NORMAL + 1  # after every other call of the same instant (samples see settled state)


class Call:
    """One scheduled ``fn(payload)``. A call that has been superseded stays in the heap
    until its time (SimPy cannot cancel); its owner ignores it then, or ``Clock.compact``
    drops it."""

    __slots__ = ("callbacks", "_ok", "fn", "payload")

    def __init__(self, fn: Callable[[Any], None], payload: Any):
        self.callbacks = [_run]
        self._ok = True
        self.fn = fn
        self.payload = payload


def _run(call: Call) -> None:
    call.fn(call.payload)


class Clock:
    """Simulated time, and the calls due at each instant."""

    def __init__(self) -> None:
        self._env = simpy.Environment()
        self._queue: list = self._env._queue
        self._eid: count = self._env._eid
        self._done = self._env.event()

    @property
    def now(self) -> float:
        return self._env._now

    def at(self, delay: float, fn: Callable[[Any], None], payload: Any = None) -> Call:
        """Call ``fn(payload)`` ``delay`` seconds from now.

        ``delay`` becomes a Python float: one numpy delay (a join time) would make every later
        clock value and heap key a numpy scalar, 3-5x slower to add and compare."""
        return self.at_time(self._env._now + float(delay), fn, payload)

    def at_time(self, t: float, fn: Callable[[Any], None], payload: Any = None) -> Call:
        """Call ``fn(payload)`` at time ``t`` (a Python float)."""
        call = Call(fn, payload)
        heapq.heappush(self._queue, (t, NORMAL, next(self._eid), call))
        return call

    def after_all(self, delay: float, fn: Callable[[Any], None], payload: Any = None) -> Call:
        """Call ``fn(payload)`` ``delay`` seconds from now, after every other call then."""
        call = Call(fn, payload)
        heapq.heappush(self._queue, (self._env._now + delay, LATE, next(self._eid), call))
        return call

    def compact(self, superseded: Callable[[Call], bool]) -> int:
        """Drop the queued calls ``superseded`` says are stale; the number left. O(n)."""
        kept = [item for item in self._queue if not (type(item[3]) is Call and superseded(item[3]))]
        heapq.heapify(kept)
        self._queue[:] = kept
        return len(kept)

    def finish(self) -> None:
        """End a run started with ``until_done`` once this instant's calls are done."""
        if not self._done.triggered:
            self._done.succeed()

    @property
    def finished(self) -> bool:
        return self._done.triggered

    def run(self, until_s: float, *, until_done: bool) -> None:
        """Run the calls up to ``until_s``, or (``until_done``) until ``finish``."""
        env = self._env
        stop = env.timeout(until_s)
        env.run(until=simpy.AnyOf(env, [stop, self._done]) if until_done else stop)
