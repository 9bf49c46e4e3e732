"""Formatting for Gauntlet pages: money, prices, signed PnL (sign + arrow, not colour alone)."""

import json
import math
from datetime import timedelta
from decimal import InvalidOperation

from django import template
from django.utils.html import format_html

register = template.Library()

DASH = "—"

def _number(value) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, InvalidOperation, OverflowError):  # a model's 10**400: no number to show
        return None
    return None if math.isnan(number) or math.isinf(number) else number


@register.filter
def money(value, places: int = 2) -> str:
    """1234.5 -> "1,234.50"; None -> an em dash."""
    number = _number(value)
    if number is None:
        return DASH
    return f"{number:,.{int(places)}f}"


@register.filter
def price(value) -> str:
    """A price with as many decimals as its size needs: 64,210.50 / 2.3456 / 0.00000962."""
    number = _number(value)
    if number is None:
        return DASH
    magnitude = abs(number)
    if magnitude >= 1000:
        places = 2
    elif magnitude >= 1:
        places = 4
    elif magnitude == 0:
        places = 2
    else:
        # four significant digits below 1
        places = min(12, 3 - math.floor(math.log10(magnitude)))
    return f"{number:,.{places}f}"


@register.filter
def quantity(value) -> str:
    """A size readable at a glance: 7344, 1.852, 0.0169808 (6 significant digits below 1)."""
    number = _number(value)
    if number is None:
        return DASH
    if abs(number) >= 1:
        text = f"{number:,.4f}".rstrip("0").rstrip(".")
    else:
        text = f"{number:.6g}" if number else "0"
        if "e" in text:
            text = f"{number:.12f}".rstrip("0")
    return text


@register.filter
def num(value, places: int = 2) -> str:
    number = _number(value)
    if number is None:
        return DASH
    return f"{number:,.{int(places)}f}"


@register.filter
def pct(value, places: int = 2) -> str:
    number = _number(value)
    if number is None:
        return DASH
    return f"{number:,.{int(places)}f} %"


@register.simple_tag
def pnl(value, unit: str = "", places: int = 2):
    """Signed profit or loss: ▲ +12.30 (gain), ▼ −4.10 (loss), 0.00 (flat); class for colour."""
    number = _number(value)
    if number is None:
        return DASH
    rounded = round(number, int(places))
    text = f"{abs(rounded):,.{int(places)}f}{' ' + unit if unit else ''}"
    if rounded > 0:
        return format_html(
            '<span class="gain"><span aria-hidden="true">▲ </span>+{}<span class="sr-only"> gain</span></span>',
            text,
        )
    if rounded < 0:
        return format_html(
            '<span class="loss"><span aria-hidden="true">▼ </span>−{}<span class="sr-only"> loss</span></span>',
            text,
        )
    return format_html('<span class="flat">{}</span>', text)


@register.filter
def duration(value) -> str:
    """timedelta -> "2d 3h", "45m", "12s"; None -> an em dash."""
    if not isinstance(value, timedelta):
        return DASH
    seconds = int(value.total_seconds())
    if seconds <= 0:
        return "now"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m"
    return f"{seconds}s"


@register.filter
def pretty_json(value) -> str:
    if value in (None, "", {}, []):
        return ""
    return json.dumps(value, indent=2, sort_keys=False, ensure_ascii=False, default=str)


@register.filter
def sub(value, other):
    """value - other for numbers (Decimal-safe); None when either is missing."""
    if value is None or other is None:
        return None
    try:
        return value - other
    except TypeError:
        return _number(value) - _number(other)


@register.filter
def metric(metrics, name: str):
    """getattr for templates: {{ row.metrics|metric:"sharpe" }}."""
    return getattr(metrics, name, None)


SIGNED_MONEY = {"pnl", "pnl_before_fees", "expectancy"}
SIGNED_PCT = {"return_pct", "annualised_return_pct", "cost_adjusted_return"}
PLAIN_PCT = {"max_drawdown", "current_drawdown", "win_rate", "invalid_rate", "error_rate"}


@register.simple_tag
def metric_value(metrics, name: str):
    """One leaderboard metric, formatted the way a trader reads it."""
    value = getattr(metrics, name, None)
    if name in SIGNED_MONEY:
        return pnl(value)
    if name in SIGNED_PCT:
        return pnl(value, "%")
    if name in PLAIN_PCT:
        return pct(value, 1 if name.endswith("rate") else 2)
    if name == "trades":
        return DASH if value is None else str(value)
    if name == "llm_cost_usd":
        return DASH if value is None else f"${money(value, 4)}"
    if name in {"equity", "fees_paid"}:
        return money(value)
    if name == "average_leverage":
        return DASH if _number(value) is None else f"{num(value, 2)}×"
    return num(value)


@register.filter
def action_text(action) -> str:
    """{"action": "open", "side": "long", "symbol": "BTC/USDT", "notional_usd": 1000, "leverage": 3}
    -> "open long BTC/USDT notional 1000 ×3"."""
    if not isinstance(action, dict):
        return str(action or "")[:200]
    parts = [str(action.get("action", "?"))]
    for key in ("side", "symbol"):
        if action.get(key) not in (None, ""):
            parts.append(str(action[key]))
    labels = {"quantity": "qty", "notional_usd": "notional $", "stop_loss": "SL", "take_profit": "TP"}
    for key, label in labels.items():
        value = action.get(key)
        if value in (None, ""):
            continue
        text = quantity(value) if key == "quantity" and _number(value) is not None else str(value)
        parts.append(f"{label}{text}" if label.endswith("$") else f"{label} {text}")
    if action.get("leverage") not in (None, ""):
        parts.append(f"×{action['leverage']}")
    return " ".join(parts)[:200]


@register.filter
def words(value) -> str:
    """A code as words: "stop_loss" -> "stop loss"."""
    return str(value or "").replace("_", " ")


@register.filter
def times100(value):
    """A ratio as a percentage number (margin level 1.046 -> 104.6)."""
    number = _number(value)
    return None if number is None else number * 100


@register.filter
def get(mapping, key):
    """mapping[key] for templates, None when absent."""
    try:
        return mapping.get(key)
    except AttributeError:
        return None
