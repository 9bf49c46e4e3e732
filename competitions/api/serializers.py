"""API shapes of competitions, participants and rounds.

Input serializers check types, enums, ranges and decimals and refuse unknown fields; the
rules that need the whole object (end after start, leverage within margin, registration
limits) stay in competitions.services, whose errors the API turns into 400/409. Decimals
leave as plain strings ("10000", not 10000.0), times as ISO-8601 UTC ("...Z").
"""

from decimal import Decimal

from rest_framework import serializers

from agents.registry import participant_training_cutoff
from gauntlet.api_fields import UtcDateTime

from ..models import ASSET_CLASSES, TIMEFRAMES, Competition, Participant, Round
from ..services import COMPETITION_FIELDS
from .fields import (
    DecimalString,
    FiniteFloat,
    ReadSerializer,
    StrictSerializer,
    money,
    pct,
    validate_config_object,
)


# -- competitions --------------------------------------------------------------------------


class CompetitionSerializer(ReadSerializer):
    """A competition as every read returns it."""

    allowed_asset_classes = serializers.ListField(
        child=serializers.ChoiceField(choices=ASSET_CLASSES), read_only=True
    )
    symbols = serializers.ListField(child=serializers.CharField(), read_only=True)
    timeframe = serializers.ChoiceField(choices=TIMEFRAMES, read_only=True)
    participant_count = serializers.IntegerField(
        read_only=True, help_text="Registered participants (any status)"
    )
    real_symbols = serializers.ListField(
        child=serializers.CharField(), read_only=True,
        help_text="The instruments behind the symbols (a masked competition's symbols are ASSET_1, ...)",
    )
    real_start_time = UtcDateTime(read_only=True, help_text="start_time in the real world (masked: shifted back)")
    real_end_time = UtcDateTime(read_only=True, help_text="end_time in the real world")
    masked_world = serializers.SerializerMethodField(
        help_text="A masked replay's way back to the real market, null when not masked: `symbols` masked -> real, "
        "`price_scales` (masked price = real price x scale; masked quantity = real quantity / scale), "
        "`shift_weeks` (masked time = real time + that many weeks). Rounds, snapshots, fills, positions, trades and "
        "invocations of this competition hold the masked world the agents and the engine used; USD amounts are "
        "the same in both worlds (docs/memory.md)"
    )

    class Meta:
        model = Competition
        fields = [
            "id",
            "name",
            "description",
            "status",
            "mode",
            "dataset",
            "timeframe",
            "symbols",
            "start_time",
            "end_time",
            "invocation_interval_minutes",
            "initial_capital",
            "max_leverage",
            "max_position_size_pct",
            "allowed_asset_classes",
            "margin_requirement_pct",
            "maintenance_margin_pct",
            "max_participants",
            "market_hours_only",
            "fee_pct",
            "spread_bps",
            "slippage_bps",
            "funding_rate_pct_8h",
            "financing_rate_pct_annual",
            "seed",
            "prompt_leaderboard",
            "masked",
            "real_symbols",
            "real_start_time",
            "real_end_time",
            "masked_world",
            "market_time",
            "created_at",
            "started_at",
            "completed_at",
            "participant_count",
        ]
        read_only_fields = fields


    def get_masked_world(self, competition) -> dict | None:
        mask = competition.mask or {}
        if not mask:
            return None
        return {
            "symbols": dict(mask["symbols"]),
            "price_scales": dict(mask.get("scales") or {}),
            "shift_weeks": int(mask["shift_weeks"]),
        }


class CompetitionWriteSerializer(StrictSerializer):
    """The rules of a competition. On PATCH every field is optional; rules lock once it starts."""

    read_only_hints = {
        "status": "change it with POST /competitions/{id}/start, pause, resume, stop or cancel",
        **{
            name: "set by the server"
            for name in ("id", "market_time", "created_at", "started_at", "completed_at", "participant_count")
        },
    }

    name = serializers.CharField(max_length=200)
    description = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    start_time = serializers.DateTimeField(help_text="ISO-8601; a time without offset is read as UTC")
    end_time = serializers.DateTimeField(help_text="Must be after start_time")
    invocation_interval_minutes = serializers.IntegerField(min_value=1, max_value=10080, required=False)
    initial_capital = DecimalString(
        max_digits=28, decimal_places=10, min_value=Decimal("0.0000000001"), required=False
    )
    max_leverage = DecimalString(
        max_digits=8,
        decimal_places=4,
        min_value=Decimal(1),
        max_value=Decimal(1000),
        required=False,
        help_text="Between 1 and 100 / margin_requirement_pct",
    )
    max_position_size_pct = pct(min_value=Decimal("0.000001"), max_value=Decimal(100), required=False)
    allowed_asset_classes = serializers.ListField(
        child=serializers.ChoiceField(choices=ASSET_CLASSES),
        allow_empty=False,
        max_length=len(ASSET_CLASSES),
        required=False,
    )
    margin_requirement_pct = pct(min_value=Decimal("0.000001"), max_value=Decimal(100), required=False)
    maintenance_margin_pct = pct(
        min_value=Decimal("0.000001"),
        max_value=Decimal(100),
        required=False,
        help_text="Below margin_requirement_pct",
    )
    max_participants = serializers.IntegerField(min_value=1, max_value=1000, required=False)
    market_hours_only = serializers.BooleanField(required=False)
    mode = serializers.ChoiceField(choices=Competition.Mode.choices, required=False)
    dataset = serializers.CharField(max_length=100, required=False, allow_blank=True)
    timeframe = serializers.ChoiceField(choices=TIMEFRAMES, required=False)
    symbols = serializers.ListField(
        child=serializers.CharField(max_length=40),
        max_length=200,
        required=False,
        help_text="Instruments agents may trade; empty means every instrument of the allowed classes",
    )
    fee_pct = pct(min_value=Decimal(0), max_value=Decimal("9.999999"), required=False)
    spread_bps = pct(min_value=Decimal(0), max_value=Decimal("999.999999"), required=False)
    slippage_bps = pct(min_value=Decimal(0), max_value=Decimal("999.999999"), required=False)
    funding_rate_pct_8h = pct(min_value=Decimal("-4.999999"), max_value=Decimal("4.999999"), required=False)
    financing_rate_pct_annual = pct(
        min_value=Decimal("-99.999999"), max_value=Decimal("99.999999"), required=False
    )
    seed = serializers.IntegerField(min_value=0, max_value=2**31 - 1, required=False)
    prompt_leaderboard = serializers.BooleanField(required=False)
    masked = serializers.BooleanField(
        required=False,
        help_text="Replay a masked world (docs/memory.md): give symbols and times in real terms; reads return "
        "the masked ones, with real_symbols, real_start_time and real_end_time",
    )

    def validate(self, attrs):
        unknown = set(attrs) - COMPETITION_FIELDS
        assert not unknown, f"serializer fields out of step with the service: {unknown}"
        return attrs


class CompetitionActionSerializer(StrictSerializer):
    """Lifecycle actions take no body; an empty object (or nothing) is fine."""


# -- participants --------------------------------------------------------------------------


class ParticipantSerializer(ReadSerializer):
    """A participant as every read returns it: the provider key only as `has_api_key`."""

    has_api_key = serializers.BooleanField(read_only=True)
    llm_config = serializers.DictField(read_only=True)
    training_cutoff = serializers.SerializerMethodField(
        help_text="The model's training-data cutoff ('YYYY-MM' or 'YYYY-MM-DD'), null when unknown or a "
        "built-in strategy; replay market time before it may be remembered (docs/memory.md)"
    )
    training_cutoff_source = serializers.SerializerMethodField(
        help_text="Where the cutoff comes from: a provider page (agents/model_registry.json) or "
        "llm_config.training_cutoff"
    )
    training_cutoff_verified = serializers.SerializerMethodField(
        help_text="true when the registry's cutoff was checked against the provider's own page; false for an "
        "unchecked registry entry or a participant's own llm_config.training_cutoff; null when unknown"
    )

    class Meta:
        model = Participant
        fields = [
            "id",
            "competition",
            "name",
            "llm_provider",
            "llm_model",
            "llm_config",
            "has_api_key",
            "status",
            "status_reason",
            "joined_at",
            "training_cutoff",
            "training_cutoff_source",
            "training_cutoff_verified",
        ]
        read_only_fields = fields

    def get_training_cutoff(self, participant) -> str | None:
        entry = participant_training_cutoff(participant)
        return entry.training_cutoff if entry else None

    def get_training_cutoff_source(self, participant) -> str | None:
        entry = participant_training_cutoff(participant)
        return entry.source if entry else None

    def get_training_cutoff_verified(self, participant) -> bool | None:
        entry = participant_training_cutoff(participant)
        return entry.verified if entry else None


class ParticipantRegisteredSerializer(ParticipantSerializer):
    warnings = serializers.ListField(
        child=serializers.CharField(),
        read_only=True,
        help_text="What would make this participant's calls fail (missing key, unknown strategy...)",
    )

    class Meta(ParticipantSerializer.Meta):
        fields = [*ParticipantSerializer.Meta.fields, "warnings"]
        read_only_fields = fields


class ParticipantRegisterSerializer(StrictSerializer):
    read_only_hints = {
        name: "set by the server" for name in ("id", "competition", "status", "status_reason", "joined_at")
    } | {"has_api_key": "send api_key instead"}

    name = serializers.CharField(max_length=100)
    llm_provider = serializers.ChoiceField(choices=Participant.Provider.choices)
    llm_model = serializers.CharField(
        max_length=200, help_text="Model name, or the strategy for llm_provider=baseline (e.g. momentum)"
    )
    llm_config = serializers.DictField(
        required=False,
        help_text="Provider options: temperature, max_tokens, base_url, endpoint, api_key_env, decisions...",
    )
    api_key = serializers.CharField(
        max_length=1000,
        required=False,
        allow_blank=True,
        write_only=True,
        style={"input_type": "password"},
        help_text="The provider key for this agent; stored encrypted, never returned (see has_api_key)",
    )

    def validate_llm_config(self, value):
        return validate_config_object(value, field="llm_config")


class ParticipantUpdateSerializer(StrictSerializer):
    """Disqualify a participant, or change its model/config/key while its competition is not active."""

    read_only_hints = {
        name: "fixed at registration" for name in ("id", "competition", "name", "llm_provider", "joined_at")
    } | {"has_api_key": "send api_key to set or (empty) remove the key"}

    llm_model = serializers.CharField(max_length=200, required=False)
    llm_config = serializers.DictField(required=False)
    api_key = serializers.CharField(
        max_length=1000,
        required=False,
        allow_blank=True,
        write_only=True,
        style={"input_type": "password"},
        help_text="A new provider key; an empty string removes the stored one",
    )
    status = serializers.ChoiceField(
        choices=[Participant.Status.DISQUALIFIED],
        required=False,
        help_text="Only `disqualified` can be set through the API",
    )
    status_reason = serializers.CharField(max_length=300, required=False, allow_blank=True)

    def validate_llm_config(self, value):
        return validate_config_object(value, field="llm_config")

    def validate(self, attrs):
        if "status_reason" in attrs and "status" not in attrs:
            raise serializers.ValidationError(
                {"status_reason": ["status_reason goes with status=disqualified"]}
            )
        if not attrs:
            raise serializers.ValidationError(
                {"non_field_errors": ["nothing to change: send llm_model, llm_config, api_key or status"]}
            )
        return attrs


# -- rounds --------------------------------------------------------------------------------


class RoundSerializer(ReadSerializer):
    invocation_count = serializers.IntegerField(read_only=True, help_text="Agents invoked in this round")

    class Meta:
        model = Round
        fields = [
            "id",
            "competition",
            "number",
            "market_time",
            "status",
            "phase",
            "detail",
            "timings",
            "snapshot",
            "llm_cost_usd",
            "started_at",
            "finished_at",
            "invocation_count",
        ]
        read_only_fields = fields


class RoundTriggeredSerializer(serializers.Serializer):
    queued = serializers.BooleanField(help_text="True when a Celery worker will run the round (no round yet)")
    round = RoundSerializer(
        allow_null=True, help_text="The round run here (in-process runner); null when queued"
    )


# -- plain values (selectors' dataclasses) -------------------------------------------------


class TimeValueSerializer(serializers.Serializer):
    time = UtcDateTime()
    value = serializers.FloatField()

    def to_representation(self, instance):
        moment, value = instance
        return super().to_representation({"time": moment, "value": value})


class ParticipantCurveSerializer(serializers.Serializer):
    participant_id = serializers.IntegerField()
    name = serializers.CharField()
    points = TimeValueSerializer(many=True, help_text="(market time, equity) oldest first, capital first")


class CompetitionHistorySerializer(serializers.Serializer):
    competition_id = serializers.IntegerField()
    target_points = serializers.IntegerField()
    participants = ParticipantCurveSerializer(many=True)
    benchmark = TimeValueSerializer(
        many=True, help_text="Equal-weight buy and hold of the competition's symbols, no costs"
    )


class ParticipantHistorySerializer(serializers.Serializer):
    participant_id = serializers.IntegerField()
    target_points = serializers.IntegerField()
    equity = TimeValueSerializer(many=True, help_text="(market time, equity), capital first")
    drawdown = TimeValueSerializer(
        many=True, help_text="(market time, drawdown %), <= 0; each bucket keeps its deepest point"
    )


class PositionSerializer(serializers.Serializer):
    """An open position (marked at the last round's prices) or a closed one (its realised result)."""

    id = serializers.IntegerField(
        allow_null=True, help_text="null for open positions marked from the account view"
    )
    is_open = serializers.BooleanField()
    symbol = serializers.CharField()
    asset_class = serializers.CharField()
    side = serializers.ChoiceField(choices=["long", "short"])
    quantity = money(help_text="Open: current size; closed: size before the last closing fill")
    entry_price = money()
    leverage = money()
    initial_margin = money()
    stop_loss = money(allow_null=True)
    take_profit = money(allow_null=True)
    realised_pnl = money()
    fees = money()
    funding = money(help_text="Funding and financing, signed (+ received)")
    opened_at = UtcDateTime()
    mark_price = money(allow_null=True, help_text="Open positions: price of the last round's snapshot")
    marked = serializers.BooleanField(help_text="False when no snapshot price existed and entry stands in")
    notional = money(allow_null=True)
    unrealised_pnl = money(allow_null=True)
    liquidation_price = money(allow_null=True)
    exit_price = money(allow_null=True)
    closed_quantity = money(allow_null=True)
    net_pnl = money(allow_null=True, help_text="Closed positions: realised - fees + funding")
    closed_at = UtcDateTime(allow_null=True)
    close_reason = serializers.CharField(allow_blank=True)


class PortfolioSerializer(serializers.Serializer):
    participant_id = serializers.IntegerField()
    marked_at = UtcDateTime(allow_null=True, help_text="Market time of the prices used")
    initial_capital = money()
    cash = money()
    equity = money()
    unrealised_pnl = money()
    used_margin = money()
    free_margin = money()
    margin_level = money(allow_null=True, help_text="equity / used margin; null with nothing open")
    maintenance_requirement = money()
    positions = PositionSerializer(many=True)


class TradeSerializer(serializers.Serializer):
    """A fill, with why it happened: the fill reason and the reasoning of the decision behind it."""

    id = serializers.IntegerField()
    symbol = serializers.CharField()
    side = serializers.ChoiceField(choices=["buy", "sell"])
    quantity = money()
    price = money()
    fee = money()
    realised_pnl = money()
    closes = serializers.BooleanField(help_text="Reduces or closes a position")
    reason = serializers.CharField(help_text="agent, stop_loss, take_profit, liquidation, competition_end")
    market_time = UtcDateTime()
    order_id = serializers.IntegerField(allow_null=True)
    invocation_id = serializers.IntegerField(allow_null=True)
    reasoning = serializers.CharField(allow_blank=True, help_text="The agent's reasoning; empty for stops")


class InvocationSerializer(serializers.Serializer):
    """One agent call, complete: prompts, raw answer, parsed decision, outcomes, tokens, cost."""

    id = serializers.IntegerField()
    participant_id = serializers.IntegerField()
    round_id = serializers.IntegerField()
    round_number = serializers.IntegerField(source="round.number")
    market_time = UtcDateTime(source="round.market_time")
    snapshot_id = serializers.IntegerField(allow_null=True)
    provider = serializers.CharField()
    model = serializers.CharField()
    prompt_version = serializers.CharField()
    system_prompt = serializers.CharField()
    user_prompt = serializers.CharField()
    raw_response = serializers.CharField(allow_blank=True)
    parsed_decision = serializers.JSONField()
    action_outcomes = serializers.JSONField()
    status = serializers.CharField()
    error = serializers.CharField(allow_blank=True)
    latency_ms = serializers.IntegerField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cost_usd = money()
    retries = serializers.IntegerField()
    created_at = UtcDateTime()


INT_COLUMNS = {
    "rounds",
    "trades",
    "wins",
    "losses",
    "max_drawdown_rounds",
    "invocations",
    "input_tokens",
    "output_tokens",
    "total_tokens",
}


def _leaderboard_fields() -> dict:
    from ..selectors import ROW_COLUMNS

    fields = {
        "rank": serializers.IntegerField(
            allow_null=True, help_text="1 = best by the metric; null for the benchmark"
        ),
        "participant_id": serializers.IntegerField(allow_null=True),
        "name": serializers.CharField(),
        "provider": serializers.CharField(),
        "model": serializers.CharField(),
        "status": serializers.CharField(),
        "is_baseline": serializers.BooleanField(),
        "is_benchmark": serializers.BooleanField(),
        "in_sample": serializers.BooleanField(
            allow_null=True, required=False, default=None,
            help_text="The replay's market time is before the model's training cutoff: the result may come "
            "from memory (docs/memory.md). false: masked, live, a built-in strategy or after the cutoff; "
            "null: cutoff unknown",
        ),
    }
    for column in ROW_COLUMNS:
        if column in INT_COLUMNS:
            fields[column] = serializers.IntegerField()
        else:
            fields[column] = FiniteFloat(allow_null=True)
    return fields


class LeaderboardRowSerializer(serializers.Serializer):
    """Every metric of docs/analytics.md: percents for returns and rates, durations in seconds."""

    def get_fields(self):
        return _leaderboard_fields()

    def to_representation(self, instance):
        data = instance.as_dict() if hasattr(instance, "as_dict") else instance
        return super().to_representation(data)


class LeaderboardSerializer(serializers.Serializer):
    competition_id = serializers.IntegerField()
    metric = serializers.CharField()
    results = LeaderboardRowSerializer(many=True)
