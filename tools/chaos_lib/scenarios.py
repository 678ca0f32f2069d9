"""The scenarios, in the order tools/chaos runs them."""
from collections import namedtuple

from . import kill

Scenario = namedtuple("Scenario", "name run ci_duration")

SCENARIOS = [
    Scenario("kill", kill.run, 12),
]
