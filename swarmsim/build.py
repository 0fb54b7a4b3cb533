"""Every plug-in a scenario names, built and bound to its family's hooks before a run.

``swarmsim validate`` and ``simulate()`` both go through ``build_plugins``: a plug-in whose
constructor raises or that lacks a hook its family requires is a ``ScenarioError`` naming
the scenario field (``choker.name``), the plug-in and what is wrong, before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from swarmsim.api import Bound, PluginProblem, bind
from swarmsim.errors import ScenarioError
from swarmsim.policies import ARRIVALS, BANDWIDTH, CHOKERS, DEPARTURES, INCENTIVES, PICKERS
from swarmsim.policyspec import PolicySpec


@dataclass
class Plugins:
    """The bound plug-ins of one run. Per class: its choker (None: the scenario's), its
    arrival process and its departure rule (a class's own, else ``stay`` for classes that
    start as seeds and the scenario's for the others)."""

    choker: Bound
    class_chokers: list[Bound | None]
    picker: Bound
    bandwidth: Bound
    incentive: Bound
    arrivals: list[Bound]
    departures: list[Bound]

    def all(self) -> list[Bound]:
        """Every plug-in the scenario built, once each."""
        extra = [c for c in self.class_chokers if c is not None]
        return [
            self.choker,
            *extra,
            self.picker,
            self.bandwidth,
            self.incentive,
            *self.arrivals,
            *self.departures,
        ]


def build_one(spec: PolicySpec, registry, path: str, source: str | None = None) -> Bound:
    """Build one plug-in and bind its hooks; any fault is a ``ScenarioError`` at ``path``."""
    what = f"{registry.kind} {spec.name!r}"
    try:
        obj = spec.build(registry)
    except Exception as exc:  # a user's constructor may raise anything
        raise ScenarioError(
            [(path, f"{what} could not be built: {type(exc).__name__}: {exc}")], source
        ) from None
    try:
        return bind(registry.kind, obj, spec.name)
    except PluginProblem as exc:
        raise ScenarioError([(path, f"{what} {exc}")], source) from None


def build_arrivals(sc, source: str | None = None) -> list[Bound]:
    """Each peer class's arrival process, built and checked."""
    return [
        build_one(pc.arrival, ARRIVALS, f"peers[{k}].arrival.name", source)
        for k, pc in enumerate(sc.peers)
    ]


def build_plugins(sc, source: str | None = None) -> Plugins:
    """Every plug-in of ``sc``, built and bound (``source``: the scenario's file, for errors)."""
    departures = []
    for k, pc in enumerate(sc.peers):
        if pc.departure is not None:
            departures.append(
                build_one(pc.departure, DEPARTURES, f"peers[{k}].departure.name", source)
            )
        elif pc.starts_as == "seed":
            departures.append(
                build_one(PolicySpec.default(DEPARTURES, "stay"), DEPARTURES, "departure", source)
            )
        else:
            departures.append(build_one(sc.departure, DEPARTURES, "departure.name", source))
    return Plugins(
        choker=build_one(sc.choker, CHOKERS, "choker.name", source),
        class_chokers=[
            None
            if pc.choker is None
            else build_one(pc.choker, CHOKERS, f"peers[{k}].choker.name", source)
            for k, pc in enumerate(sc.peers)
        ],
        picker=build_one(sc.picker, PICKERS, "picker.name", source),
        bandwidth=build_one(sc.bandwidth, BANDWIDTH, "bandwidth.name", source),
        incentive=build_one(sc.incentive, INCENTIVES, "incentive.name", source),
        arrivals=build_arrivals(sc, source),
        departures=departures,
    )


def blame(plugins: Plugins, exc: BaseException) -> Bound | None:
    """The plug-in whose code raised ``exc`` (the innermost of its frames in the traceback),
    or None when no plug-in's code is on it."""
    owners = {id(b.obj): b for b in plugins.all()}
    found = None
    tb = exc.__traceback__
    while tb is not None:
        me = tb.tb_frame.f_locals.get("self")
        if me is not None and id(me) in owners:
            found = owners[id(me)]
        tb = tb.tb_next
    return found
