"""The memory gap of a tournament (docs/memory.md): its lineup's results against the same
tournament masked, and before against after each model's training cutoff.

Reads the runs' stored results (return % per participant) and hands them to the pure
analytics.memory_gap; windows are matched by index and keyed by their real start time.
"""

from __future__ import annotations

from agents.registry import participant_training_cutoff
from analytics.memory_gap import AgentMemoryGap, memory_gaps
from analytics.tournament import RunResult

from .models import RunStatus, TournamentEntry, TournamentRun


def _run_results(tournament_id: int) -> tuple[list[RunResult], dict]:
    runs = TournamentRun.objects.filter(tournament_id=tournament_id, status=RunStatus.COMPLETED).select_related(
        "window"
    )
    results, starts = [], {}
    for run in runs:
        starts[run.window.index] = run.window.start_time  # windows hold real times, masked or not
        for participant in (run.result or {}).get("participants", []):
            if participant.get("return_pct") is None:
                continue
            results.append(RunResult(
                agent=participant["name"], window=run.window.index, instance=run.instance,
                return_pct=float(participant["return_pct"]), sharpe=None, max_drawdown_pct=0.0,
            ))
    return results, starts


def tournament_memory_gap(
    *, tournament_id: int, masked_tournament_id: int | None = None, resamples: int = 2000, seed: int = 0,
    level: float = 0.95,
) -> list[AgentMemoryGap]:
    """Per agent of the tournament (by entry name): the masked gap against
    `masked_tournament_id` (the same lineup and windows, rules.masked) and the cutoff gap
    over this tournament's windows, on return %."""
    runs, starts = _run_results(tournament_id)
    masked_runs = _run_results(masked_tournament_id)[0] if masked_tournament_id else []
    cutoffs = {}
    for entry in TournamentEntry.objects.filter(tournament_id=tournament_id):
        known = participant_training_cutoff(entry)
        cutoffs[entry.name] = known.cutoff_end if known else None
    return memory_gaps(runs, masked_runs=masked_runs, window_starts=starts, cutoffs=cutoffs,
                       resamples=resamples, seed=seed, level=level)


def tournament_in_sample(*, tournament_id: int) -> dict[tuple[str, int], bool | None]:
    """(entry name, window index) -> in-sample for this tournament's runs: the window starts
    before the entry's training cutoff (never when the rules mask the runs; None: unknown).
    What a ranking reads to show in-sample results apart, or to leave them out."""
    from .models import Tournament, TournamentWindow

    tournament = Tournament.objects.get(pk=tournament_id)
    masked = bool((tournament.rules or {}).get("masked"))
    windows = list(TournamentWindow.objects.filter(tournament_id=tournament_id).values_list("index", "start_time"))
    flags: dict[tuple[str, int], bool | None] = {}
    for entry in TournamentEntry.objects.filter(tournament_id=tournament_id):
        known = participant_training_cutoff(entry)
        is_code = entry.llm_provider in ("baseline", "scripted")
        for index, start in windows:
            if masked or is_code:
                flags[(entry.name, index)] = False
            else:
                flags[(entry.name, index)] = None if known is None else start < known.cutoff_end
    return flags
