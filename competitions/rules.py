"""A competition's rules as values other apps take (trading gets engine.Rules, never the row).

`RULE_FIELDS` names the Competition fields that shape the game: they lock when the
competition starts (services.competition_check_locked_rules) and, for the ones the engine
knows, become its engine.Rules (`trading_rules`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from decimal import Decimal

from trading import engine
from trading.selectors import AccountLine
from trading.selectors import account_view as trading_account_view

from .models import Competition

RULE_FIELDS = (  # in the order the admin shows them
    "mode", "dataset", "timeframe", "start_time", "invocation_interval_minutes",
    "allowed_asset_classes", "symbols", "market_hours_only",
    "initial_capital", "max_leverage", "max_position_size_pct",
    "margin_requirement_pct", "maintenance_margin_pct",
    "fee_pct", "spread_bps", "slippage_bps", "funding_rate_pct_8h", "financing_rate_pct_annual",
    "max_participants", "seed", "masked",
)  # fmt: skip

# the rule fields the engine reads (engine.Rules' own fields, minus what it derives)
_ENGINE_FIELDS = tuple(field.name for field in fields(engine.Rules) if field.init and field.name in RULE_FIELDS)


def trading_rules(competition: Competition) -> engine.Rules:
    """The engine's view of a competition's rules and cost model."""
    values = {name: getattr(competition, name) for name in _ENGINE_FIELDS}
    values["allowed_asset_classes"] = frozenset(competition.allowed_asset_classes or ())
    values["symbols"] = frozenset(competition.symbols or ())
    return engine.Rules(**values)


def account_view(*, participant, prices: Mapping[str, Decimal]) -> AccountLine:
    """trading.selectors.account_view under the participant's competition's rules."""
    competition = participant.competition
    return trading_account_view(
        participant=participant, prices=prices, rules=trading_rules(competition),
        initial_capital=competition.initial_capital,
    )
