"""swarmsim: a discrete-event simulator of BitTorrent swarms with token incentives."""

from swarmsim.results import Result
from swarmsim.scenario import Scenario, load_scenario
from swarmsim.simulate import simulate
from swarmsim.version import __version__

__all__ = ["Result", "Scenario", "load_scenario", "simulate", "__version__"]
