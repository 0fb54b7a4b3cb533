"""Everything a scenario chooses by name: each family is a registry of small plug-ins."""

from swarmsim.policies import choking_clients, choking_strategic  # noqa: F401  (registers)
from swarmsim.policies.bandwidth import BANDWIDTH
from swarmsim.policies.behavior import ARRIVALS, DEPARTURES
from swarmsim.policies.choking import CHOKERS
from swarmsim.policies.pieces import PICKERS

REGISTRIES = {r.kind: r for r in (CHOKERS, PICKERS, ARRIVALS, DEPARTURES, BANDWIDTH)}

__all__ = ["ARRIVALS", "BANDWIDTH", "CHOKERS", "DEPARTURES", "PICKERS", "REGISTRIES"]
