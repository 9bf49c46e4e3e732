"""Writes for competitions and participants: creation, lifecycle, registration.

The lifecycle includes the end of a competition: `competition_finish` runs a replay's last
round and completes it, `competition_settle` closes what is still open when it completes.

Every door (admin, API, commands, tasks) calls these; each validates and raises a
gauntlet.errors exception with a clear message, changing nothing, when a rule refuses.
"""

import logging
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from agents.llm_config import llm_config_check
from gauntlet.errors import ConflictError, DomainError
from gauntlet.secrets import encrypt_secret
from marketdata.services import snapshot_from_record
from trading.models import EquitySnapshot
from trading.services import Book, account_open

from .models import ASSET_CLASSES, Competition, Participant, Round
from .rules import RULE_FIELDS, trading_rules
from .scheduling import competition_schedule_sync

logger = logging.getLogger(__name__)

Status = Competition.Status

# Legal lifecycle moves: draft -> active -> paused -> active -> completed, or cancelled.
TRANSITIONS: dict[str, set[str]] = {
    Status.DRAFT: {Status.ACTIVE, Status.CANCELLED},
    Status.ACTIVE: {Status.PAUSED, Status.COMPLETED, Status.CANCELLED},
    Status.PAUSED: {Status.ACTIVE, Status.COMPLETED, Status.CANCELLED},
    Status.COMPLETED: set(),
    Status.CANCELLED: set(),
}

COMPETITION_FIELDS = {
    "name", "description", "start_time", "end_time", "invocation_interval_minutes", "initial_capital",
    "max_leverage", "max_position_size_pct", "allowed_asset_classes", "margin_requirement_pct",
    "maintenance_margin_pct", "max_participants", "market_hours_only", "mode", "dataset", "timeframe",
    "symbols", "fee_pct", "spread_bps", "slippage_bps", "funding_rate_pct_8h", "financing_rate_pct_annual",
    "seed", "prompt_leaderboard", "masked",
}  # fmt: skip


def competition_validate(competition: Competition) -> None:
    """Check what the database cannot express, with messages a user can act on."""
    classes = competition.allowed_asset_classes
    if not isinstance(classes, list) or not classes:
        raise DomainError("allowed_asset_classes must be a non-empty list", field="allowed_asset_classes")
    unknown = [c for c in classes if c not in ASSET_CLASSES]
    if unknown:
        raise DomainError(
            f"unknown asset class(es) {unknown}; choose from {list(ASSET_CLASSES)}", field="allowed_asset_classes"
        )
    if not isinstance(competition.symbols, list) or not all(isinstance(s, str) for s in competition.symbols):
        raise DomainError("symbols must be a list of instrument symbols like 'BTC/USDT'", field="symbols")
    for name in ("start_time", "end_time"):
        value = getattr(competition, name)
        if not isinstance(value, datetime) or timezone.is_naive(value):
            raise DomainError(f"{name} must be a timezone-aware datetime (UTC)", field=name)
    if competition.end_time <= competition.start_time:
        raise DomainError("end_time must be after start_time", field="end_time")
    if competition.maintenance_margin_pct >= competition.margin_requirement_pct:
        raise DomainError(
            "maintenance_margin_pct must be below margin_requirement_pct", field="maintenance_margin_pct"
        )
    leverage_cap = Decimal(100) / competition.margin_requirement_pct
    if not (1 <= competition.max_leverage <= leverage_cap):
        raise DomainError(
            f"max_leverage must be between 1 and 100/margin_requirement_pct = {leverage_cap.normalize():f}",
            field="max_leverage",
        )
    if competition.mode == Competition.Mode.REPLAY and not competition.dataset:
        raise DomainError("a replay competition needs a dataset", field="dataset")
    _resolve_symbols(competition)
    try:
        competition.full_clean(validate_unique=False, validate_constraints=True)
    except ValidationError as exc:
        field, messages = next(iter(exc.message_dict.items()))
        raise DomainError(f"{field}: {' '.join(messages)}", field=None if field == "__all__" else field) from exc


def _resolve_symbols(competition: Competition) -> None:
    """Check the symbols against the instrument catalogue and the data source; an empty
    list means every instrument of the allowed classes that the data source has."""
    from marketdata.models import Candle
    from marketdata.selectors import instrument_list

    catalogue = {i.symbol: i.asset_class for i in instrument_list()}
    in_dataset: set[str] | None = None
    if competition.mode == Competition.Mode.REPLAY:
        in_dataset = set(
            Candle.objects.filter(dataset__name=competition.dataset, timeframe=competition.timeframe)
            .values_list("symbol", flat=True)
            .distinct()
        ) or None
    allowed = set(competition.allowed_asset_classes)
    if not competition.symbols:
        candidates = in_dataset if in_dataset is not None else set(catalogue)
        competition.symbols = sorted(s for s in candidates if catalogue.get(s) in allowed)
        if not competition.symbols:
            raise DomainError(
                f"the data source has no instruments of the allowed classes {sorted(allowed)}", field="symbols"
            )
        return
    unknown = [s for s in competition.symbols if s not in catalogue]
    if unknown:
        raise DomainError(f"unknown symbol(s) {unknown}; known instruments: {sorted(catalogue)}", field="symbols")
    wrong_class = [s for s in competition.symbols if catalogue[s] not in allowed]
    if wrong_class:
        raise DomainError(
            f"{wrong_class} are not in the allowed asset classes {sorted(allowed)}", field="symbols"
        )
    if in_dataset is not None:
        missing = [s for s in competition.symbols if s not in in_dataset]
        if missing:
            raise DomainError(
                f"dataset {competition.dataset!r} has no {competition.timeframe} candles for {missing}", field="symbols"
            )
    if len(set(competition.symbols)) != len(competition.symbols):
        raise DomainError("symbols must not repeat", field="symbols")


def _coerce_decimals(fields: dict[str, Any]) -> dict[str, Any]:
    out = dict(fields)
    for name, value in fields.items():
        field = Competition._meta.get_field(name)
        if field.get_internal_type() == "DecimalField" and value is not None and not isinstance(value, Decimal):
            try:
                out[name] = Decimal(str(value))
            except InvalidOperation as exc:
                raise DomainError(f"{name} must be a number", field=name) from exc
    return out


@transaction.atomic
def competition_create(**fields: Any) -> Competition:
    unknown = set(fields) - COMPETITION_FIELDS
    if unknown:
        raise DomainError(f"unknown competition field(s): {sorted(unknown)}")
    competition = Competition(**_coerce_decimals(fields))
    competition_validate(competition)
    competition_mask_apply(competition)
    competition.save()
    logger.info("competition %s created: %s", competition.pk, competition.name)
    return competition


@transaction.atomic
def competition_update(*, competition_id: int, **fields: Any) -> Competition:
    competition = Competition.objects.select_for_update().get(pk=competition_id)
    unknown = set(fields) - COMPETITION_FIELDS
    if unknown:
        raise DomainError(f"unknown competition field(s): {sorted(unknown)}")
    if competition.is_finished:
        raise ConflictError(f"a {competition.status} competition cannot be changed", code="competition_finished")
    fields = _coerce_decimals(fields)
    fields = _real_terms(competition, fields)
    kept_mask = _competition_unmask(competition)  # a masked competition is edited in real terms
    competition_check_locked_rules(competition, fields)
    for name, value in fields.items():
        setattr(competition, name, value)
    competition_validate(competition)
    competition_mask_apply(competition, keep=None if competition.status == Status.DRAFT else kept_mask)
    competition.save()
    return competition


def competition_check_locked_rules(competition: Competition, fields: dict[str, Any]) -> None:
    """Rules that shape the game may change only while the competition is a draft."""
    changed = sorted(name for name in set(fields).intersection(RULE_FIELDS) if getattr(competition, name) != fields[name])
    if changed and competition.status != Status.DRAFT:
        why = ""
        if competition.masked and set(changed) & {"start_time", "symbols", "dataset", "timeframe", "seed", "masked"}:
            # its rounds were played in one masked world: a new start or market would need another
            why = "; a masked replay keeps the masked world its rounds were played in (only its end can move)"
        raise ConflictError(
            f"{', '.join(changed)} can only change while the competition is a draft{why}", code="rules_locked"
        )


def _transition(competition_id: int, target: str, *, now: datetime | None = None) -> Competition:
    competition = Competition.objects.select_for_update().get(pk=competition_id)
    if target not in TRANSITIONS[competition.status]:
        raise ConflictError(
            f"cannot move a {competition.status} competition to {target}", code="illegal_transition"
        )
    competition.status = target
    now = now or timezone.now()
    if target == Status.ACTIVE and competition.started_at is None:
        competition.started_at = now
    if target in {Status.COMPLETED, Status.CANCELLED}:
        competition.completed_at = now
    competition.save(update_fields=["status", "started_at", "completed_at"])
    logger.info("competition %s is now %s", competition.pk, target)
    return competition


@transaction.atomic
def competition_start(*, competition_id: int, now: datetime | None = None) -> Competition:
    competition = Competition.objects.select_for_update().get(pk=competition_id)
    if competition.status != Status.DRAFT:
        raise ConflictError(
            f"only a draft competition can start (it is {competition.status}; a paused one resumes)",
            code="illegal_transition",
        )
    if not competition.participants.exists():
        raise ConflictError("register at least one participant before starting", code="no_participants")
    competition = _transition(competition_id, Status.ACTIVE, now=now)
    _after_status_change(competition)
    return competition


@transaction.atomic
def competition_pause(*, competition_id: int) -> Competition:
    competition = _transition(competition_id, Status.PAUSED)
    _after_status_change(competition)
    return competition


@transaction.atomic
def competition_resume(*, competition_id: int) -> Competition:
    competition = Competition.objects.select_for_update().get(pk=competition_id)
    if competition.status != Status.PAUSED:
        raise ConflictError(f"only a paused competition can resume (it is {competition.status})", code="illegal_transition")
    competition = _transition(competition_id, Status.ACTIVE)
    _after_status_change(competition)
    return competition


@transaction.atomic
def competition_stop(*, competition_id: int, now: datetime | None = None) -> Competition:
    """End an active or paused competition now: it completes with its results as they stand."""
    competition = _transition(competition_id, Status.COMPLETED, now=now)
    _after_status_change(competition)
    return competition


@transaction.atomic
def competition_cancel(*, competition_id: int) -> Competition:
    competition = _transition(competition_id, Status.CANCELLED)
    _after_status_change(competition)
    return competition


@transaction.atomic
def competition_delete(*, competition_id: int) -> None:
    competition = Competition.objects.select_for_update().get(pk=competition_id)
    if competition.status != Status.DRAFT:
        raise ConflictError("only a draft competition can be deleted", code="not_draft")
    competition.delete()


def _after_status_change(competition: Competition) -> None:
    """Keep what hangs off a competition's status in step with it: accounts and the beat entry."""
    if competition.status == Status.ACTIVE:
        for participant in competition.participants.all():
            account_open(participant=participant, initial_capital=competition.initial_capital)
    if competition.status == Status.COMPLETED:
        competition_settle(competition=competition)
    competition_schedule_sync(competition=competition)


def competitions_tick(*, now: datetime | None = None) -> dict[str, list[int]]:
    """Start live drafts whose start_time has come; complete live competitions past end_time.

    Replay start/end are market times of the dataset, not wall times: replays start when
    asked and complete when their replay clock reaches end_time (the runner does that).
    """
    now = now or timezone.now()
    started, completed = [], []
    live = Competition.objects.filter(mode=Competition.Mode.LIVE)
    due = live.filter(status=Status.DRAFT, start_time__lte=now, end_time__gt=now)
    for competition_id in due.values_list("id", flat=True):
        try:
            competition_start(competition_id=competition_id, now=now)
            started.append(competition_id)
        except ConflictError as exc:
            logger.info("competition %s not auto-started: %s", competition_id, exc.message)
    over = live.filter(status__in=[Status.ACTIVE, Status.PAUSED], end_time__lte=now)
    for competition_id in over.values_list("id", flat=True):
        competition_stop(competition_id=competition_id, now=now)
        completed.append(competition_id)
    return {"started": started, "completed": completed}


@transaction.atomic
def participant_register(
    *,
    competition_id: int,
    name: str,
    llm_provider: str,
    llm_model: str,
    llm_config: dict | None = None,
    api_key: str | None = None,
) -> Participant:
    competition = Competition.objects.select_for_update().get(pk=competition_id)
    if competition.is_finished:
        raise ConflictError(f"registration is closed: the competition is {competition.status}", code="registration_closed")
    if competition.participants.count() >= competition.max_participants:
        raise ConflictError(
            f"the competition is full ({competition.max_participants} participants)", code="competition_full"
        )
    name = (name or "").strip()
    if not name:
        raise DomainError("name must not be empty", field="name")
    if llm_provider not in Participant.Provider.values:
        raise DomainError(
            f"unknown llm_provider {llm_provider!r}; choose from {Participant.Provider.values}", field="llm_provider"
        )
    if not (llm_model or "").strip():
        raise DomainError("llm_model must not be empty", field="llm_model")
    config = llm_config_check({} if llm_config is None else llm_config)
    if competition.participants.filter(name=name).exists():
        raise DomainError(f"a participant named {name!r} is already registered", field="name", code="duplicate_name")
    participant = Participant(
        competition=competition,
        name=name,
        llm_provider=llm_provider,
        llm_model=llm_model.strip(),
        llm_config=config,
        api_key_encrypted=encrypt_secret(api_key) if api_key else "",
    )
    try:
        with transaction.atomic():
            participant.save()
    except IntegrityError as exc:
        raise DomainError(f"a participant named {name!r} is already registered", field="name") from exc
    if competition.status in {Status.ACTIVE, Status.PAUSED}:
        account_open(participant=participant, initial_capital=competition.initial_capital)
    logger.info("participant %s registered in competition %s", participant.pk, competition.pk)
    return participant


@transaction.atomic
def participant_update(
    *,
    participant_id: int,
    llm_model: str | None = None,
    llm_config: dict | None = None,
    api_key: str | None = None,
) -> Participant:
    """Change a participant's model or config while its competition is not running."""
    participant = Participant.objects.select_for_update().select_related("competition").get(pk=participant_id)
    if participant.competition.status in {Status.ACTIVE, Status.COMPLETED, Status.CANCELLED}:
        raise ConflictError(
            f"a participant's config cannot change while its competition is {participant.competition.status}",
            code="config_locked",
        )
    if llm_model is not None:
        if not llm_model.strip():
            raise DomainError("llm_model must not be empty", field="llm_model")
        participant.llm_model = llm_model.strip()
    if llm_config is not None:
        participant.llm_config = llm_config_check(llm_config)
    if api_key is not None:
        participant.api_key_encrypted = encrypt_secret(api_key) if api_key else ""
    participant.save()
    return participant


@transaction.atomic
def participant_disqualify(*, participant_id: int, reason: str = "") -> Participant:
    participant = Participant.objects.select_for_update().get(pk=participant_id)
    if participant.status == Participant.Status.DISQUALIFIED:
        return participant
    participant.status = Participant.Status.DISQUALIFIED
    participant.status_reason = reason[:300]
    participant.save(update_fields=["status", "status_reason"])
    logger.info("participant %s disqualified", participant.pk)
    return participant


@transaction.atomic
def competition_settle(*, competition: Competition) -> None:
    """Close what is still open at the last round's mark so final results are realised."""
    last = (
        Round.objects.filter(competition=competition, snapshot__isnull=False)
        .exclude(status=Round.Status.FAILED)
        .select_related("snapshot")
        .order_by("-number")
        .first()
    )
    if last is None:
        return
    open_accounts = list(
        Participant.objects.filter(competition=competition, account__positions__is_open=True)
        .distinct().values_list("pk", flat=True)
    )
    if not open_accounts:
        return
    prices = snapshot_from_record(last.snapshot).prices
    book = Book(competition_id=competition.pk, rules=trading_rules(competition), participant_ids=open_accounts)
    book.close_all(prices=prices, market_time=last.market_time)
    snapshots = book.mark(prices=prices, market_time=last.market_time, round_number=last.number)
    book.flush()
    EquitySnapshot.objects.bulk_create(snapshots)
    if book.liquidated:
        participants_liquidate(participant_ids=book.liquidated)


def participants_liquidate(*, participant_ids: list[int]) -> None:
    """A margin close-out left these participants no equity: they are not invoked again."""
    Participant.objects.filter(pk__in=participant_ids, status=Participant.Status.ACTIVE).update(
        status=Participant.Status.LIQUIDATED, status_reason="margin close-out left no equity"
    )


def competition_mask_apply(competition: Competition, *, keep: dict | None = None) -> None:
    """Turn a validated, real-world masked competition into its masked world (in memory):
    masked symbols and times, and the mask that maps them back (marketdata.masking).

    `keep` re-applies an existing mask (a running competition's end_time edit) instead of
    deriving it again from the data."""
    from marketdata.masking import Mask, mask_derive
    from marketdata.sources import MarketDataError

    if not competition.masked:
        competition.mask = {}
        return
    if competition.mode != Competition.Mode.REPLAY:
        raise DomainError("only a replay competition can be masked", field="masked")
    if keep:
        mask = Mask.from_dict(keep)
    else:
        try:
            mask = mask_derive(
                dataset=competition.dataset, timeframe=competition.timeframe, symbols=list(competition.symbols),
                start_time=competition.start_time, seed=competition.seed,
            )
        except MarketDataError as exc:
            raise DomainError(f"cannot mask this replay: {exc}", field="masked") from exc
    competition.symbols = [mask.masked_symbol(symbol) for symbol in competition.symbols]
    competition.start_time = mask.masked_time(competition.start_time)
    competition.end_time = mask.masked_time(competition.end_time)
    competition.mask = mask.to_dict()


def _real_terms(competition: Competition, fields: dict[str, Any]) -> dict[str, Any]:
    """Fields for a masked competition in real terms: a form that sends back what it was shown
    (masked names, the stored masked times) means the real ones."""
    if not competition.mask:
        return fields
    out = dict(fields)
    if isinstance(out.get("symbols"), list):
        names = competition.mask["symbols"]
        out["symbols"] = [names.get(symbol, symbol) if isinstance(symbol, str) else symbol for symbol in out["symbols"]]
    for name, real in (("start_time", competition.real_start_time), ("end_time", competition.real_end_time)):
        if name in out and out[name] == getattr(competition, name):
            out[name] = real
    return out


def _competition_unmask(competition: Competition) -> dict | None:
    """Put a masked competition back in real terms (in memory); returns the mask it had."""
    mask = competition.mask or None
    if mask:
        competition.symbols = competition.real_symbols
        competition.start_time, competition.end_time = competition.real_start_time, competition.real_end_time
        competition.mask = {}
    return mask
