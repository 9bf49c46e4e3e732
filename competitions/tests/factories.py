"""Test data for competitions, made through the services where rules matter."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import factory

from competitions.models import Competition, Participant

START = datetime(2025, 1, 1, tzinfo=UTC)


class CompetitionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Competition

    name = factory.Sequence(lambda n: f"Competition {n}")
    start_time = START
    end_time = factory.LazyAttribute(lambda c: c.start_time + timedelta(days=7))
    invocation_interval_minutes = 60
    initial_capital = Decimal("10000")
    max_leverage = Decimal("10")
    margin_requirement_pct = Decimal("10")
    maintenance_margin_pct = Decimal("5")
    allowed_asset_classes = factory.LazyFunction(lambda: ["crypto"])
    symbols = factory.LazyFunction(lambda: ["BTC/USDT", "ETH/USDT"])
    mode = "replay"
    dataset = "binance-1h"
    timeframe = "1h"


class ParticipantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Participant

    competition = factory.SubFactory(CompetitionFactory)
    name = factory.Sequence(lambda n: f"Agent {n}")
    llm_provider = "baseline"
    llm_model = "flat"
