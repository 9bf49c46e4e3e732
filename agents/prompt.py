"""The one prompt every agent of a competition gets: a versioned template, compact by design.

System part: role, this competition's rules, the decision schema (from agents.decision)
with one example, what a rejection means. User part (all times UTC): clock, market per
symbol (price, recent candles per timeframe as a compact table, indicators, funding),
account, open positions, the agent's recent decisions and what became of them and,
when the competition allows it, the leaderboard.

Size is reported as `token_estimate` = ceil(characters / 4), the usual rule of thumb for
English and numbers with GPT/Claude tokenizers; the tests hold 6 symbols under 8k tokens.
Bump PROMPT_VERSION whenever the wording or layout changes: invocations record it.

Built-in agents (baseline, scripted) never read a prompt: `build_context(provider=...)`
skips rendering for them and records PROMPTLESS_NOTE in its place.
"""

from __future__ import annotations

import functools
import json
import math
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from agents.context import (
    AccountView,
    AgentContext,
    CompetitionRules,
    DecisionHistoryItem,
    LeaderboardLine,
)
from agents.decision import DECISION_SCHEMA, EXAMPLE_DECISION

PROMPT_VERSION = "2026-11-24.2"

# Candles shown per timeframe, and at most this many timeframes per symbol.
CANDLES_PER_TIMEFRAME = 8
MAX_TIMEFRAMES = 3
HISTORY_LIMIT = 6
# Indicators shown, in this order, when the snapshot has them.
PROMPT_INDICATORS = ("ema_20", "ema_50", "rsi_14", "macd_histogram", "atr_14", "return_20_pct")
CHARS_PER_TOKEN = 4
# Providers that decide from the snapshot and account directly: no prompt is rendered for them.
PROMPTLESS_PROVIDERS = ("baseline", "scripted")
PROMPTLESS_NOTE = "(built-in strategy: reads market snapshot directly; no prompt)"
# Market sections kept: one per (snapshot, rules) of the rounds in flight.
MARKET_CACHE_SIZE = 8


# The example of a masked replay: masked names and price levels, as its market shows them.
MASKED_EXAMPLE_DECISION: dict = json.loads(
    json.dumps(EXAMPLE_DECISION).replace("BTC/USDT", "ASSET_1").replace("ETH/USDT", "ASSET_2").replace("BTC", "ASSET_1")
    .replace("58500", "118.5").replace("64000", "129").replace("3050", "152.5")
)


@dataclass(frozen=True)
class Prompt:
    system: str
    user: str
    version: str
    token_estimate: int


def token_estimate(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def fmt_decimal(value: Decimal | int | float | None, significant: int = 7) -> str:
    """Short, exact-enough number text: 61234.56, 0.00001234, 2000 (no exponent, no trailing 0)."""
    if value is None:
        return "n/a"
    number = value if type(value) is Decimal else Decimal(str(value))
    if not number.is_finite():
        return "n/a"
    if number == 0:
        return "0"
    exponent = number.adjusted()
    places = max(0, significant - 1 - exponent)
    text = f"{round(number, places):f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


CENT = Decimal("0.01")


def _cents(value: Decimal | int | float) -> Decimal:
    # Half-up, as people round money (Decimal's default would show 61.725 as 61.72).
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def fmt_money(value: Decimal | None) -> str:
    if value is None:
        return "n/a"
    return f"{_cents(value)}"


def fmt_signed_pct(value: Decimal | None) -> str:
    if value is None:
        return "n/a"
    cents = _cents(value)
    return f"{'+' if cents >= 0 else ''}{cents}%"


def fmt_volume(value: Decimal) -> str:
    number = float(value)
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(number) >= size:
            return f"{number / size:.1f}{unit}"
    return f"{number:.3g}"


def fmt_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def fmt_duration(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    days, minutes = divmod(minutes, 1440)
    hours, minutes = divmod(minutes, 60)
    return f"{days}d {hours:02d}h {minutes:02d}m"


def next_funding_time(now: datetime) -> datetime:
    """Funding is charged at 00:00, 08:00 and 16:00 UTC."""
    now = now.astimezone(UTC)
    base = now.replace(minute=0, second=0, microsecond=0)
    for hours in range(0, 9):
        candidate = base + timedelta(hours=hours)
        if candidate > now and candidate.hour % 8 == 0:
            return candidate
    return base + timedelta(hours=8)  # pragma: no cover - unreachable


def _float(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{float(value):.6g}"


# ---------------------------------------------------------------------------------------------
# System part


def system_prompt(rules: CompetitionRules) -> str:
    """The same text for every agent of a competition: rendered once per distinct rules value."""
    try:
        return _system_prompt_cached(rules)
    except TypeError:  # an unhashable field (e.g. symbols given as a list): render, uncached
        return _system_prompt_text(rules)


@functools.lru_cache(maxsize=64)
def _system_prompt_cached(rules: CompetitionRules) -> str:
    return _system_prompt_text(rules)


def _system_prompt_text(rules: CompetitionRules) -> str:
    symbols = ", ".join(rules.symbols)
    schema = json.dumps(DECISION_SCHEMA, separators=(",", ":"))
    example = json.dumps(MASKED_EXAMPLE_DECISION if rules.masked else EXAMPLE_DECISION, separators=(",", ":"))
    financing = ""
    if rules.financing_rate_pct_annual:
        financing = (
            f" Non-crypto positions pay overnight financing instead, long and short alike: "
            f"{fmt_decimal(rules.financing_rate_pct_annual)}% a year of the notional, charged daily at 22:00 UTC "
            "(365-day year)."
        )
    return f"""You are an autonomous trading agent in "{rules.name}", a simulated CFD trading competition \
against other AI agents. Every {rules.invocation_interval_minutes} minutes you see the same market data as \
every other agent plus your own account, and you answer with one trading decision. Your goal: the highest \
equity at the end without being closed out. All times are UTC.

RULES
- Starting capital: {fmt_money(rules.initial_capital)} USD. Trade only these symbols: {symbols}.
- Market orders only, at the current mid price moved against you by half the spread (full spread \
{fmt_decimal(rules.spread_bps)} bps) plus slippage ({fmt_decimal(rules.slippage_bps)} bps). Fee: \
{fmt_decimal(rules.fee_pct)}% of the notional on every fill, opening and closing. Quantities are rounded down \
to the instrument's step; a notional_usd is converted at the mid price.
- Leverage per order: 1 to {fmt_decimal(rules.effective_max_leverage)}. Initial margin = notional / leverage; it \
is reserved from your free margin (with the fee) and released when you close. A position's total initial \
margin may be at most {fmt_decimal(rules.max_position_size_pct)}% of your equity. Reducing or closing a \
position is never blocked.
- Maintenance margin: {fmt_decimal(rules.maintenance_margin_pct)}% of the notional of your open positions. \
If your equity falls to or below it, positions are closed out at market, worst loser first, until equity is \
above the requirement again. Your balance never goes below zero; an account whose equity reaches zero is \
liquidated and cannot trade again.
- Funding: at 00:00, 08:00 and 16:00 UTC each open crypto position pays or receives \
{fmt_decimal(rules.funding_rate_pct_8h)}% of its notional; longs pay shorts when the rate is positive.{financing}
- Exit plan: for a long, stop_loss below and take_profit above the current price; for a short, the reverse. \
They are checked on every price bar between rounds and fill at the level (or at the bar's open when the \
price gaps through it), paying the fee but no spread. One position per symbol: opening the same side adds \
to it, the opposite side reduces, closes or flips it.

DECISION FORMAT
Reply with one JSON object, and nothing else, matching this JSON Schema:
{schema}
Give exactly one of quantity (units of the base asset) and notional_usd for an open; leverage defaults to 1 \
if omitted; use null for fields you do not set. Example:
{example}
To do nothing: {{"reasoning":"...","actions":[{{"action":"hold"}}]}}

REJECTIONS
Each action is checked on its own. An action that breaks a rule (unknown symbol, leverage out of range, \
missing or non-positive size, stop or take-profit on the wrong side of the price, not enough free margin, \
above the position size cap) is rejected with a reason and not executed; your other valid actions still \
run. A reply with no valid JSON decision counts as hold. Your recent decisions and their outcomes are shown to you every round."""


# ---------------------------------------------------------------------------------------------
# User part


def _timeframes(symbol_snapshot: Any, base_timeframe: str) -> list[str]:
    frames = list(symbol_snapshot.candles.keys()) or list(symbol_snapshot.indicators.keys())
    for name in symbol_snapshot.indicators:
        if name not in frames:
            frames.append(name)
    frames.sort(key=lambda tf: (tf != base_timeframe, _timeframe_minutes(tf)))
    return frames[:MAX_TIMEFRAMES]


def _timeframe_minutes(timeframe: str) -> int:
    units = {"m": 1, "h": 60, "d": 1440, "w": 10080}
    try:
        return int(timeframe[:-1]) * units[timeframe[-1]]
    except (ValueError, KeyError, IndexError):
        return 10**9


def _market_lines(rules: CompetitionRules, snapshot: Any) -> list[str]:
    lines = [
        f"MARKET (snapshot {fmt_time(snapshot.at)}; funding {fmt_decimal(rules.funding_rate_pct_8h)}%/8h on all "
        "symbols)",
        "Candles: open time, open, high, low, close, volume; oldest first.",
    ]
    for symbol in rules.symbols:
        snap = snapshot.symbols.get(symbol)
        if snap is None:
            lines.append(f"## {symbol}: no data this round (not tradable now)")
            continue
        change = "" if snap.change_24h_pct is None else f", 24h {fmt_signed_pct(snap.change_24h_pct)}"
        lines.append(f"## {symbol} price {fmt_decimal(snap.price)}{change}")
        for timeframe in _timeframes(snap, rules.timeframe):
            bars = snap.candles.get(timeframe, [])[-CANDLES_PER_TIMEFRAME:]
            indicators = snap.indicators.get(timeframe, {})
            shown = [f"{name}={_float(indicators[name])}" for name in PROMPT_INDICATORS if name in indicators]
            if shown:
                lines.append(f"{timeframe} " + " ".join(shown))
            lines.extend(_candle_line(bar) for bar in bars)
    return lines


@functools.lru_cache(maxsize=8192)
def _candle_line(bar: Any) -> str:
    """One candle's line. A candle is shown in up to eight rounds in a row (the window moves
    one bar a round) and by every competition on the same data: formatted once."""
    return (
        f"{bar.open_time.astimezone(UTC).strftime('%m-%d %H:%M')} {fmt_decimal(bar.open)} "
        f"{fmt_decimal(bar.high)} {fmt_decimal(bar.low)} {fmt_decimal(bar.close)} "
        f"{fmt_volume(bar.volume)}"
    )


_market_cache: OrderedDict[tuple, tuple[Any, str]] = OrderedDict()
_market_cache_lock = threading.Lock()


def market_section(rules: CompetitionRules, snapshot: Any) -> str:
    """The MARKET block, identical for every agent of a round: rendered once per snapshot.

    Keyed by the snapshot object's identity (it holds dicts, so it has no hash) and its
    time, plus the rules; each entry keeps its snapshot alive, so an id cannot be reused
    by another snapshot while its entry is cached.
    """
    try:
        key = (id(snapshot), snapshot.at, rules)
        hash(key)
    except TypeError:  # unhashable rules: render, uncached
        return "\n".join(_market_lines(rules, snapshot))
    with _market_cache_lock:
        entry = _market_cache.get(key)
        if entry is not None and entry[0] is snapshot:
            _market_cache.move_to_end(key)
            return entry[1]
    text = "\n".join(_market_lines(rules, snapshot))
    with _market_cache_lock:
        _market_cache[key] = (snapshot, text)
        _market_cache.move_to_end(key)
        while len(_market_cache) > MARKET_CACHE_SIZE:
            _market_cache.popitem(last=False)
    return text


def _account_lines(account: AccountView) -> list[str]:
    level = (
        "n/a (no positions)"
        if account.margin_level_pct is None
        else f"{Decimal(account.margin_level_pct):.0f}%"
    )
    lines = [
        "ACCOUNT (USD)",
        f"equity {fmt_money(account.equity)} | cash {fmt_money(account.cash)} | used margin "
        f"{fmt_money(account.used_margin)} | free margin {fmt_money(account.free_margin)} | margin level {level} | "
        f"return since start {fmt_signed_pct(account.return_pct)}",
    ]
    if not account.positions:
        lines.append("Open positions: none")
        return lines
    lines.append("Open positions:")
    for p in account.positions:
        lines.append(
            f"- {p.symbol} {p.side} {fmt_decimal(p.size)} @ {fmt_decimal(p.entry_price)} mark "
            f"{fmt_decimal(p.mark_price)} uPnL {'+' if p.unrealized_pnl >= 0 else ''}{_cents(p.unrealized_pnl)} lev {fmt_decimal(p.leverage)}x "
            f"margin {fmt_money(p.initial_margin)} est. liq {fmt_decimal(p.liquidation_price)} "
            f"SL {fmt_decimal(p.stop_loss)} TP {fmt_decimal(p.take_profit)}"
        )
    return lines


def _history_lines(history: Iterable[DecisionHistoryItem], limit: int) -> list[str]:
    items = list(history)[-limit:]
    lines = [f"YOUR RECENT DECISIONS (last {limit})"]
    if not items:
        lines.append("none yet")
    for item in items:
        detail = f": {item.detail}" if item.detail else ""
        lines.append(
            f"- round {item.round_number} {fmt_time(item.at)} {item.action} -> {item.outcome}{detail}"
        )
    return lines


def _leaderboard_lines(leaderboard: Iterable[LeaderboardLine]) -> list[str]:
    lines = ["LEADERBOARD"]
    for line in leaderboard:
        you = " (you)" if line.is_you else ""
        lines.append(
            f"{line.rank}. {line.name}{you} equity {fmt_money(line.equity)} {fmt_signed_pct(line.return_pct)}"
        )
    return lines


def user_prompt(
    *,
    rules: CompetitionRules,
    snapshot: Any,
    account: AccountView,
    now: datetime,
    history: Iterable[DecisionHistoryItem] = (),
    leaderboard: Iterable[LeaderboardLine] | None = None,
    history_limit: int = HISTORY_LIMIT,
) -> str:
    lines = [
        f"NOW {fmt_time(now)} UTC | elapsed {fmt_duration(now - rules.start_time)} | remaining "
        f"{fmt_duration(rules.end_time - now)} | next funding {fmt_time(next_funding_time(now))}",
        "",
        market_section(rules, snapshot),
        "",
        *_account_lines(account),
        "",
        *_history_lines(history, history_limit),
    ]
    if rules.prompt_leaderboard and leaderboard is not None:
        lines += ["", *_leaderboard_lines(leaderboard)]
    lines += ["", "Answer with your JSON decision now."]
    return "\n".join(lines)


def build_prompt(
    *,
    rules: CompetitionRules,
    snapshot: Any,
    account: AccountView,
    now: datetime,
    history: Iterable[DecisionHistoryItem] = (),
    leaderboard: Iterable[LeaderboardLine] | None = None,
) -> Prompt:
    system = system_prompt(rules)
    user = user_prompt(
        rules=rules, snapshot=snapshot, account=account, now=now, history=history, leaderboard=leaderboard
    )
    return Prompt(
        system=system, user=user, version=PROMPT_VERSION, token_estimate=token_estimate(system + user)
    )


def build_context(
    *,
    rules: CompetitionRules,
    snapshot: Any,
    account: AccountView,
    now: datetime,
    history: Iterable[DecisionHistoryItem] = (),
    leaderboard: Iterable[LeaderboardLine] | None = None,
    participant_id: int = 0,
    invocation_index: int = 0,
    provider: str = "",
    participant_name: str = "",
) -> AgentContext:
    """The round's one call: prompts built and everything bundled for `invoke_agent`.

    `provider` is the participant's llm_provider. Built-in agents (PROMPTLESS_PROVIDERS)
    read the snapshot and account, never the prompt, so theirs is not rendered: both
    prompts hold PROMPTLESS_NOTE instead. Their reply still goes through the same parser
    and validator as a model's.
    """
    history = tuple(history)
    if provider in PROMPTLESS_PROVIDERS:
        return AgentContext(
            rules=rules,
            snapshot=snapshot,
            account=account,
            now=now,
            system_prompt=PROMPTLESS_NOTE,
            user_prompt=PROMPTLESS_NOTE,
            prompt_version=PROMPT_VERSION,
            history=history,
            participant_id=participant_id,
            participant_name=participant_name,
            invocation_index=invocation_index,
        )
    prompt = build_prompt(
        rules=rules, snapshot=snapshot, account=account, now=now, history=history, leaderboard=leaderboard
    )
    return AgentContext(
        rules=rules,
        snapshot=snapshot,
        account=account,
        now=now,
        system_prompt=prompt.system,
        user_prompt=prompt.user,
        prompt_version=prompt.version,
        history=history,
        participant_id=participant_id,
        participant_name=participant_name,
        invocation_index=invocation_index,
    )
