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
one). The report is read in three queries (rules, windows, lineup), or built by `report_of`
from them; the split is pure. Which mode a ranking uses is part of its stored results' settings
(tournaments.results.ResultsSettings.in_sample), and `selection_digest` part of their key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from agents.registry import NO_MEMORY_PROVIDERS, training_cutoff_for
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

    @property
    def digest(self) -> str:
        """What decides which windows are in-sample for whom, besides the windows themselves (fixed
        once a tournament starts): whether it is masked and, per entry, the cutoff it resolves to
        (llm_config.training_cutoff, else the registry) with its source. Stored results key on it
        (tournaments.results), so a corrected cutoff in the registry or an entry's override makes
        them stale instead of serving the old selection."""
        payload = [self.masked, sorted(
            [m.agent, m.status, m.training_cutoff, m.cutoff_source, m.cutoff_verified] for m in self.agents.values()
        )]  # fmt: skip
        return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:16]


def mode_check(mode: str | None, default: str = DEFAULT_MODE) -> str:
    """`mode`, or the default when None; ValueError for anything else."""
    if mode is None or mode == "":
        return default
    if mode not in MODES:
        raise ValueError(f"in_sample must be one of {list(MODES)}, got {mode!r}")
    return mode


def _memory(entry: dict, masked: bool, windows: Sequence[tuple[int, datetime]]) -> AgentMemory:
    """What one lineup entry (name, llm_provider, llm_model, llm_config) may remember of these windows."""
    provider = entry["llm_provider"]
    known = None
    if provider not in NO_MEMORY_PROVIDERS:
        known = training_cutoff_for(provider, entry["llm_model"], entry.get("llm_config"))
    if provider in NO_MEMORY_PROVIDERS:
        status = "code"
    elif masked:
        status = "masked"
    else:
        status = "known" if known else "unknown"
    before = () if status != "known" else tuple(index for index, start in windows if start < known.cutoff_end)
    return AgentMemory(
        agent=entry["name"], status=status, training_cutoff=known.training_cutoff if known else None,
        cutoff_source=known.source_label if known else None, cutoff_verified=known.verified if known else None,
        in_sample_windows=before,
    )  # fmt: skip


def report_of(*, masked: bool, windows: Sequence[tuple[int, datetime]], entries: Iterable[dict]) -> InSampleReport:
    """The report of a lineup over windows (index, start time): pure, for callers that hold both."""
    windows = sorted(set(windows))
    return InSampleReport(
        masked=masked, window_indexes=tuple(index for index, _ in windows),
        agents={entry["name"]: _memory(entry, masked, windows) for entry in entries},
    )


def selection_digest(*, masked: bool, entries: Iterable[dict]) -> str:
    """The report's digest without reading the windows: for a caller that holds the lineup."""
    return report_of(masked=masked, windows=(), entries=entries).digest


ENTRY_FIELDS = ("name", "llm_provider", "llm_model", "llm_config")


def in_sample_report(*, tournament_id: int) -> InSampleReport:
    """Per entry of the lineup: its cutoff, where it comes from, and the windows before it (three queries)."""
    rules = Tournament.objects.filter(pk=tournament_id).values_list("rules", flat=True).first() or {}
    windows = TournamentWindow.objects.filter(tournament_id=tournament_id).values_list("index", "start_time")
    entries = TournamentEntry.objects.filter(tournament_id=tournament_id).order_by("id").values(*ENTRY_FIELDS)
    return report_of(masked=bool(rules.get("masked")), windows=list(windows), entries=list(entries))


def selection_digest_get(tournament: Tournament) -> str:
    """selection_digest of a tournament's lineup (one query)."""
    entries = TournamentEntry.objects.filter(tournament_id=tournament.pk).values(*ENTRY_FIELDS)
    return selection_digest(masked=bool((tournament.rules or {}).get("masked")), entries=list(entries))


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
