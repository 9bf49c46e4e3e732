"""Everything this app uses from the layers below it (competitions, agents, trading), in one
place: a tournament drives ordinary replay competitions through their public services."""

from agents.llm_config import llm_config_check
from agents.models import Invocation
from agents.providers.baselines import STRATEGIES as BASELINE_STRATEGIES
from competitions.dispatch import in_process_job_register
from competitions.models import Competition, Participant, Round
from competitions.rounds.replay import replay_run
from competitions.rules import RULE_FIELDS
from competitions.selectors import leaderboard_get
from competitions.services import (
    competition_cancel,
    competition_create,
    competition_start,
    participant_register,
)
from trading.models import EquitySnapshot

__all__ = [
    "BASELINE_STRATEGIES",
    "Competition",
    "EquitySnapshot",
    "Invocation",
    "Participant",
    "RULE_FIELDS",
    "Round",
    "competition_cancel",
    "competition_create",
    "competition_start",
    "in_process_job_register",
    "leaderboard_get",
    "llm_config_check",
    "participant_register",
    "replay_run",
]
