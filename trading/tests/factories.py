"""Competitions and participants for trading tests, with rules written out where numbers matter."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import factory

from competitions.models import Competition, Participant

START = datetime(2025, 1, 1, tzinfo=UTC)


class ActiveCompetitionFactory(factory.django.DjangoModelFactory):
    """Zero costs by default so a test adds exactly the costs it works by hand."""

    class Meta:
        model = Competition

    name = factory.Sequence(lambda n: f"Trading competition {n}")
    start_time = START
    end_time = START + timedelta(days=30)
    initial_capital = Decimal(10000)
    max_leverage = Decimal(10)
    margin_requirement_pct = Decimal(10)
    maintenance_margin_pct = Decimal(5)
    max_position_size_pct = Decimal(100)
    allowed_asset_classes = factory.LazyFunction(lambda: ["crypto", "indices"])
    symbols = factory.LazyFunction(lambda: ["BTC/USDT", "ETH/USDT", "US500"])
    fee_pct = Decimal(0)
    spread_bps = Decimal(0)
    slippage_bps = Decimal(0)
    funding_rate_pct_8h = Decimal(0)
    financing_rate_pct_annual = Decimal(0)
    mode = "replay"
    dataset = "binance-1h"
    timeframe = "1h"
    status = "active"


class TraderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Participant

    competition = factory.SubFactory(ActiveCompetitionFactory)
    name = factory.Sequence(lambda n: f"Trader {n}")
    llm_provider = "scripted"
    llm_model = "script"
