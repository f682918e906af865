"""Live updates: occupancy changes published through Redis pub/sub and fanned out to subscribers in each
API process (see broker.py)."""

from hub.live.broker import LiveBroker, Subscriber
from hub.live.events import OCCUPANCY_PATTERN, OccupancyChange, occupancy_channel
from hub.live.rules import OccupancyWatch
from hub.live.service import occupancy_watch, publish_occupancy_changes

__all__ = [
    "OCCUPANCY_PATTERN",
    "LiveBroker",
    "OccupancyChange",
    "OccupancyWatch",
    "Subscriber",
    "occupancy_channel",
    "occupancy_watch",
    "publish_occupancy_changes",
]
