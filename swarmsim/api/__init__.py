"""The plug-in API: every family's hooks with their defaults (``plugins``) and the read-only
views the hooks receive (``views``). Plug-ins import only this package, never the engine."""

from swarmsim.api.plugins import (
    CORE_REASONS,
    Arrival,
    Bandwidth,
    Bound,
    Choker,
    Departure,
    FlowNet,
    Incentive,
    Picker,
    PluginProblem,
    SeedingState,
    Unchoke,
    bind,
    hooks,
)
from swarmsim.api.views import ChokeView, PickView

__all__ = [
    "CORE_REASONS",
    "Arrival",
    "Bandwidth",
    "Bound",
    "ChokeView",
    "Choker",
    "Departure",
    "FlowNet",
    "Incentive",
    "PickView",
    "Picker",
    "PluginProblem",
    "SeedingState",
    "Unchoke",
    "bind",
    "hooks",
]
