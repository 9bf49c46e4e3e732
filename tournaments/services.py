"""Writes for tournaments: create and change a draft, expand it into runs, claim and execute runs.

A run is claimed by one conditional UPDATE (pending, or running with an expired lease,
to running with this owner): whoever's UPDATE changed the row executes it, nobody else.
The lease is renewed after every round, so a worker that dies leaves a run that another
worker may take over once the lease runs out; replay_run resumes at the first round not
completed, so the takeover repeats nothing that was committed.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from gauntlet.errors import ConflictError, DomainError
from gauntlet.secrets import encrypt_secret

from . import ports
from .models import RunStatus, Tournament, TournamentEntry, TournamentRun, TournamentWindow

logger = logging.getLogger(__name__)

Status = Tournament.Status

# The competition rules and costs a tournament's template may set (plus whether standings go
# in the prompt); each run sets the others (times, seed, mode, dataset, timeframe, symbols).
RUN_SET_FIELDS = {"mode", "dataset", "timeframe", "symbols", "start_time", "seed"}
RULE_FIELDS = (*(name for name in ports.RULE_FIELDS if name not in RUN_SET_FIELDS), "prompt_leaderboard")
TOURNAMENT_FIELDS = {
    "name", "description", "rules", "dataset", "timeframe", "symbols", "windows_spec", "instances", "seed",
    "cache_mode", "max_attempts", "in_sample",
}  # fmt: skip
# What the rankings do with in-sample windows changes no run: it may change in any state.
ANYTIME_FIELDS = {"in_sample"}
ENTRY_FIELDS = {"name", "llm_provider", "llm_model", "llm_config", "api_key"}
MAX_WINDOWS = 1000
MAX_RUNS = 5000
MAX_SPAN_MINUTES = 20 * 366 * 24 * 60  # twenty years: any dataset's whole history
# -- windows ------------------------------------------------------------------------------


def _moment(value: Any, field: str) -> datetime:
    try:
        moment = value if isinstance(value, datetime) else parse_datetime(str(value or ""))
    except ValueError:  # well-formed but impossible, like month 13
        moment = None
    if moment is None or timezone.is_naive(moment):
        raise DomainError(f"{field} must be a timezone-aware ISO-8601 time, got {value!r}", field="windows_spec")
    return moment


def _positive_int(spec: dict, name: str, default: int | None = None) -> int | None:
    value = spec.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SPAN_MINUTES:
        raise DomainError(
            f"windows_spec.{name} must be a whole number of minutes from 1 to {MAX_SPAN_MINUTES}", field="windows_spec"
        )
    return value


def windows_plan(spec: dict) -> list[tuple[datetime, datetime]]:
    """(start, end) of every window a spec describes, in order.

    Explicit: {"windows": [{"start": ..., "end": ...}, ...]}. Generated: {"start", "end"
    (optional), "count" (optional if end is given), "length_minutes", "step_minutes"
    (default: the length, so windows tile)}: window i spans start + i*step .. + length.
    """
    if not isinstance(spec, dict) or not spec:
        raise DomainError("windows_spec must describe at least one window", field="windows_spec")
    if "windows" in spec:
        items = spec["windows"]
        if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
            raise DomainError("windows_spec.windows must be a non-empty list of {start, end}", field="windows_spec")
        plan = [(_moment(i.get("start"), "start"), _moment(i.get("end"), "end")) for i in items]
    else:
        start = _moment(spec.get("start"), "windows_spec.start")
        end = _moment(spec["end"], "windows_spec.end") if spec.get("end") else None
        length = timedelta(minutes=_positive_int(spec, "length_minutes"))
        step = timedelta(minutes=_positive_int(spec, "step_minutes", int(length.total_seconds() // 60)))
        count = _positive_int(spec, "count")
        if count is None and end is None:
            raise DomainError("a generated windows_spec needs a count or an end", field="windows_spec")
        if count is not None and count > MAX_WINDOWS:
            raise DomainError(f"at most {MAX_WINDOWS} windows", field="windows_spec")
        plan = []
        while count is None or len(plan) < count:
            try:
                window = (start + step * len(plan), start + step * len(plan) + length)
            except OverflowError as exc:
                raise DomainError("windows_spec runs past the year 9999", field="windows_spec") from exc
            if end is not None and window[1] > end:
                if count is not None:
                    raise DomainError(
                        f"{count} windows of {length} every {step} do not fit before {end.isoformat()}",
                        field="windows_spec",
                    )
                break
            plan.append(window)
            if len(plan) > MAX_WINDOWS:
                break
    if not plan:
        raise DomainError("windows_spec gives no window", field="windows_spec")
    if len(plan) > MAX_WINDOWS:
        raise DomainError(f"at most {MAX_WINDOWS} windows", field="windows_spec")
    for start, end in plan:
        if end <= start:
            raise DomainError(f"a window must end after it starts ({start.isoformat()})", field="windows_spec")
    return plan


def _dataset_bounds(dataset: str, timeframe: str) -> tuple[datetime, datetime] | None:
    from django.db.models import Max, Min

    from marketdata.models import Candle

    bounds = Candle.objects.filter(dataset__name=dataset, timeframe=timeframe).aggregate(
        first=Min("open_time"), last=Max("open_time")
    )
    return None if bounds["first"] is None else (bounds["first"], bounds["last"])


@transaction.atomic
def windows_generate(*, tournament_id: int) -> list[TournamentWindow]:
    """Replace a draft's windows with the ones its spec describes, checked against the dataset."""
    tournament = Tournament.objects.select_for_update().get(pk=tournament_id)
    _require_draft(tournament)
    plan = windows_plan(tournament.windows_spec)
    bounds = _dataset_bounds(tournament.dataset, tournament.timeframe)
    if bounds is None:
        raise DomainError(
            f"dataset {tournament.dataset!r} has no {tournament.timeframe} candles", field="dataset"
        )
    outside = [s for s, e in plan if s < bounds[0] or s > bounds[1]]
    if outside:
        raise DomainError(
            f"window start {outside[0].isoformat()} is outside the dataset "
            f"({bounds[0].isoformat()} .. {bounds[1].isoformat()})",
            field="windows_spec",
        )
    tournament.windows.all().delete()
    return TournamentWindow.objects.bulk_create(
        TournamentWindow(tournament=tournament, index=i, start_time=s, end_time=e) for i, (s, e) in enumerate(plan)
    )


# -- create / update ------------------------------------------------------------------------


def _require_draft(tournament: Tournament) -> None:
    if tournament.status != Status.DRAFT:
        raise ConflictError(f"a {tournament.status} tournament cannot be changed", code="not_draft")


def _entries_check(entries: Any) -> list[dict]:
    if not isinstance(entries, list):
        raise DomainError("entries must be a list of agents", field="entries")
    names: set[str] = set()
    checked = []
    for position, entry in enumerate(entries):
        checked.append(entry_check(entry, position=position))
        if checked[-1]["name"] in names:
            raise DomainError(f"entry {position}: the name {checked[-1]['name']!r} repeats", field="entries")
        names.add(checked[-1]["name"])
    return checked


def entry_check(entry: Any, *, position: int = 0) -> dict:
    """One agent of a lineup, cleaned, or a DomainError (field "entries") saying what is wrong."""
    if not isinstance(entry, dict):
        raise DomainError(f"entry {position} must be an object", field="entries")
    unknown = set(entry) - ENTRY_FIELDS
    if unknown:
        raise DomainError(f"entry {position}: unknown field(s) {sorted(unknown)}", field="entries")
    name = str(entry.get("name") or "").strip()
    if not name or len(name) > 100:
        raise DomainError(f"entry {position}: name must be 1 to 100 characters", field="entries")
    provider = entry.get("llm_provider")
    if provider not in ports.Participant.Provider.values:
        raise DomainError(
            f"entry {name!r}: unknown llm_provider {provider!r}; choose from {ports.Participant.Provider.values}",
            field="entries",
        )
    model = str(entry.get("llm_model") or "").strip()
    if not model:
        raise DomainError(f"entry {name!r}: llm_model must not be empty", field="entries")
    config = entry.get("llm_config") or {}
    if not isinstance(config, dict):
        raise DomainError(f"entry {name!r}: llm_config must be a JSON object", field="entries")
    try:  # refused here, not when the runs register it: a draft never stores a key in its config
        ports.llm_config_check(config, field=f"entry {name!r}: llm_config")
    except DomainError as exc:
        raise DomainError(exc.message, field="entries") from exc
    if provider == "baseline" and model not in ports.BASELINE_STRATEGIES:
        raise DomainError(f"entry {name!r}: unknown baseline strategy {model!r}; choose from "
                          f"{list(ports.BASELINE_STRATEGIES)}", field="entries")
    api_key = entry.get("api_key")
    if api_key is not None and not isinstance(api_key, str):
        raise DomainError(f"entry {name!r}: api_key must be a string", field="entries")
    return {"name": name, "llm_provider": provider, "llm_model": model, "llm_config": config, "api_key": api_key or ""}


def _entries_replace(tournament: Tournament, entries: list[dict]) -> None:
    tournament.entries.all().delete()
    TournamentEntry.objects.bulk_create(
        TournamentEntry(
            tournament=tournament, name=e["name"], llm_provider=e["llm_provider"], llm_model=e["llm_model"],
            llm_config=e["llm_config"], api_key_encrypted=encrypt_secret(e["api_key"]) if e["api_key"] else "",
        )
        for e in entries
    )


def _fields_check(fields: dict[str, Any]) -> None:
    unknown = set(fields) - TOURNAMENT_FIELDS
    if unknown:
        raise DomainError(f"unknown tournament field(s): {sorted(unknown)}")
    rules = fields.get("rules")
    if rules is not None:
        if not isinstance(rules, dict):
            raise DomainError("rules must be a JSON object of competition rules", field="rules")
        unknown_rules = set(rules) - set(RULE_FIELDS)
        if unknown_rules:
            raise DomainError(
                f"rules: unknown or run-owned field(s) {sorted(unknown_rules)}; a template may set {list(RULE_FIELDS)}",
                field="rules",
            )
    for name in ("instances", "seed", "max_attempts"):
        value = fields.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise DomainError(f"{name} must be a non-negative integer", field=name)
    if "name" in fields and not str(fields["name"] or "").strip():
        raise DomainError("name must not be empty", field="name")
    if "in_sample" in fields and fields["in_sample"] not in Tournament.InSample.values:
        raise DomainError(f"in_sample must be one of {Tournament.InSample.values}", field="in_sample")
    if fields.get("symbols") is not None and not isinstance(fields["symbols"], list):
        raise DomainError("symbols must be a list", field="symbols")


class _ProbeRollback(Exception):
    pass


def competition_fields(tournament: Tournament, window: TournamentWindow, instance: int) -> dict[str, Any]:
    """What competition_create gets for one run. The name is a function of the tournament and
    the run only: it is in every prompt, so a re-run must produce the same one."""
    return {
        **tournament.rules,
        "name": f"{tournament.name} · window {window.index} · instance {instance}"[:200],
        "description": f"Run of tournament {tournament.name!r}",
        "mode": "replay",
        "start_time": window.start_time,
        "end_time": window.end_time,
        "dataset": tournament.dataset,
        "timeframe": tournament.timeframe,
        "symbols": list(tournament.symbols or []),
        "seed": tournament.seed + instance,
    }


def _validate(tournament: Tournament) -> None:
    """Check the whole draft the way its runs will be made: build the first run's competition
    with competition_create (its validation is the one every competition passes), then undo it."""
    if tournament.instances < 1 or tournament.instances > 1000:
        raise DomainError("instances must be between 1 and 1000", field="instances")
    if tournament.max_attempts < 1 or tournament.max_attempts > 20:
        raise DomainError("max_attempts must be between 1 and 20", field="max_attempts")
    if tournament.cache_mode not in Tournament.CacheMode.values:
        raise DomainError(f"cache_mode must be one of {Tournament.CacheMode.values}", field="cache_mode")
    windows = list(tournament.windows.all())
    if len(windows) * tournament.instances > MAX_RUNS:
        raise DomainError(f"at most {MAX_RUNS} runs (windows x instances)", field="instances")
    entries = tournament.entries.count()
    max_participants = tournament.rules.get("max_participants", 20)
    if isinstance(max_participants, int) and entries > max_participants:
        raise DomainError(
            f"the lineup has {entries} agents but rules.max_participants is {max_participants}", field="entries"
        )
    try:
        with transaction.atomic():
            ports.competition_create(**competition_fields(tournament, windows[0], 0))
            raise _ProbeRollback
    except _ProbeRollback:
        pass
    except DomainError as exc:
        field = exc.field if exc.field in TOURNAMENT_FIELDS else "rules"
        raise DomainError(f"{exc.field or 'rules'}: {exc.message}" if field == "rules" else exc.message,
                          field=field) from exc


@transaction.atomic
def tournament_create(*, entries: list[dict] | None = None, **fields: Any) -> Tournament:
    _fields_check(fields)
    checked = _entries_check(entries or [])
    if not fields.get("dataset"):
        raise DomainError("a tournament needs a dataset", field="dataset")
    fields["name"] = str(fields.get("name") or "").strip()
    tournament = Tournament.objects.create(**fields)
    _entries_replace(tournament, checked)
    windows_generate(tournament_id=tournament.pk)
    _validate(tournament)
    logger.info("tournament %s created: %s", tournament.pk, tournament.name)
    return tournament


@transaction.atomic
def tournament_update(*, tournament_id: int, entries: list[dict] | None = None, **fields: Any) -> Tournament:
    """Change a draft; `entries`, when given, replaces the whole lineup."""
    tournament = Tournament.objects.select_for_update().get(pk=tournament_id)
    _fields_check(fields)
    if entries is None and fields and set(fields) <= ANYTIME_FIELDS and not tournament.is_draft:
        for name, value in fields.items():
            setattr(tournament, name, value)
        tournament.save(update_fields=list(fields))
        return tournament
    _require_draft(tournament)
    for name, value in fields.items():
        setattr(tournament, name, value.strip() if name == "name" else value)
    tournament.save()
    if entries is not None:
        _entries_replace(tournament, _entries_check(entries))
    windows_generate(tournament_id=tournament.pk)
    _validate(tournament)
    return tournament


@transaction.atomic
def tournament_copy(*, tournament_id: int, masked: bool | None = None, name: str | None = None) -> Tournament:
    """A draft with the same lineup (keys included), windows, instances, seed and rules, linked by
    copy_of; `masked` sets rules.masked (None keeps it). The way to run the same lineup masked and
    unmasked and read the memory gap between them (tournaments.memory, docs/memory.md)."""
    source = Tournament.objects.get(pk=tournament_id)
    if masked is not None and not isinstance(masked, bool):
        raise DomainError("masked must be true or false", field="masked")
    rules = dict(source.rules or {})
    if masked is not None:
        if masked:
            rules["masked"] = True
        else:
            rules.pop("masked", None)
    world = "masked" if rules.get("masked") else "unmasked"
    copy_name = (name if name is not None else f"{source.name} ({world})").strip()[:150]
    entries = list(source.entries.all())
    copy = tournament_create(
        name=copy_name, description=source.description, rules=rules, dataset=source.dataset,
        timeframe=source.timeframe, symbols=list(source.symbols or []), windows_spec=source.windows_spec,
        instances=source.instances, seed=source.seed, cache_mode=source.cache_mode,
        max_attempts=source.max_attempts, in_sample=source.in_sample,
        entries=[{"name": e.name, "llm_provider": e.llm_provider, "llm_model": e.llm_model,
                  "llm_config": e.llm_config} for e in entries],
    )  # fmt: skip
    keys = {e.name: e.api_key_encrypted for e in entries if e.api_key_encrypted}
    for entry in copy.entries.filter(name__in=keys):  # the encrypted keys, never decrypted here
        entry.api_key_encrypted = keys[entry.name]
        entry.save(update_fields=["api_key_encrypted"])
    copy.copy_of = source
    copy.save(update_fields=["copy_of"])
    logger.info("tournament %s copied from %s (%s)", copy.pk, source.pk, world)
    return copy


@transaction.atomic
def tournament_delete(*, tournament_id: int) -> None:
    tournament = Tournament.objects.select_for_update().get(pk=tournament_id)
    if tournament.status != Status.DRAFT:
        raise ConflictError("only a draft tournament can be deleted", code="not_draft")
    tournament.delete()


# -- lifecycle ------------------------------------------------------------------------------


def run_llm_config(entry: TournamentEntry, *, seed: int, cache_mode: str) -> dict:
    """The participant's config in one run: the entry's, plus the instance seed as the model's
    sampling seed (providers that take one send it) and the tournament's decision cache mode."""
    from agents.cache import CONFIG_KEY
    from agents.providers import LLM_PROVIDERS

    config = dict(entry.llm_config or {})
    if entry.llm_provider in LLM_PROVIDERS:
        config.setdefault("seed", seed)
        if cache_mode != Tournament.CacheMode.OFF:
            config[CONFIG_KEY] = cache_mode
    return config


@transaction.atomic
def tournament_start(*, tournament_id: int, enqueue: bool | None = None) -> Tournament:
    """Draft -> running: one replay competition per (window, instance) with the whole lineup.

    enqueue (default: when rounds run under Celery) sends one task per run, after commit;
    otherwise the in-process runner plays them (tournaments.inprocess), and `manage.py
    run_tournament` can add processes.
    """
    tournament = Tournament.objects.select_for_update().get(pk=tournament_id)
    if tournament.status != Status.DRAFT:
        raise ConflictError(f"only a draft tournament can start (it is {tournament.status})", code="illegal_transition")
    entries = list(tournament.entries.all())
    if not entries:
        raise ConflictError("add at least one agent to the lineup before starting", code="no_entries")
    windows = list(tournament.windows.all())
    if not windows:
        raise ConflictError("the tournament has no windows", code="no_windows")
    _validate(tournament)
    runs = []
    for window in windows:
        for instance in range(tournament.instances):
            seed = tournament.seed + instance
            competition = ports.competition_create(**competition_fields(tournament, window, instance))
            for entry in entries:
                ports.participant_register(
                    competition_id=competition.pk, name=entry.name, llm_provider=entry.llm_provider,
                    llm_model=entry.llm_model, api_key=entry.api_key(),
                    llm_config=run_llm_config(entry, seed=seed, cache_mode=tournament.cache_mode),
                )
            runs.append(TournamentRun(tournament=tournament, window=window, instance=instance, seed=seed,
                                      competition=competition))
    TournamentRun.objects.bulk_create(runs)
    tournament.status = Status.RUNNING
    tournament.started_at = timezone.now()
    tournament.save(update_fields=["status", "started_at"])
    if enqueue if enqueue is not None else getattr(settings, "ROUND_RUNNER", "") == "celery":
        from .tasks import tournament_run_task

        run_ids = list(tournament.runs.values_list("pk", flat=True))
        transaction.on_commit(lambda: [tournament_run_task.delay(run_id) for run_id in run_ids])
    logger.info("tournament %s started: %s runs", tournament.pk, len(runs))
    return tournament


@transaction.atomic
def tournament_cancel(*, tournament_id: int) -> Tournament:
    """Stop everything: runs not finished are cancelled, and so are their competitions (a
    worker in the middle of one stops after its current round)."""
    tournament = Tournament.objects.select_for_update().get(pk=tournament_id)
    if tournament.status not in {Status.DRAFT, Status.RUNNING}:
        raise ConflictError(f"a {tournament.status} tournament cannot be cancelled", code="illegal_transition")
    unfinished = tournament.runs.filter(status__in=[RunStatus.PENDING, RunStatus.RUNNING])
    competition_ids = list(unfinished.exclude(competition=None).values_list("competition_id", flat=True))
    unfinished.update(status=RunStatus.CANCELLED, lease_expires_at=None, finished_at=timezone.now())
    live = ports.Competition.objects.filter(pk__in=competition_ids).exclude(
        status__in=[ports.Competition.Status.COMPLETED, ports.Competition.Status.CANCELLED]
    )
    for competition_id in live.values_list("pk", flat=True):
        ports.competition_cancel(competition_id=competition_id)
    tournament.status = Status.CANCELLED
    tournament.completed_at = timezone.now()
    tournament.save(update_fields=["status", "completed_at"])
    logger.info("tournament %s cancelled", tournament.pk)
    return tournament


@transaction.atomic
def tournament_check(*, tournament_id: int) -> Tournament:
    """Regenerate a draft's windows and check it as tournament_start will (for the admin,
    which saves the row and its lineup inline before asking)."""
    windows_generate(tournament_id=tournament_id)
    tournament = Tournament.objects.get(pk=tournament_id)
    _validate(tournament)
    return tournament
