"""swarmsim: a discrete-event simulator of BitTorrent swarms with token incentives."""

__version__ = "0.1.0"

from swarmsim.results import Result  # noqa: E402
from swarmsim.scenario import Scenario, load_scenario  # noqa: E402
from swarmsim.simulate import simulate  # noqa: E402

__all__ = ["Result", "Scenario", "load_scenario", "simulate", "__version__"]
