"""Exports of a tournament: its runs, invocations and agents as rows, and the reproducibility bundle.

The bundle holds what it takes to replay a tournament elsewhere and get the same numbers:
the rules, the lineup (without keys), the windows and seeds, the dataset's identity and a
checksum of its candles, the prompt version, and every recorded model answer its runs used.
As a file it is JSON lines: a header object, then one decision-cache entry per line.
Imported with the cache in read_only mode it replays without calling a model.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from typing import Any

from django.db import transaction

from agents import cache as decision_cache
from gauntlet.errors import DomainError

from . import ports, services
from .in_sample import in_sample_report
from .models import RunStatus, Tournament, TournamentRun
from .results import finite_or_none

BUNDLE_FORMAT = "gauntlet.tournament-bundle"
BUNDLE_VERSION = 1
HEADER_FIELDS = (
    "name", "description", "rules", "dataset", "timeframe", "symbols", "windows_spec", "instances", "seed",
    "cache_mode", "max_attempts", "in_sample",
)  # fmt: skip


def _prompt_version() -> str:
    from agents.prompt import PROMPT_VERSION

    return PROMPT_VERSION


def dataset_identity(dataset: str, timeframe: str, symbols: list[str]) -> dict:
    """Name, revision, extent and a SHA-256 over every candle (symbol, open time, OHLCV) the
    tournament may read; two databases with the same checksum replay the same market."""
    from marketdata.models import Candle, Dataset

    candles = Candle.objects.filter(dataset__name=dataset, timeframe=timeframe)
    if symbols:
        candles = candles.filter(symbol__in=symbols)
    digest = hashlib.sha256()
    count, first, last = 0, None, None
    rows = candles.order_by("symbol", "open_time").values_list("symbol", "open_time", "open", "high", "low", "close",
                                                               "volume")
    for symbol, open_time, *prices in rows.iterator(chunk_size=5000):
        digest.update(f"{symbol},{open_time.isoformat()},{','.join(f'{p.normalize():f}' for p in prices)}\n".encode())
        count += 1
        first = open_time if first is None or open_time < first else first
        last = open_time if last is None or open_time > last else last
    revision = Dataset.objects.filter(name=dataset).values_list("revision", flat=True).first()
    return {
        "name": dataset, "timeframe": timeframe, "symbols": sorted(symbols), "revision": revision, "candles": count,
        "first": first.isoformat() if first else None, "last": last.isoformat() if last else None,
        "sha256": digest.hexdigest(),
    }


def _invocations(tournament_id: int):
    return ports.Invocation.objects.filter(round__competition__tournament_run__tournament_id=tournament_id)


def bundle_export(*, tournament_id: int) -> dict:
    tournament = Tournament.objects.get(pk=tournament_id)
    keys = set(_invocations(tournament_id).exclude(cache_key="").values_list("cache_key", flat=True))
    return {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "tournament": {name: getattr(tournament, name) for name in HEADER_FIELDS},
        # never a key, not even encrypted: the importer gives its own
        "lineup": [
            {"name": e.name, "llm_provider": e.llm_provider, "llm_model": e.llm_model, "llm_config": e.llm_config,
             "had_api_key": e.has_api_key}
            for e in tournament.entries.all()
        ],
        "windows": [
            {"index": w.index, "start": w.start_time.isoformat(), "end": w.end_time.isoformat()}
            for w in tournament.windows.all()
        ],
        "seeds": [tournament.seed + k for k in range(tournament.instances)],
        "dataset": dataset_identity(tournament.dataset, tournament.timeframe, list(tournament.symbols or [])),
        "prompt_version": _prompt_version(),
        "cache": decision_cache.entries_export(keys),
    }


def bundle_lines(bundle: dict) -> str:
    """The bundle as JSON lines: the header, then one cache entry per line."""
    header = {k: v for k, v in bundle.items() if k != "cache"}
    lines = [json.dumps(header, sort_keys=True, default=str)]
    lines += [json.dumps(entry, sort_keys=True, default=str) for entry in bundle.get("cache", [])]
    return "\n".join(lines) + "\n"


def bundle_parse(text: str) -> dict:
    """A bundle from its JSON-lines file, or from the single JSON object the API exports."""
    text = text.strip()
    try:
        whole = json.loads(text)
        if isinstance(whole, dict):
            return whole
    except json.JSONDecodeError:
        pass
    try:
        objects = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise DomainError(f"not a tournament bundle: {exc}", code="invalid_bundle") from exc
    if not objects or not isinstance(objects[0], dict):
        raise DomainError("not a tournament bundle: the first line must be its header", code="invalid_bundle")
    return {**objects[0], "cache": objects[1:]}


@transaction.atomic
def bundle_import(*, bundle: dict, cache_mode: str | None = None, allow_other_data: bool = False,
                  api_keys: dict[str, str] | None = None) -> tuple[Tournament, list[str]]:
    """A draft tournament made from a bundle, and its recorded answers added to the cache.

    Refuses a dataset whose checksum differs (other candles mean another tournament) unless
    allow_other_data; returns warnings, e.g. a different prompt version (cached answers will
    then not match: the prompts they answered are not the ones this code writes).
    """
    if not isinstance(bundle, dict) or bundle.get("format") != BUNDLE_FORMAT:
        raise DomainError(f"not a tournament bundle (format must be {BUNDLE_FORMAT!r})", code="invalid_bundle")
    if bundle.get("version") != BUNDLE_VERSION:
        raise DomainError(f"bundle version {bundle.get('version')!r} is not supported", code="invalid_bundle")
    header = bundle.get("tournament")
    lineup = bundle.get("lineup")
    if not isinstance(header, dict) or not isinstance(lineup, list):
        raise DomainError("the bundle needs a tournament and a lineup", code="invalid_bundle")
    warnings = []
    fields = {name: header[name] for name in HEADER_FIELDS if name in header}
    symbols = fields.get("symbols") or []
    if not isinstance(fields.get("dataset"), str) or not isinstance(fields.get("timeframe", "1h"), str) or not (
        isinstance(symbols, list) and all(isinstance(s, str) for s in symbols)
    ):
        raise DomainError("the bundle's dataset, timeframe and symbols are malformed", code="invalid_bundle")
    if cache_mode is not None:
        fields["cache_mode"] = cache_mode
    recorded = bundle.get("dataset") or {}
    local = dataset_identity(fields.get("dataset", ""), fields.get("timeframe", "1h"), list(fields.get("symbols") or []))
    if recorded.get("sha256") != local["sha256"]:
        message = (
            f"dataset {local['name']!r} here has {local['candles']} candles with checksum {local['sha256'][:16]}, "
            f"the bundle's had {recorded.get('candles')} with {str(recorded.get('sha256'))[:16]}"
        )
        if not allow_other_data:
            raise DomainError(message, field="dataset", code="dataset_mismatch")
        warnings.append(message)
    if bundle.get("prompt_version") != _prompt_version():
        warnings.append(
            f"prompt version {bundle.get('prompt_version')!r} differs from this code's {_prompt_version()!r}: "
            "cached answers will not match the new prompts"
        )
    keys = api_keys or {}
    entries = [
        {"name": e.get("name"), "llm_provider": e.get("llm_provider"), "llm_model": e.get("llm_model"),
         "llm_config": e.get("llm_config") or {}, "api_key": keys.get(str(e.get("name")))}
        for e in lineup if isinstance(e, dict)
    ]
    tournament = services.tournament_create(entries=entries, **fields)
    try:
        added = decision_cache.entries_import(list(bundle.get("cache") or []))
    except (ValueError, TypeError) as exc:
        raise DomainError(f"the bundle's cache is malformed: {exc}", code="invalid_bundle") from exc
    if added < len(bundle.get("cache") or []):
        warnings.append(f"{len(bundle['cache']) - added} cached answers were already here and were kept")
    return tournament, warnings


# -- rows -----------------------------------------------------------------------------------

RUN_COLUMNS = ("run_id", "window", "window_start", "window_end", "instance", "seed", "status", "attempts", "rounds_done",
               "llm_cost_usd", "competition_id", "participant", "final_equity", "return_pct", "error")
INVOCATION_COLUMNS = ("run_id", "window", "instance", "participant", "round", "market_time", "provider", "model",
                      "status", "cached", "input_tokens", "output_tokens", "cost_usd", "parsed_decision", "error")


def run_rows(tournament_id: int) -> list[dict[str, Any]]:
    """One row per run and participant (a run without a result yet: one row, no participant)."""
    rows = []
    runs = TournamentRun.objects.filter(tournament_id=tournament_id).select_related("window").order_by(
        "window__index", "instance")
    for run in runs:
        base = {"run_id": run.pk, "window": run.window.index, "window_start": run.window.start_time.isoformat(),
                "window_end": run.window.end_time.isoformat(), "instance": run.instance, "seed": run.seed,
                "status": run.status, "attempts": run.attempts, "rounds_done": run.rounds_done,
                "llm_cost_usd": str(run.llm_cost_usd), "competition_id": run.competition_id, "error": run.error}
        participants = (run.result or {}).get("participants") or [{}]
        for p in participants:
            rows.append({**base, "participant": p.get("name", ""), "final_equity": p.get("final_equity"),
                         "return_pct": p.get("return_pct")})
    return rows


def invocation_rows(tournament_id: int) -> list[dict[str, Any]]:
    invocations = _invocations(tournament_id).select_related(
        "participant", "round", "round__competition__tournament_run__window"
    ).order_by("round__competition_id", "round__number", "participant_id")
    rows = []
    for i in invocations:
        run = i.round.competition.tournament_run
        rows.append({
            "run_id": run.pk, "window": run.window.index, "instance": run.instance, "participant": i.participant.name,
            "round": i.round.number, "market_time": i.round.market_time.isoformat(), "provider": i.provider,
            "model": i.model, "status": i.status, "cached": i.cached, "input_tokens": i.input_tokens,
            "output_tokens": i.output_tokens, "cost_usd": str(i.cost_usd), "parsed_decision": i.parsed_decision,
            "error": i.error,
        })
    return rows


# -- per-agent rows, from the stored results (tournaments.results) ---------------------------------


AGENT_RESULT_COLUMNS = [
    "run_id", "window", "instance", "agent", "is_baseline", "return_pct", "sharpe", "max_drawdown_pct",
    "cost_adjusted_return_pct", "cost_usd", "input_tokens", "output_tokens", "invocations", "invalid_responses",
    "actions_proposed", "actions_rejected", "latency_seconds_sum", "latency_samples", "rounds",
    "benchmark_return_pct", "in_sample",
]  # fmt: skip


def agent_result_rows(tournament_id: int) -> list[dict]:
    """One row per completed run and agent, as stored: a tidy frame for pandas. `in_sample`:
    the window starts before the agent's training cutoff (None: its cutoff is unknown)."""
    memory = in_sample_report(tournament_id=tournament_id).agents
    rows = []
    for run_id, window, instance, result in (
        TournamentRun.objects.filter(tournament_id=tournament_id, status=RunStatus.COMPLETED)
        .order_by("window__index", "instance")
        .values_list("pk", "window__index", "instance", "result")
    ):
        for participant in (result or {}).get("participants", []):
            stats = participant.get("statistics") or {}
            rows.append({
                "run_id": run_id, "window": window, "instance": instance, "agent": participant["name"],
                "is_baseline": participant.get("llm_provider") == "baseline",
                "return_pct": finite_or_none(None if participant.get("return_pct") is None else float(participant["return_pct"])),
                **{column: stats.get(column) for column in AGENT_RESULT_COLUMNS[6:18]},
                "rounds": len(stats.get("returns") or ()) if stats else None,
                "benchmark_return_pct": (result or {}).get("benchmark_return_pct"),
                "in_sample": _in_sample(memory.get(participant["name"]), window),
            })  # fmt: skip
    return rows


def _in_sample(memory, window: int) -> bool | None:
    if memory is None or memory.status == "unknown":
        return None
    return window in memory.in_sample_windows


AGENT_SUMMARY_COLUMNS = [
    "rank", "agent", "is_baseline", "in_confidence_set", "mcs_p_value", "windows", "runs", "metric", "mean",
    "mean_low", "mean_high", "median", "median_low", "median_high", "win_rate_vs_buy_and_hold_pct",
    "sharpe_per_round", "sharpe_lo_standard_error", "psr", "dsr", "invocations", "invalid_response_rate_pct",
    "rejected_action_rate_pct", "cost_usd", "input_tokens", "output_tokens", "mean_latency_seconds",
]  # fmt: skip


def agent_summary_rows(results: dict) -> list[dict]:
    """One row per agent for the results' metric (tournament_results_get): the ranking, flat."""
    metric = results["metric"]
    p_values = (results.get("model_confidence_set") or {}).get("p_values", {})
    rows = []
    for row in results["ranking"]:
        summary, confidence, usage = row["metrics"][metric], row["sharpe_confidence"], row["usage"]
        mean_interval, median_interval = summary["mean_interval"] or {}, summary["median_interval"] or {}
        hold = next((rate for rate in row["win_rates"] if rate["opponent"] == "buy and hold"), {})
        rows.append({
            "rank": row["rank"], "agent": row["agent"], "is_baseline": row["is_baseline"],
            "in_confidence_set": row["in_confidence_set"], "mcs_p_value": p_values.get(row["agent"]),
            "windows": row["windows"], "runs": row["runs"], "metric": metric, "mean": summary["mean"],
            "mean_low": mean_interval.get("low"), "mean_high": mean_interval.get("high"), "median": summary["median"],
            "median_low": median_interval.get("low"), "median_high": median_interval.get("high"),
            "win_rate_vs_buy_and_hold_pct": hold.get("rate_pct"),
            "sharpe_per_round": confidence["sharpe_per_round"],
            "sharpe_lo_standard_error": confidence["lo_standard_error"],
            "psr": confidence["psr"], "dsr": confidence["dsr"],
            **{column: usage[column] for column in (
                "invocations", "invalid_response_rate_pct", "rejected_action_rate_pct", "cost_usd", "input_tokens",
                "output_tokens", "mean_latency_seconds")},
        })  # fmt: skip
    return rows


def rows_csv(rows: list[dict], columns: tuple[str, ...]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in row.items()})
    return out.getvalue()
