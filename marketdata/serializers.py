"""API shapes of market data. Decimals leave as exact strings, times as ISO-8601 UTC."""

from rest_framework import serializers

from gauntlet.api_fields import UtcDateTime

from marketdata.series import TIMEFRAME_SECONDS, clean_decimal

SOURCES = ("replay", "live", "synthetic")


class DecimalStringField(serializers.Field):
    """A Decimal as its exact string ("9.62E-6" stays exact), read-only."""

    def __init__(self, **kwargs):
        kwargs.setdefault("read_only", True)
        super().__init__(**kwargs)

    def to_representation(self, value):
        return None if value is None else str(clean_decimal(value))


class TickerSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    price = DecimalStringField()
    change_24h_pct = DecimalStringField(allow_null=True)
    price_time = UtcDateTime()
    source = serializers.CharField()
    dataset = serializers.CharField(allow_blank=True)


class CandleSerializer(serializers.Serializer):
    open_time = UtcDateTime()
    open = DecimalStringField()
    high = DecimalStringField()
    low = DecimalStringField()
    close = DecimalStringField()
    volume = DecimalStringField()


class SeriesCoverageSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    timeframe = serializers.CharField()
    first = UtcDateTime()
    last = UtcDateTime()
    rows = serializers.IntegerField()
    missing_bars = serializers.IntegerField()


class DatasetSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    provenance = serializers.CharField()
    symbols = serializers.ListField(child=serializers.CharField())
    first = UtcDateTime(allow_null=True)
    last = UtcDateTime(allow_null=True)
    rows = serializers.IntegerField()
    series = SeriesCoverageSerializer(many=True)


class InstrumentSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    name = serializers.CharField()
    asset_class = serializers.CharField()
    price_precision = serializers.IntegerField()
    quantity_precision = serializers.IntegerField()
    min_quantity = DecimalStringField()
    hours_kind = serializers.CharField()
    session_timezone = serializers.CharField()
    session_open = serializers.TimeField(allow_null=True)
    session_close = serializers.TimeField(allow_null=True)


class SourceQuerySerializer(serializers.Serializer):
    source = serializers.ChoiceField(choices=SOURCES, default="replay")
    dataset = serializers.CharField(required=False, allow_blank=True, max_length=64)


class TickersQuerySerializer(SourceQuerySerializer):
    symbols = serializers.CharField(help_text='comma separated, e.g. "BTC/USDT,ETH-USDT"')


class CandlesQuerySerializer(SourceQuerySerializer):
    timeframe = serializers.ChoiceField(choices=tuple(TIMEFRAME_SECONDS), default="1h")
    limit = serializers.IntegerField(min_value=1, max_value=1000, default=100)
    until = serializers.DateTimeField(required=False)
