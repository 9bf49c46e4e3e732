from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

from marketdata.hours import ALWAYS, EXCHANGE_SESSION, FOREX_WEEK, TradingHours

# Prices and volumes: wide enough for BTC (126,199.63), PEPE (9.62e-06) and PEPE's
# volumes (1.7e13 base units per hour).
PRICE_FIELD = {"max_digits": 30, "decimal_places": 12}
VOLUME_FIELD = {"max_digits": 32, "decimal_places": 8}
RATE_FIELD = {"max_digits": 12, "decimal_places": 6}


class AssetClass(models.TextChoices):
    CRYPTO = "crypto", "Crypto"
    FOREX = "forex", "Forex"
    INDICES = "indices", "Indices"
    COMMODITIES = "commodities", "Commodities"
    STOCKS = "stocks", "Stocks"


class HoursKind(models.TextChoices):
    ALWAYS = ALWAYS, "24/7"
    FOREX_WEEK = FOREX_WEEK, "Forex week (Sun 22:00 to Fri 22:00 UTC)"
    EXCHANGE_SESSION = EXCHANGE_SESSION, "Exchange session (local time zone)"


class Instrument(models.Model):
    """A tradable symbol: precisions, minimum size, trading hours and default costs."""

    symbol = models.CharField(max_length=32, unique=True, help_text='e.g. "BTC/USDT", "EUR/USD"')
    name = models.CharField(max_length=100, blank=True)
    asset_class = models.CharField(max_length=16, choices=AssetClass.choices)
    price_precision = models.PositiveSmallIntegerField(help_text="decimal places of a price")
    quantity_precision = models.PositiveSmallIntegerField(help_text="decimal places of a quantity")
    min_quantity = models.DecimalField(**PRICE_FIELD)
    hours_kind = models.CharField(max_length=20, choices=HoursKind.choices, default=HoursKind.ALWAYS)
    session_timezone = models.CharField(
        max_length=64, default="UTC", help_text="IANA zone, e.g. America/New_York"
    )
    session_open = models.TimeField(null=True, blank=True, help_text="local time")
    session_close = models.TimeField(null=True, blank=True, help_text="local time")
    holidays = models.JSONField(default=list, blank=True, help_text='local dates closed, ["2026-12-25", ...]')
    # Default cost model for competitions on this instrument (from its asset class).
    default_fee_pct = models.DecimalField(**RATE_FIELD, default=Decimal("0.05"))
    default_spread_bps = models.DecimalField(**RATE_FIELD, default=Decimal(2))
    default_slippage_bps = models.DecimalField(**RATE_FIELD, default=Decimal(1))
    default_funding_rate_pct_8h = models.DecimalField(**RATE_FIELD, default=Decimal("0.01"))
    default_financing_rate_pct_annual = models.DecimalField(**RATE_FIELD, default=Decimal(0))
    default_max_leverage = models.DecimalField(max_digits=8, decimal_places=2, default=Decimal(2))
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["asset_class", "symbol"]
        constraints = [
            models.CheckConstraint(condition=Q(min_quantity__gt=0), name="instrument_min_quantity_positive"),
            models.CheckConstraint(
                condition=~Q(hours_kind=EXCHANGE_SESSION)
                | (Q(session_open__isnull=False) & Q(session_close__isnull=False)),
                name="instrument_session_has_open_and_close",
            ),
        ]

    def __str__(self):
        return self.symbol

    @property
    def trading_hours(self) -> TradingHours:
        return TradingHours(
            kind=self.hours_kind,
            timezone=self.session_timezone or "UTC",
            session_open=self.session_open,
            session_close=self.session_close,
            holidays=frozenset(date.fromisoformat(day) for day in self.holidays or []),
        )

    def clean(self):
        try:
            _ = self.trading_hours  # validates the hours (zone, open before close)
        except (ValueError, TypeError) as exc:
            raise ValidationError(str(exc)) from exc


class Dataset(models.Model):
    """A named set of stored candles (e.g. the shipped "binance-1h")."""

    name = models.SlugField(max_length=64, unique=True)
    description = models.TextField(blank=True)
    provenance = models.CharField(max_length=200, blank=True)
    # Bumped on every write, so in-memory candle caches know when to reload.
    revision = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Candle(models.Model):
    """One stored OHLCV bar; open_time is the bar's open, it closes one timeframe later."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="candles")
    symbol = models.CharField(max_length=32)
    timeframe = models.CharField(max_length=8)
    open_time = models.DateTimeField()
    open = models.DecimalField(**PRICE_FIELD)
    high = models.DecimalField(**PRICE_FIELD)
    low = models.DecimalField(**PRICE_FIELD)
    close = models.DecimalField(**PRICE_FIELD)
    volume = models.DecimalField(**VOLUME_FIELD)

    class Meta:
        ordering = ["dataset", "symbol", "timeframe", "open_time"]
        constraints = [
            # Also the index replay loads a symbol's series through, in time order.
            models.UniqueConstraint(
                fields=["dataset", "symbol", "timeframe", "open_time"], name="candle_unique_bar"
            ),
            models.CheckConstraint(condition=Q(low__gte=0) & Q(volume__gte=0), name="candle_not_negative"),
            models.CheckConstraint(
                condition=Q(high__gte=F("open")) & Q(high__gte=F("close")) & Q(high__gte=F("low")),
                name="candle_high_is_highest",
            ),
            models.CheckConstraint(
                condition=Q(low__lte=F("open")) & Q(low__lte=F("close")), name="candle_low_is_lowest"
            ),
        ]

    def __str__(self):
        return f"{self.dataset_id} {self.symbol} {self.timeframe} {self.open_time:%Y-%m-%d %H:%M}"


class MarketSnapshotRecord(models.Model):
    """A stored MarketSnapshot (JSON), the one every agent of a round was shown."""

    at = models.DateTimeField(help_text="market time of the snapshot")
    source = models.CharField(max_length=20)
    dataset = models.CharField(max_length=64, blank=True)
    payload = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["source", "dataset", "at"], name="snapshot_source_at")]

    def __str__(self):
        return f"{self.source}:{self.dataset or '-'} @ {self.at.isoformat()}"
