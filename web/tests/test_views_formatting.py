"""How the pages write numbers: signs and arrows for PnL, decimals that fit the price."""

from datetime import timedelta
from decimal import Decimal

from web.templatetags.gauntlet import action_text, duration, money, pnl, price, quantity


def test_pnl_has_sign_arrow_and_words_not_only_colour():
    assert str(pnl(Decimal("12.304"))) == (
        '<span class="gain"><span aria-hidden="true">▲ </span>+12.30<span class="sr-only"> gain</span></span>'
    )
    assert "▼ </span>−4.10" in str(pnl(-4.1)) and "loss" in str(pnl(-4.1))
    assert str(pnl(0.001)) == '<span class="flat">0.00</span>'  # rounds to zero: no arrow
    assert "+1.55 %" in str(pnl(1.55, "%"))
    assert pnl(None) == "—"


def test_prices_keep_their_significant_digits():
    assert price(Decimal("111437.7712")) == "111,437.77"
    assert price(Decimal("2.83851")) == "2.8385"
    assert price(Decimal("0.0000096213")) == "0.000009621"  # PEPE: four significant digits
    assert price(None) == "—"


def test_quantities_and_money():
    assert quantity(Decimal("0.016980814566")) == "0.0169808"
    assert quantity(Decimal("7344.00000")) == "7,344"
    assert money(Decimal("1234.5")) == "1,234.50"
    assert money(Decimal("0.0030"), 4) == "0.0030"


def test_durations_read_like_a_clock():
    assert duration(timedelta(days=87, hours=12)) == "87d 12h"
    assert duration(timedelta(hours=2, minutes=5)) == "2h 5m"
    assert duration(timedelta(seconds=42)) == "42s"
    assert duration(timedelta(0)) == "now"
    assert duration(None) == "—"


def test_actions_read_as_a_trader_would_say_them():
    action = {"action": "open", "side": "long", "symbol": "BTC/USDT", "notional_usd": 1000, "leverage": 3,
              "stop_loss": 58000, "take_profit": None}  # fmt: skip
    assert action_text(action) == "open long BTC/USDT notional $1000 SL 58000 ×3"
    assert (
        action_text({"action": "close", "symbol": "ETH/USDT", "quantity": "0.5"}) == "close ETH/USDT qty 0.5"
    )
    assert action_text("garbage") == "garbage"
