"""The scenarios, in the order tools/chaos runs them."""
from collections import namedtuple

from . import hostile, kill, mesh, slow, storage

Scenario = namedtuple("Scenario", "name run ci_duration")

SCENARIOS = [
    Scenario("kill", kill.run, 12),
    Scenario("mesh", mesh.run, 15),
    Scenario("peerdown", storage.peer_down, 5),
    Scenario("diskfull", storage.disk_full, 5),
    Scenario("damage", storage.damaged_spool, 5),
    Scenario("hostile", hostile.run, 10),
    Scenario("slow", slow.run, 8),
]
