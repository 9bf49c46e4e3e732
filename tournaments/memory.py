"""The memory gap of a tournament (docs/memory.md): its lineup's results against the same
tournament masked, and before against after each model's training cutoff.

Reads the runs' stored results (return % per participant) and hands them to the pure
analytics.memory_gap; windows are matched by index and keyed by their real start time.

The masked counterpart is the same lineup on the same windows with `rules.masked` flipped:
made by services.tournament_copy (API POST .../copy, the admin's "copy as masked", or
`manage.py tournament_copy ID --masked`), which records `copy_of`, so the report finds it.
`memory_gap_report` checks the pair (lineup, windows, instances, seed, market) and says in
words what each gap means and what it cannot mean.
"""

from __future__ import annotations

from agents.registry import NO_MEMORY_PROVIDERS, participant_training_cutoff
from analytics.memory_gap import AgentMemoryGap, Gap, memory_gaps
from analytics.tournament import RunResult
from gauntlet.errors import DomainError

from .in_sample import in_sample_report
from .models import RunStatus, Tournament, TournamentEntry, TournamentRun

METRIC = "return_pct"
LIMITS = (
    "A masked series is still the real series: a model may recognise a famous episode from its shape alone (a "
    "50 % crash in a day, a months-long rally) or from how the assets move together. Masking removes names, dates "
    "and price levels, not shapes.",
    "The cutoff gap compares different markets (before and after a date): a change of regime looks the same as "
    "memory. The masked gap compares the same market and is the cleaner measure.",
    "A published cutoff is the provider's statement; later fine-tuning data may be newer. After the cutoff means "
    "after the stated cutoff, not certainly unseen.",
    "An interval that includes 0 is not proof that the model remembers nothing: with few windows, a real gap can "
    "hide inside it.",
)
MEANING = (
    "Masked gap = return % unmasked minus return % masked, per window, averaged over the windows both tournaments "
    "completed, with a 95 % bootstrap interval over windows. A gap whose interval lies above 0 says the agent did "
    "better where it could tell which market and which dates it was trading: some of its result may come from "
    "remembering that history rather than from trading skill. Cutoff gap = mean return % of the windows that start "
    "before the agent's training-data cutoff minus the mean of those after it (two-sample bootstrap)."
)


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
    The flags tournaments.in_sample's report holds, keyed for a quick look-up."""
    report = in_sample_report(tournament_id=tournament_id)
    return {
        (agent, index): None if memory.status == "unknown" else index in memory.in_sample_windows
        for agent, memory in report.agents.items()
        for index in report.window_indexes
    }


# -- the pair: the same lineup and windows, masked and not ------------------------------------------


def is_masked(tournament: Tournament) -> bool:
    return bool((tournament.rules or {}).get("masked"))


def _lineup(tournament: Tournament) -> list[tuple]:
    return sorted(
        (e.name, e.llm_provider, e.llm_model) for e in TournamentEntry.objects.filter(tournament=tournament)
    )


def _windows(tournament: Tournament) -> list[tuple]:
    return list(tournament.windows.order_by("index").values_list("index", "start_time", "end_time"))


def pair_problems(plain: Tournament, masked: Tournament) -> list[str]:
    """Why two tournaments are not the same lineup on the same windows, one masked (empty: they are)."""
    problems = []
    if is_masked(plain):
        problems.append(f"tournament {plain.pk} is masked: the first of the pair must replay the real market")
    if not is_masked(masked):
        problems.append(f"tournament {masked.pk} is not masked (its rules have no masked: true)")
    if _lineup(plain) != _lineup(masked):
        problems.append("the lineups differ (names, providers or models)")
    if _windows(plain) != _windows(masked):
        problems.append("the windows differ")
    for field in ("dataset", "timeframe", "symbols", "instances", "seed"):
        if getattr(plain, field) != getattr(masked, field):
            problems.append(f"{field} differs ({getattr(plain, field)!r} and {getattr(masked, field)!r})")
    return problems


def masked_counterpart(tournament: Tournament) -> Tournament | None:
    """The newest tournament linked to this one by copy_of (either way, or a sibling copy) that replays
    the other world (masked or not), has the same lineup and windows and has a completed run."""
    family = {tournament.pk}
    if tournament.copy_of_id:
        family.add(tournament.copy_of_id)
    candidates = (
        Tournament.objects.filter(pk__in=family)
        | Tournament.objects.filter(copy_of_id__in=family)
    ).exclude(pk=tournament.pk).filter(runs__status=RunStatus.COMPLETED).distinct().order_by("-created_at", "-id")
    for candidate in candidates:
        if is_masked(candidate) == is_masked(tournament):
            continue
        plain, masked = (candidate, tournament) if is_masked(tournament) else (tournament, candidate)
        if not pair_problems(plain, masked):
            return candidate
    return None


# -- the report: numbers and what they mean --------------------------------------------------------


def _gap_dict(gap: Gap | None) -> dict | None:
    if gap is None:
        return None
    interval = None
    if gap.interval is not None:
        interval = {"low": gap.interval.low, "high": gap.interval.high, "level": gap.interval.level}
    return {"value": gap.value, "interval": interval, "windows": gap.windows}


def _pct(value: float) -> str:
    return f"{value:+.2f} %"


def masked_reading(agent: str, gap: Gap | None, *, is_code: bool) -> str:
    if gap is None:
        return "No masked run of this agent to compare with."
    if gap.value is None:
        return "No window was completed both masked and unmasked."
    if is_code:
        return (f"{agent} is a built-in strategy: it trades the same way in both worlds, so its gap "
                f"({_pct(gap.value)}) is 0 by construction, a check that masking changed nothing but the names.")
    if gap.interval is None:
        return f"{agent} made {_pct(gap.value)} a window more unmasked than masked over {gap.windows} window: too few for an interval."
    span = f"95 % interval {_pct(gap.interval.low)} .. {_pct(gap.interval.high)}, {gap.windows} windows"
    if gap.interval.low > 0:
        return (f"{agent} made {_pct(gap.value)} a window more when it could see the real names and dates ({span}): "
                "the interval lies above 0, so part of its result may come from remembering this history.")
    if gap.interval.high < 0:
        return (f"{agent} did worse unmasked than masked ({_pct(gap.value)} a window, {span}): knowing the market "
                "did not help it here; memory does not explain its result.")
    return (f"{agent}: unmasked minus masked is {_pct(gap.value)} a window ({span}). The interval includes 0: no "
            "difference between knowing and not knowing the market can be told apart with these windows.")


def cutoff_reading(agent: str, result: AgentMemoryGap, cutoff: str | None) -> str:
    if cutoff is None:
        return "No training cutoff: no before/after comparison."
    gap = result.cutoff
    before, after = result.windows_before_cutoff, result.windows_after_cutoff
    if gap is None or gap.value is None:
        return (f"All {before + after} completed windows lie on one side of its cutoff {cutoff} ({before} before, "
                f"{after} after): no before/after comparison. Add windows on the other side.")
    if gap.interval is None:
        return (f"Before its cutoff {cutoff} minus after: {_pct(gap.value)} a window ({before} before, {after} after: "
                "too few on one side for an interval).")
    span = f"95 % interval {_pct(gap.interval.low)} .. {_pct(gap.interval.high)}; {before} windows before, {after} after"
    verdict = ("it did better on history it may have read" if gap.interval.low > 0 else
               "it did worse before its cutoff" if gap.interval.high < 0 else "no difference can be told apart")
    return (f"Before its cutoff {cutoff} minus after: {_pct(gap.value)} a window ({span}): {verdict}. Before and "
            "after are different markets, so this gap mixes memory with a change of regime.")


def memory_gap_report(
    *, tournament_id: int, masked_tournament_id: int | None = None, resamples: int = 2000, seed: int = 0
) -> dict:
    """The gap report the API and the page show: per agent both gaps with intervals and a sentence each.

    The tournament may be either side of the pair; without `masked_tournament_id` the counterpart is
    found through copy_of. DomainError (a 400) when the given pair is not the same lineup and windows.
    """
    tournament = Tournament.objects.get(pk=tournament_id)
    other = None
    if masked_tournament_id is not None:
        other = Tournament.objects.filter(pk=masked_tournament_id).first()
        if other is None:
            raise DomainError(f"no tournament {masked_tournament_id} to compare with", field="masked")
        if other.pk == tournament.pk:
            raise DomainError("compare a tournament with its masked copy, not with itself", field="masked")
    else:
        other = masked_counterpart(tournament)
    plain, masked = tournament, other
    if other is not None and is_masked(tournament) and not is_masked(other):
        plain, masked = other, tournament
    if masked is not None:
        problems = pair_problems(plain, masked)
        if problems:
            raise DomainError("not the same lineup masked and unmasked: " + "; ".join(problems), field="masked")
    if plain is tournament and is_masked(tournament):  # a masked tournament alone: no real dates to compare
        raise DomainError(
            f"tournament {tournament.pk} is masked and has no unmasked counterpart with results: run its unmasked "
            f"copy (POST /api/v1/tournaments/{tournament.pk}/copy {{\"masked\": false}}) first", field="masked",
        )
    gaps = tournament_memory_gap(tournament_id=plain.pk, masked_tournament_id=masked.pk if masked else None,
                                 resamples=resamples, seed=seed)
    entries = {entry.name: entry for entry in TournamentEntry.objects.filter(tournament=plain)}
    agents = []
    for result in gaps:
        entry = entries.get(result.agent)
        is_code = entry is None or entry.llm_provider in NO_MEMORY_PROVIDERS
        known = None if is_code else participant_training_cutoff(entry)
        cutoff = known.training_cutoff if known else None
        agents.append({
            "agent": result.agent, "is_code": is_code, "training_cutoff": cutoff,
            "cutoff_source": known.source_label if known else None,
            "masked_gap": _gap_dict(result.masked), "cutoff_gap": _gap_dict(result.cutoff),
            "windows_before_cutoff": result.windows_before_cutoff, "windows_after_cutoff": result.windows_after_cutoff,
            "masked_reading": masked_reading(result.agent, result.masked, is_code=is_code),
            "cutoff_reading": cutoff_reading(result.agent, result, cutoff),
        })  # fmt: skip
    note = None
    if masked is None:
        note = (f"No masked copy of this tournament has results yet, so there is no masked gap. Copy it as masked "
                f"(POST /api/v1/tournaments/{plain.pk}/copy {{\"masked\": true}}, the admin's action, or "
                f"manage.py tournament_copy {plain.pk} --masked), start the copy and come back when it has results.")
    return {
        "tournament_id": plain.pk, "tournament_name": plain.name,
        "masked_tournament_id": masked.pk if masked else None, "masked_tournament_name": masked.name if masked else None,
        "metric": METRIC, "level": 0.95, "resamples": resamples, "seed": seed,
        "agents": agents, "meaning": MEANING, "limits": list(LIMITS), "note": note,
    }  # fmt: skip
