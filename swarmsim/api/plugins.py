"""The plug-in families and every hook the engine calls on them.

A plug-in is a class with a nested pydantic ``Params`` model, built as ``Class(params)``. Each
family below declares its hooks with their defaults: subclass the family's class and override
what you need, or write a plain class that has the required hooks; ``bind`` fills in every
hook it lacks from these declarations, so the engine only ever calls declared hooks.

The engine reaches a plug-in only through this module and ``swarmsim.api.views``; neither
imports the engine.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict

from swarmsim.api.views import ChokeView, PickView

# Payment reasons every ledger knows; an incentive policy adds its own (``Incentive.reasons``).
CORE_REASONS = ("initial", "self_dealing")


class NoParams(BaseModel):
    """Parameters of a plug-in that takes none (every family's default ``Params``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Unchoke(NamedTuple):
    """A choker's decision for a batch: ``mask`` is a (B, C) boolean mask or non-negative
    weights (> 0 = unchoked, the value its share of the peer's upload); ``optimistic`` marks
    the unchokes that are optimistic (None: the choker does not say). Incentives that sell
    slots leave optimistic unchokes alone."""

    mask: np.ndarray
    optimistic: np.ndarray | None = None


class Choker:
    """Who a peer uploads to. One object serves every peer that uses it and keeps their
    private state in arrays indexed by peer id (``setup``). ``rechoke`` answers for a batch
    of peers at one instant: every ``interval_s`` per peer (``view.periodic``), and,
    coalesced, after a connection with an unchoked peer closes or an unchoked peer loses
    interest. Its mask must lie within ``view.interested``."""

    Params = NoParams

    #: seconds between a peer's periodic rechokes (default: ``params.interval_s``, else 10 s)
    interval_s: float = 10.0
    #: rechoke at once when a neighbour may have become interested and ``has_free_slot``
    #: (libtorrent's preemptive unchoke)
    rechoke_on_interest: bool = False
    #: ``rechoke_after_piece(sent_bytes, received_bytes) -> bool``: after each piece a
    #: leecher sends over a connection, whether it must rechoke at once (block-level
    #: reciprocity); None: asked only at its rounds and events
    rechoke_after_piece = None
    #: when ``rechoke_after_piece`` says yes, choke that connection at once
    choke_after_piece: bool = False
    #: rechoke at the next 1 s tick instead of at once after a piece (libtorrent's granularity)
    after_piece_at_tick: bool = False
    #: rechoke at the next tick, not at once, after an unchoked peer is lost (libtorrent)
    events_at_tick: bool = False
    #: BEP 6: pieces a peer we choke may still fetch from us (its allowed-fast set)
    allowed_fast_set_size: int = 0

    def __init__(self, params):
        self.params = params
        self.interval_s = params.interval_s

    def setup(self, n_peers: int, max_connections: int) -> None:
        """Size per-peer state for ``n_peers`` peers of up to ``max_connections`` each."""

    def rechoke(self, view: ChokeView, rng: np.random.Generator) -> np.ndarray | Unchoke:
        """The batch's ``Unchoke``: its (B, C) mask or weights and its optimistic set. A bare
        mask or weights array is taken as ``Unchoke(mask)``: no optimistic set."""
        raise NotImplementedError

    def has_free_slot(self, peer: int, n_unchoked: int) -> bool:
        """Whether ``peer``, with ``n_unchoked`` unchoked now, would unchoke one more at once."""
        return False

    def start(self, peer: int, now_s: float) -> float | None:
        """A peer joined: seconds until its first periodic rechoke (None: ``interval_s``)."""
        return None

    def next_round_s(self, peers: np.ndarray) -> np.ndarray | None:
        """For chokers that keep their own timers: when each of these peers (just rechoked)
        wants its next periodic call, in absolute simulated seconds (None: every
        ``interval_s``)."""
        return None


class Picker:
    """Which piece a downloader requests next from an uploader that unchoked it."""

    Params = NoParams

    #: the picker reads ``view.rate_bps`` and may reserve pieces ahead (a request pipeline)
    uses_rate_estimates: bool = False
    #: a connection with nothing to request asks again when its uploader announces a piece
    #: (HAVE); False: only when the downloader completes a piece that uploader also has, or
    #: the connection is unchoked again (libtorrent)
    request_on_have: bool = True

    def __init__(self, params):
        self.params = params

    def pick(self, view: PickView, rng: np.random.Generator) -> int | None:
        """The piece to fetch on this connection, or None when nothing fits."""
        raise NotImplementedError


class FlowNet(Protocol):
    """What an allocator sees: capacities and the active transfers out of / into each peer
    (``act_out[u]`` / ``act_in[d]``: dicts from the other peer to the flow), the sum of
    the weights of each peer's active uploads (``out_weight``), and ``ack_share``: the share
    of a capacity that each byte moving the other way costs there (the TCP ACKs a peer sends
    for what it downloads count against its upload cap, as libtorrent's
    ``rate_limit_ip_overhead`` counts them; 0 when capacities carry payload only)."""

    up_bps: list[float]
    down_bps: list[float]
    act_out: list[dict]
    act_in: list[dict]
    out_weight: list[float]
    ack_share: float


class Bandwidth:
    """The rate each active transfer gets. Asked after an event changed who transfers to
    whom, for the new rates of the transfers that event could have affected."""

    Params = NoParams

    def __init__(self, params):
        self.params = params

    def reallocate(self, net, uploaders, downloaders) -> list:
        """``(flow, rate_bps)`` for every flow whose rate the change may have moved
        (``net``: a ``FlowNet``)."""
        raise NotImplementedError


class Incentive:
    """How tokens move and who gets served: on every delivered piece, at an interval, and
    through ``adjust`` on the unchoke mask the peer's choker proposed."""

    Params = NoParams

    #: how often ``on_interval`` runs (None: never)
    interval_s: float | None = None
    #: payment reasons this policy records (``Ledger.pay(..., reason)``), beyond the core ones
    reasons: tuple[str, ...] = ()
    #: whether the policy moves tokens at all (False: its hooks are skipped)
    active: bool = True
    #: how far a balance may go below 0 (default: ``params.credit_tokens``, else 0)
    credit_tokens: float = 0.0

    def __init__(self, params):
        self.params = params

    def setup(self, ctx) -> None:
        """Keep the swarm's ``IncentiveContext`` (ledger, live read-only arrays)."""
        self.ctx = ctx
        self.ledger = ctx.ledger

    def on_piece(
        self, t: float, uploader: int, downloader: int, nbytes: float, duration_s: float = 0.0
    ) -> None:
        """A piece of ``nbytes`` went from ``uploader`` to ``downloader`` at time ``t``."""

    def adjust(
        self,
        view: ChokeView,
        out: np.ndarray,
        rng: np.random.Generator,
        optimistic: np.ndarray | None = None,
    ) -> np.ndarray:
        """The choker's (B, C) mask or weights, changed by the policy (never widened to
        uninterested peers); ``optimistic`` is the choker's optimistic set, if it says."""
        return out

    def on_interval(self, t: float, dt: float) -> None:
        """Every ``interval_s``: ``dt`` seconds since the last call."""


class Arrival:
    """When the peers of a class join."""

    Params = NoParams

    def __init__(self, params):
        self.params = params

    def join_times(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """``count`` join times in seconds, sorted."""
        raise NotImplementedError


@dataclass
class SeedingState:
    """What a departure rule sees of a peer, polled at every periodic rechoke."""

    peer: int
    now_s: float
    seeded_s: float  # since completion (or since joining, for peers that start as seeds)
    uploaded_bytes: float
    downloaded_bytes: float
    wealth: float  # token balance
    earned: float  # tokens received so far
    cost_per_s: float  # the peer's cost of staying online, tokens per second


class Departure:
    """When a peer leaves: how long it seeds after completing (``seeding_time_s``), whether
    it stops early (``done_seeding``, polled at every periodic rechoke), whether it uploads
    at all at its wealth (``serves``), and the rate at which a leecher gives up."""

    Params = NoParams

    #: leechers give up at this rate (theta of Qiu & Srikant's fluid model; default:
    #: ``params.abort_rate_per_s``, else 0)
    abort_rate_per_s: float = 0.0

    def __init__(self, params):
        self.params = params

    def seeding_time_s(self, rng: np.random.Generator) -> float:
        """Seconds the peer seeds once it has the file (initial seeds: from joining)."""
        return math.inf

    def done_seeding(self, state: SeedingState) -> bool:
        """Whether a seeding peer leaves now."""
        return False

    def serves(self, wealth: float) -> bool:
        """Whether the peer uploads at all at this wealth (scrip agents stop when rich)."""
        return True


FAMILIES: dict[str, type] = {
    "choker": Choker,
    "picker": Picker,
    "bandwidth": Bandwidth,
    "incentive": Incentive,
    "arrival": Arrival,
    "departure": Departure,
}
# hooks a plug-in must define itself (the family's own raises NotImplementedError)
REQUIRED = {
    "choker": ("rechoke",),
    "picker": ("pick",),
    "bandwidth": ("reallocate",),
    "incentive": (),
    "arrival": ("join_times",),
    "departure": (),
}


def hooks(kind: str) -> dict[str, Any]:
    """Every hook of a family, with its declared default (methods as plain functions)."""
    family = FAMILIES[kind]
    return {
        name: value
        for name, value in vars(family).items()
        if not name.startswith("_")
        and name != "Params"
        and not isinstance(value, (staticmethod, classmethod))
    }


class PluginProblem(Exception):
    """What is wrong with a plug-in object (turned into a named scenario error)."""


def _value_types(kind: str) -> dict[str, tuple[type, ...]]:
    """The types each value hook of family ``kind`` accepts, read from its annotations
    (``float`` takes an int too; ``tuple[...]`` a list too)."""
    out = {}
    for hook, annotation in typing.get_type_hints(FAMILIES[kind]).items():
        union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
        allowed: list[type] = []
        for tp in typing.get_args(annotation) if union else (annotation,):
            base = typing.get_origin(tp) or tp
            allowed += {float: [int, float], tuple: [tuple, list]}.get(base, [base])
        out[hook] = tuple(allowed)
    return out


class Bound:
    """A plug-in object with every hook of its family resolved: its own where it has one,
    the declared default where it does not, as plain attributes (the engine reads them on
    its hot path). ``obj`` is the plug-in itself, ``name`` what the scenario called it."""

    def __init__(self, kind: str, name: str, obj: Any, values: dict[str, Any]):
        self.__dict__.update(values)
        self.kind, self.name, self.obj = kind, name, obj

    def __repr__(self) -> str:
        return f"{self.kind} {self.name!r}"


def bind(kind: str, obj: Any, name: str = "") -> Bound:
    """Resolve every declared hook of ``obj``; raise ``PluginProblem`` naming what is wrong
    (a required hook missing, a hook that is not callable, a value of the wrong type)."""
    family = FAMILIES[kind]
    value_types = _value_types(kind)
    values: dict[str, Any] = {}
    for hook, default in hooks(kind).items():
        own = _own(obj, hook, family)
        if hook in REQUIRED[kind] and own is _MISSING:
            raise PluginProblem(
                f"has no {hook}(); a {kind} must define it "
                f"(see swarmsim.api.{family.__name__}.{hook})"
            )
        if own is _MISSING:
            values[hook] = _default(obj, hook, default)
            continue
        if callable(default) and not isinstance(default, type):
            if not callable(own):
                raise PluginProblem(f"{hook} must be a method, got {_short(own)}")
        elif hook in value_types:
            allowed = value_types[hook]
            if not isinstance(own, allowed) or (isinstance(own, bool) and bool not in allowed):
                names = " or ".join("None" if t is type(None) else t.__name__ for t in allowed)
                raise PluginProblem(f"{hook} must be {names}, got {_short(own)}")
            if hook == "interval_s" and own is not None and not (own > 0 and math.isfinite(own)):
                raise PluginProblem(f"interval_s must be a positive number of seconds, got {own}")
        values[hook] = own
    if kind == "choker":
        values["rechoke"] = _unchoke_of(values["rechoke"])
    if kind == "departure":  # only rules that can say no pay for being asked at every round
        values["gates_service"] = _own(obj, "serves", family) is not _MISSING
    if kind == "incentive":
        values["reasons"] = tuple(values["reasons"])
    return Bound(kind, name or type(obj).__name__, obj, values)


_MISSING = object()


def _unchoke_of(rechoke):
    """``rechoke`` answering an ``Unchoke`` always: a bare mask or weights array names no
    optimistic set (``optimistic`` None)."""

    def call(view: ChokeView, rng: np.random.Generator) -> Unchoke:
        out = rechoke(view, rng)
        if isinstance(out, Unchoke):
            return Unchoke(np.asarray(out.mask), out.optimistic)
        return Unchoke(np.asarray(out), None)

    return call


def _own(obj: Any, name: str, family: type) -> Any:
    """``obj``'s hook ``name``, or ``_MISSING`` where the plug-in does not define it itself
    (it lacks it, or only inherits the family's declared default)."""
    if name in getattr(obj, "__dict__", {}):
        return obj.__dict__[name]
    for klass in type(obj).__mro__:
        if klass is family:
            return _MISSING
        if name in vars(klass):
            return getattr(obj, name)
    return _MISSING


def _default(obj: Any, name: str, default: Any) -> Any:
    """A hook ``obj`` does not define: its own parameter of that name, else the declared
    default (a method bound to ``obj``)."""
    params = getattr(obj, "params", None)
    if name in ("interval_s", "abort_rate_per_s", "credit_tokens") and hasattr(params, name):
        return getattr(params, name)
    if callable(default) and not isinstance(default, type):
        return default.__get__(obj)  # the declared default, bound to this plug-in
    return default


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
