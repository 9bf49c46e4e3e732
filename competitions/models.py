"""Competitions, their participants and their rounds.

Every invariant a competition's rules must satisfy is a database constraint, so no door
(admin, API, shell, a bug) can store rules the engine would have to second-guess.
"""

from datetime import timedelta
from decimal import Decimal

from django.db import models
from django.db.models import F, Q
from django.db.models.lookups import LessThanOrEqual

from gauntlet.secrets import decrypt_secret

ASSET_CLASSES = ("crypto", "forex", "indices", "commodities", "stocks")
TIMEFRAMES = ("1m", "5m", "15m", "1h", "4h", "1d")


def money_field(**kwargs):
    return models.DecimalField(max_digits=28, decimal_places=10, **kwargs)


def pct_field(default, **kwargs):
    return models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(default), **kwargs)


def default_asset_classes():
    return ["crypto"]


class CompetitionStatus(models.TextChoices):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    CANCELLED = "cancelled"

class CompetitionMode(models.TextChoices):
    LIVE = "live"
    REPLAY = "replay"


class ParticipantStatus(models.TextChoices):
    ACTIVE = "active"
    LIQUIDATED = "liquidated"
    DISQUALIFIED = "disqualified"

class Provider(models.TextChoices):
    ANTHROPIC = "anthropic", "Anthropic"
    OPENAI = "openai", "OpenAI"
    AZURE_OPENAI = "azure_openai", "Azure OpenAI"
    DEEPSEEK = "deepseek", "DeepSeek"
    QWEN = "qwen", "Qwen (DashScope)"
    OPENAI_COMPATIBLE = "openai_compatible", "OpenAI-compatible server"
    BASELINE = "baseline", "Built-in baseline"
    SCRIPTED = "scripted", "Scripted decisions"


class RoundStatus(models.TextChoices):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"


class Competition(models.Model):
    Status = CompetitionStatus
    Mode = CompetitionMode

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    start_time = models.DateTimeField()
    end_time = models.DateTimeField()
    invocation_interval_minutes = models.PositiveIntegerField(default=60)

    initial_capital = money_field(default=Decimal("10000"))
    max_leverage = models.DecimalField(max_digits=8, decimal_places=4, default=Decimal("10"))
    max_position_size_pct = pct_field("50", help_text="Max initial margin of one position, % of equity")
    allowed_asset_classes = models.JSONField(default=default_asset_classes)
    margin_requirement_pct = pct_field("10", help_text="Initial margin, % of notional")
    maintenance_margin_pct = pct_field("5", help_text="Maintenance margin, % of notional")
    max_participants = models.PositiveIntegerField(default=20)
    market_hours_only = models.BooleanField(default=False)

    mode = models.CharField(max_length=10, choices=CompetitionMode.choices, default=CompetitionMode.REPLAY)
    dataset = models.CharField(max_length=100, blank=True, default="binance-1h")
    timeframe = models.CharField(max_length=5, default="1h")
    symbols = models.JSONField(
        default=list, blank=True, help_text="Instruments agents may trade; empty means all of the allowed classes"
    )

    fee_pct = pct_field("0.05", help_text="Commission per side, % of fill notional")
    spread_bps = pct_field("2", help_text="Full bid/ask spread in basis points")
    slippage_bps = pct_field("1", help_text="Adverse slippage per fill in basis points")
    funding_rate_pct_8h = pct_field("0.01", help_text="Crypto funding per 8 h, % of notional (longs pay)")
    financing_rate_pct_annual = pct_field("3", help_text="Overnight financing of non-crypto CFDs, % a year")

    seed = models.PositiveIntegerField(default=0)
    # Masked replay (marketdata.masking, docs/memory.md): symbols, start_time and end_time
    # hold the masked world the engine and the agents see; `mask` maps it back to the real one.
    masked = models.BooleanField(
        default=False,
        help_text="Replay a masked world: symbols renamed, time shifted by whole weeks, prices rescaled, "
        "so a model cannot recognise the history it is replayed on",
    )
    mask = models.JSONField(default=dict, blank=True, editable=False)
    status = models.CharField(max_length=12, choices=CompetitionStatus.choices, default=CompetitionStatus.DRAFT)
    prompt_leaderboard = models.BooleanField(
        default=False, help_text="Show agents the leaderboard in their prompt"
    )
    market_time = models.DateTimeField(
        null=True, blank=True, help_text="Market time of the last round (the replay clock)"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "start_time"], name="competition_status_start")]
        constraints = [
            models.CheckConstraint(condition=Q(end_time__gt=F("start_time")), name="competition_end_after_start"),
            models.CheckConstraint(
                condition=Q(invocation_interval_minutes__gte=1, invocation_interval_minutes__lte=10080),
                name="competition_interval_1min_to_1week",
            ),
            models.CheckConstraint(condition=Q(initial_capital__gt=0), name="competition_capital_positive"),
            models.CheckConstraint(
                condition=Q(margin_requirement_pct__gt=0, margin_requirement_pct__lte=100),
                name="competition_margin_in_0_100",
            ),
            models.CheckConstraint(
                condition=Q(maintenance_margin_pct__gt=0, maintenance_margin_pct__lt=F("margin_requirement_pct")),
                name="competition_maintenance_below_initial",
            ),
            # 1 <= max_leverage <= 100 / margin_requirement_pct, written without division.
            models.CheckConstraint(condition=Q(max_leverage__gte=1), name="competition_leverage_at_least_1"),
            models.CheckConstraint(
                condition=LessThanOrEqual(F("max_leverage") * F("margin_requirement_pct"), Decimal("100")),
                name="competition_leverage_within_margin",
            ),
            models.CheckConstraint(
                condition=Q(max_position_size_pct__gt=0, max_position_size_pct__lte=100),
                name="competition_position_size_in_0_100",
            ),
            models.CheckConstraint(
                condition=Q(max_participants__gte=1, max_participants__lte=1000),
                name="competition_participants_1_to_1000",
            ),
            models.CheckConstraint(
                condition=Q(fee_pct__gte=0, fee_pct__lt=10), name="competition_fee_in_0_10"
            ),
            models.CheckConstraint(
                condition=Q(spread_bps__gte=0, spread_bps__lt=1000, slippage_bps__gte=0, slippage_bps__lt=1000),
                name="competition_spread_slippage_in_0_1000bps",
            ),
            models.CheckConstraint(
                condition=Q(funding_rate_pct_8h__gt=-5, funding_rate_pct_8h__lt=5),
                name="competition_funding_rate_sane",
            ),
            models.CheckConstraint(
                condition=Q(financing_rate_pct_annual__gt=-100, financing_rate_pct_annual__lt=100),
                name="competition_financing_rate_sane",
            ),
            models.CheckConstraint(condition=Q(status__in=CompetitionStatus.values), name="competition_status_valid"),
            models.CheckConstraint(condition=Q(mode__in=CompetitionMode.values), name="competition_mode_valid"),
            models.CheckConstraint(condition=Q(timeframe__in=TIMEFRAMES), name="competition_timeframe_valid"),
            models.CheckConstraint(
                condition=~Q(mode="replay") | ~Q(dataset=""), name="competition_replay_needs_dataset"
            ),
            models.CheckConstraint(condition=Q(masked=False) | Q(mode="replay"), name="competition_masked_is_replay"),
        ]

    def __str__(self):
        return self.name

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.COMPLETED, self.Status.CANCELLED}

    @property
    def real_start_time(self):
        """start_time in the real world (a masked competition stores the masked one)."""
        return self.start_time - timedelta(weeks=self.mask["shift_weeks"]) if self.mask else self.start_time

    @property
    def real_end_time(self):
        return self.end_time - timedelta(weeks=self.mask["shift_weeks"]) if self.mask else self.end_time

    @property
    def real_symbols(self) -> list[str]:
        names = (self.mask or {}).get("symbols", {})
        return [names.get(symbol, symbol) for symbol in self.symbols or []]


class Participant(models.Model):
    Status = ParticipantStatus
    Provider = Provider

    competition = models.ForeignKey(Competition, on_delete=models.CASCADE, related_name="participants")
    name = models.CharField(max_length=100)
    llm_provider = models.CharField(max_length=32, choices=Provider.choices)
    llm_model = models.CharField(max_length=200)
    llm_config = models.JSONField(default=dict, blank=True)
    # Fernet token (gauntlet.secrets); never rendered, logged or returned by any API.
    api_key_encrypted = models.TextField(blank=True, default="", editable=False)
    status = models.CharField(max_length=14, choices=ParticipantStatus.choices, default=ParticipantStatus.ACTIVE)
    status_reason = models.CharField(max_length=300, blank=True, default="")
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["competition_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["competition", "name"], name="participant_name_unique_in_competition"),
            models.CheckConstraint(condition=Q(status__in=ParticipantStatus.values), name="participant_status_valid"),
            models.CheckConstraint(condition=Q(llm_provider__in=Provider.values), name="participant_provider_valid"),
            models.CheckConstraint(condition=~Q(name=""), name="participant_name_not_empty"),
        ]

    def __str__(self):
        return f"{self.name} ({self.llm_provider}/{self.llm_model})"

    def __repr__(self):
        # Never include the key, even encrypted, in reprs that end up in logs.
        return f"<Participant {self.pk} {self.name!r}>"

    @property
    def has_api_key(self) -> bool:
        return bool(self.api_key_encrypted)

    def api_key(self) -> str | None:
        return decrypt_secret(self.api_key_encrypted)

    @property
    def is_baseline(self) -> bool:
        return self.llm_provider == self.Provider.BASELINE


class Round(models.Model):
    """One invocation round of a competition at one market time; the unique row claims it."""

    Status = RoundStatus

    competition = models.ForeignKey(Competition, on_delete=models.CASCADE, related_name="rounds")
    number = models.PositiveIntegerField()
    market_time = models.DateTimeField()
    status = models.CharField(max_length=10, choices=RoundStatus.choices, default=RoundStatus.RUNNING)
    # The one market snapshot every agent of this round saw.
    snapshot = models.ForeignKey(
        "marketdata.MarketSnapshotRecord", on_delete=models.PROTECT, null=True, blank=True, related_name="rounds"
    )
    # Last step committed (competitions.rounds.claim.PHASES): a resumed round continues after it.
    phase = models.CharField(max_length=12, default="claimed")
    # Lease: who runs the round and until when; a crashed runner's lease expires.
    lease_owner = models.CharField(max_length=64, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    llm_cost_usd = models.DecimalField(max_digits=18, decimal_places=8, default=0)
    # The snapshot's mids, {symbol: price as a string}, copied when the round completes
    # (competitions.aggregates) so the buy-and-hold benchmark reads a few bytes per round,
    # not the snapshot JSON with its candles. Null: not copied yet; readers use the snapshot.
    prices = models.JSONField(null=True, blank=True, editable=False)
    detail = models.TextField(blank=True, default="", help_text="Why a round failed or was skipped")
    timings = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["competition_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["competition", "number"], name="round_unique_number"),
            models.CheckConstraint(condition=Q(status__in=RoundStatus.values), name="round_status_valid"),
        ]

    def __str__(self):
        return f"{self.competition_id}#{self.number} @ {self.market_time:%Y-%m-%d %H:%M}Z"


class ParticipantAggregate(models.Model):
    """A participant's fills and closed positions folded into running totals (competitions.aggregates).

    The leaderboard reads these instead of every fill (for its exposure shares) and every
    closed position (for its trade statistics). round_completed folds in each round's rows;
    rows written after the watermarks (a round still running, the settlement when a
    competition stops) are folded in at read time, so a row is never stale, only behind.
    Decimal sums are kept as strings in JSON: SQLite would round a DecimalField to 15 digits.
    """

    participant = models.OneToOneField(
        Participant, on_delete=models.CASCADE, primary_key=True, related_name="aggregate"
    )
    # Folded: the account's equity snapshots with id <= snapshot_watermark, its fills with
    # id <= fill_watermark and its closed positions whose last fill id <= trade_watermark.
    snapshot_watermark = models.BigIntegerField(default=0)
    fill_watermark = models.BigIntegerField(default=0)
    trade_watermark = models.BigIntegerField(default=0)
    # Exposure: [[symbol, net quantity, last fill price], ...] in first-fill order, and the
    # equity points (snapshot market times) counted by the sign of net exposure at each.
    net_exposure = models.JSONField(default=list, blank=True)
    last_point_at = models.DateTimeField(null=True, blank=True)
    last_point_sign = models.SmallIntegerField(default=0)
    long_points = models.PositiveIntegerField(default=0)
    short_points = models.PositiveIntegerField(default=0)
    flat_points = models.PositiveIntegerField(default=0)
    # Closed trades (analytics.TradeTotals): counts, PnL sums as Decimal strings
    # {"net", "gross_win", "gross_loss", "largest_win", "largest_loss"} and holding times
    # as [[microseconds, trades], ...] for the median.
    trades = models.PositiveIntegerField(default=0)
    wins = models.PositiveIntegerField(default=0)
    losses = models.PositiveIntegerField(default=0)
    pnl_sums = models.JSONField(default=dict, blank=True)
    holding_trades = models.PositiveIntegerField(default=0)
    holding_total = models.DurationField(default=timedelta(0))
    holdings = models.JSONField(default=list, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(last_point_sign__gte=-1, last_point_sign__lte=1), name="aggregate_sign_valid"
            ),
            models.CheckConstraint(
                condition=Q(trades__gte=F("wins") + F("losses")), name="aggregate_wins_losses_within_trades"
            ),
            models.CheckConstraint(
                condition=Q(trades__gte=F("holding_trades")), name="aggregate_holdings_within_trades"
            ),
        ]

    def __str__(self):
        return f"aggregate of participant {self.participant_id} to snapshot {self.snapshot_watermark}"
