"""In-sample windows in tournament rankings (issue 16, docs/memory.md).

A window that starts before an agent's training-data cutoff may be answered from memory: it
is in-sample for that agent. A tournament's `in_sample` setting (or the page's or API's
choice) says what rankings do with such results:

- exclude (default): the (agent, window) results that are in-sample are left out of that
  agent's statistics. Everything paired then works on what is left: a pair is compared on the
  windows both agents have out of sample (analytics.tournament pairs on common windows, an
  absent window is never imputed), the win rates likewise, and the model confidence set on
  the windows every agent has out of sample. The ranking orders each agent by its own
  out-of-sample windows, which may be different markets for different agents: read it with the
  window counts it shows, and trust the paired verdicts for who beats whom.
- apart: the same main ranking, plus a second one over the in-sample results only.
- include: every result counts; the report still says which windows were in-sample.

A built-in strategy remembers nothing, and a masked tournament is never in-sample. An unknown
cutoff keeps the agent's windows (they may be in-sample: the report says so and how to set
one). The report is read in three queries (rules, windows, lineup); the split is pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from agents.registry import NO_MEMORY_PROVIDERS, participant_training_cutoff
from analytics.tournament import RunResult

from .models import InSampleMode, Tournament, TournamentEntry, TournamentWindow

MODES = tuple(InSampleMode.values)
DEFAULT_MODE = InSampleMode.EXCLUDE.value
NOTES = {
    "exclude": "Windows that start before an agent's training-data cutoff may be answered from memory: they are "
    "left out of that agent's statistics. A pair of agents is compared only on the windows both have out of "
    "sample; the best set uses the windows every agent has out of sample.",
    "apart": "Windows that start before an agent's training-data cutoff may be answered from memory: the main "
    "ranking leaves them out (a pair is compared only on the windows both agents have out of sample) and a "
    "second ranking shows them apart.",
    "include": "Every window counts, including those that start before an agent's training-data cutoff, whose "
    "results may come from memory.",
}
VERBS = {"exclude": "left out of its statistics", "apart": "ranked apart", "include": "included all the same"}


@dataclass(frozen=True)
class AgentMemory:
    """What one agent of the lineup may remember of the tournament's windows."""

    agent: str
    status: str  # "code", "masked", "unknown" (no cutoff) or "known"
    training_cutoff: str | None
    cutoff_source: str | None  # the page the cutoff was read from, or the participant's own setting
    cutoff_verified: bool | None
    in_sample_windows: tuple[int, ...] = ()  # indexes of the windows that start before the cutoff


@dataclass(frozen=True)
class InSampleReport:
    masked: bool
    window_indexes: tuple[int, ...]  # the tournament's windows
    agents: dict[str, AgentMemory] = field(default_factory=dict)

    def in_sample(self, agent: str, window: int) -> bool:
        memory = self.agents.get(agent)
        return memory is not None and window in memory.in_sample_windows


def mode_check(mode: str | None, default: str = DEFAULT_MODE) -> str:
    """`mode`, or the default when None; ValueError for anything else."""
    if mode is None or mode == "":
        return default
    if mode not in MODES:
        raise ValueError(f"in_sample must be one of {list(MODES)}, got {mode!r}")
    return mode


def in_sample_report(*, tournament_id: int) -> InSampleReport:
    """Per entry of the lineup: its cutoff, where it comes from, and the windows before it (three queries)."""
    rules = Tournament.objects.filter(pk=tournament_id).values_list("rules", flat=True).first() or {}
    masked = bool(rules.get("masked"))
    windows = list(TournamentWindow.objects.filter(tournament_id=tournament_id).values_list("index", "start_time"))
    agents = {}
    for entry in TournamentEntry.objects.filter(tournament_id=tournament_id).only(
        "name", "llm_provider", "llm_model", "llm_config"
    ):
        known = None if entry.llm_provider in NO_MEMORY_PROVIDERS else participant_training_cutoff(entry)
        if entry.llm_provider in NO_MEMORY_PROVIDERS:
            status = "code"
        elif masked:
            status = "masked"
        else:
            status = "known" if known else "unknown"
        before = () if status != "known" else tuple(index for index, start in windows if start < known.cutoff_end)
        agents[entry.name] = AgentMemory(
            agent=entry.name, status=status, training_cutoff=known.training_cutoff if known else None,
            cutoff_source=known.source_label if known else None, cutoff_verified=known.verified if known else None,
            in_sample_windows=before,
        )  # fmt: skip
    return InSampleReport(masked=masked, window_indexes=tuple(index for index, _ in windows), agents=agents)


@dataclass(frozen=True)
class Split:
    out_of_sample: list[RunResult]
    in_sample: list[RunResult]
    left_out: dict[str, tuple[int, ...]]  # agent -> windows with results that are in-sample for it


def runs_split(runs: Sequence[RunResult], report: InSampleReport) -> Split:
    """The runs an agent may not remember, and the ones it may (by its cutoff and the window's start)."""
    kept, remembered, left_out = [], [], {}
    for run in runs:
        if report.in_sample(run.agent, run.window):
            remembered.append(run)
            left_out.setdefault(run.agent, set()).add(run.window)
        else:
            kept.append(run)
    return Split(kept, remembered, {agent: tuple(sorted(windows)) for agent, windows in left_out.items()})


def agent_reason(memory: AgentMemory, mode: str, *, result_windows: int, left_out: int) -> str:
    """One plain sentence: what happened to this agent's windows, and why."""
    if memory.status == "code":
        return "A built-in strategy remembers nothing: every window counts."
    if memory.status == "masked":
        return "Masked replay: no name, date or price level to recognise, so no window is in-sample."
    if memory.status == "unknown":
        return ("Training cutoff unknown (the provider publishes none, or the model is not in the registry): every "
                "window counts and some may be in-sample. Set llm_config.training_cutoff on the entry.")
    cutoff = f"its training-data cutoff {memory.training_cutoff} (source: {memory.cutoff_source})"
    if not left_out:
        return f"Every window with results starts after {cutoff}: every window counts."
    return (f"{left_out} of {result_windows} window{'s' if result_windows != 1 else ''} with results start before "
            f"{cutoff}: {VERBS[mode]}.")


def report_dict(report: InSampleReport, split: Split, mode: str, result_windows: int) -> dict:
    """What the API and the page say about in-sample windows (plain JSON)."""
    agents = []
    for name, memory in report.agents.items():
        left_out = len(split.left_out.get(name, ()))
        agents.append({
            "agent": name, "status": memory.status, "training_cutoff": memory.training_cutoff,
            "cutoff_source": memory.cutoff_source, "cutoff_verified": memory.cutoff_verified,
            "in_sample_windows": list(memory.in_sample_windows),
            "windows_left_out": left_out if mode != "include" else 0,
            "windows_in_sample_with_results": left_out,
            "reason": agent_reason(memory, mode, result_windows=result_windows, left_out=left_out),
        })  # fmt: skip
    return {
        "mode": mode,
        "masked": report.masked,
        "note": NOTES[mode],
        "agents": agents,
        "windows_left_out": sum(item["windows_left_out"] for item in agents),
    }
