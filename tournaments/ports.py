"""Everything this app uses from competitions and agents, imported in this one module.

Those apps are being reorganised (competitions.rounds becomes a package, replay_run moves
with it): when a path changes, only the imports below change.
"""

from agents.models import Invocation
from competitions.models import Competition, Participant, Round
from competitions.replay import replay_run
from competitions.services import (
    competition_cancel,
    competition_create,
    competition_start,
    participant_register,
)
from trading.models import EquitySnapshot

__all__ = [
    "Competition",
    "EquitySnapshot",
    "Invocation",
    "Participant",
    "Round",
    "competition_cancel",
    "competition_create",
    "competition_start",
    "participant_register",
    "replay_run",
]
