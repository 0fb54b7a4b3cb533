"""Everything a scenario chooses by name: each family is a registry of small plug-ins."""

from swarmsim.policies import (  # noqa: F401  (registers)
    choking_clients,
    choking_strategic,
    incentives_credit,  # noqa: F401  (registers)
)
from swarmsim.policies.bandwidth import BANDWIDTH
from swarmsim.policies.behavior import ARRIVALS, DEPARTURES
from swarmsim.policies.choking import CHOKERS
from swarmsim.policies.incentives import INCENTIVES
from swarmsim.policies.pieces import PICKERS

REGISTRIES = {r.kind: r for r in (CHOKERS, PICKERS, ARRIVALS, DEPARTURES, BANDWIDTH, INCENTIVES)}

__all__ = ["ARRIVALS", "BANDWIDTH", "CHOKERS", "DEPARTURES", "INCENTIVES", "PICKERS", "REGISTRIES"]
