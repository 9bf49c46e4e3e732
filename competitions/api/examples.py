"""Example bodies of the OpenAPI schema (/api/schema, /api/docs), one list per operation.

Data only: the views name the list of their operation in @extend_schema(examples=...).
Lists of a page show one item; drf-spectacular wraps a list operation's example in the
page envelope itself.
"""

from drf_spectacular.utils import OpenApiExample


def response(name: str, value, status_code: str = "200", **options) -> OpenApiExample:
    return OpenApiExample(name, value=value, response_only=True, status_codes=[status_code], **options)


def request(name: str, value) -> OpenApiExample:
    return OpenApiExample(name, value=value, request_only=True)


# -- errors --------------------------------------------------------------------------------

FIELD_ERROR = OpenApiExample(
    "a field refused",
    value={"max_leverage": ["max_leverage must be between 1 and 100/margin_requirement_pct = 10"]},
    status_codes=["400"],
    response_only=True,
)

# -- competitions --------------------------------------------------------------------------

COMPETITION_REQUEST = {
    "name": "BTC/ETH January replay",
    "description": "Hourly decisions on two coins, 10x max leverage",
    "start_time": "2025-01-01T00:00:00Z",
    "end_time": "2025-01-08T00:00:00Z",
    "invocation_interval_minutes": 60,
    "initial_capital": "10000",
    "max_leverage": "10",
    "max_position_size_pct": "50",
    "allowed_asset_classes": ["crypto"],
    "margin_requirement_pct": "10",
    "maintenance_margin_pct": "5",
    "max_participants": 10,
    "market_hours_only": False,
    "mode": "replay",
    "dataset": "binance-1h",
    "timeframe": "1h",
    "symbols": ["BTC/USDT", "ETH/USDT"],
}
COMPETITION = {
    "id": 1,
    **COMPETITION_REQUEST,
    "status": "draft",
    "fee_pct": "0.05",
    "spread_bps": "2",
    "slippage_bps": "1",
    "funding_rate_pct_8h": "0.01",
    "financing_rate_pct_annual": "3",
    "seed": 0,
    "prompt_leaderboard": False,
    "market_time": None,
    "created_at": "2026-01-05T09:30:00Z",
    "started_at": None,
    "completed_at": None,
    "participant_count": 0,
    "masked": False,
    "real_symbols": ["BTC/USDT", "ETH/USDT"],
    "real_start_time": "2025-01-01T00:00:00Z",
    "real_end_time": "2025-01-08T00:00:00Z",
    "masked_world": None,
}
# A masked replay (docs/memory.md): reads hold the masked world, with the way back.
MASKED_COMPETITION = {
    **COMPETITION,
    "masked": True,
    "symbols": ["ASSET_2", "ASSET_1"],
    "start_time": "2234-05-07T00:00:00Z",
    "end_time": "2234-05-14T00:00:00Z",
    "masked_world": {
        "symbols": {"ASSET_2": "BTC/USDT", "ASSET_1": "ETH/USDT"},
        "price_scales": {"ASSET_2": "0.0025", "ASSET_1": "0.05"},
        "shift_weeks": 10923,
    },
}

COMPETITIONS_LIST = [response("a page", COMPETITION)]
COMPETITIONS_CREATE = [
    request("replay on Binance hourly data", COMPETITION_REQUEST),
    response("created", COMPETITION, "201"),
]
COMPETITIONS_RETRIEVE = [response("a draft", COMPETITION), response("a masked replay", MASKED_COMPETITION)]
COMPETITIONS_PARTIAL_UPDATE = [
    request("extend the end", {"end_time": "2025-01-15T00:00:00Z"}),
    response("updated", {**COMPETITION, "end_time": "2025-01-15T00:00:00Z"}),
]


def competition_lifecycle(status_after: str) -> list[OpenApiExample]:
    return [response(status_after, {**COMPETITION, "status": status_after, "participant_count": 2})]


COMPETITIONS_HISTORY = [
    response(
        "two rounds",
        {
            "competition_id": 1,
            "target_points": 500,
            "participants": [
                {
                    "participant_id": 7,
                    "name": "Claude",
                    "points": [
                        {"time": "2025-01-01T00:00:00Z", "value": 10000.0},
                        {"time": "2025-01-01T01:00:00Z", "value": 10012.5},
                    ],
                }
            ],
            "benchmark": [
                {"time": "2025-01-01T01:00:00Z", "value": 10000.0},
            ],
        },
    )
]

COMPETITIONS_EXPORT = [
    response(
        "trades as CSV",
        (
            "fill_id,participant_id,participant,market_time,symbol,side,quantity,price,fee,realised_pnl,"
            "closes,reason,order_id,invocation_id,reasoning\r\n31,7,Claude,2025-01-01T00:00:00Z,BTC/USDT,"
            "buy,0.1,94250.5,4.712525,0,False,agent,18,55,BTC broke out\r\n"
        ),
        media_type="text/csv",
    ),
    response(
        "equity as JSON",
        [
            {
                "participant_id": 7,
                "participant": "Claude",
                "market_time": "2025-01-01T01:00:00Z",
                "round_number": 1,
                "equity": "10012.5",
                "cash": "9995.29",
                "unrealised_pnl": "17.21",
                "used_margin": "4712.525",
                "free_margin": "5299.975",
                "maintenance_requirement": "475.05",
                "open_positions": 1,
            }
        ],
        media_type="application/json",
    ),
]

# -- rounds --------------------------------------------------------------------------------

ROUND = {
    "id": 12,
    "competition": 1,
    "number": 3,
    "market_time": "2025-01-01T03:00:00Z",
    "status": "completed",
    "phase": "completed",
    "detail": "",
    "timings": {"snapshot_s": 0.05, "agents_s": 4.2, "execute_s": 0.03, "mark_s": 0.02},
    "snapshot": 40,
    "llm_cost_usd": "0.0123",
    "started_at": "2026-01-05T10:00:00Z",
    "finished_at": "2026-01-05T10:00:04Z",
    "invocation_count": 2,
}

ROUNDS_LIST = [response("a page", ROUND)]
ROUNDS_CREATE = [
    response("ran here", {"queued": False, "round": ROUND}, "201"),
    response("queued", {"queued": True, "round": None}, "202"),
]

# -- participants --------------------------------------------------------------------------

PARTICIPANT_REQUEST = {
    "name": "Claude",
    "llm_provider": "anthropic",
    "llm_model": "claude-haiku-4-5",
    "llm_config": {"temperature": 0.2, "max_tokens": 1024},
    "api_key": "sk-ant-...",
}
PARTICIPANT = {
    "id": 7,
    "competition": 1,
    "name": "Claude",
    "llm_provider": "anthropic",
    "llm_model": "claude-haiku-4-5",
    "llm_config": {"temperature": 0.2, "max_tokens": 1024},
    "has_api_key": True,
    "status": "active",
    "status_reason": "",
    "joined_at": "2026-01-05T09:31:00Z",
}

PARTICIPANTS_REGISTER = [
    request("an Anthropic model", PARTICIPANT_REQUEST),
    request("a baseline strategy", {"name": "Momentum", "llm_provider": "baseline", "llm_model": "momentum"}),
    response("registered", {**PARTICIPANT, "warnings": []}, "201"),
]
PARTICIPANTS_LIST = [response("a page", PARTICIPANT)]
PARTICIPANTS_RETRIEVE = [response("a participant", PARTICIPANT)]
PARTICIPANTS_PARTIAL_UPDATE = [
    request("disqualify", {"status": "disqualified", "status_reason": "broke the rules"}),
    request("change the model", {"llm_model": "claude-opus-4-1"}),
    response("disqualified", {**PARTICIPANT, "status": "disqualified", "status_reason": "broke the rules"}),
]

# -- one participant's book ----------------------------------------------------------------

OPEN_POSITION = {
    "id": None,
    "is_open": True,
    "symbol": "BTC/USDT",
    "asset_class": "crypto",
    "side": "long",
    "quantity": "0.1",
    "entry_price": "94250.5",
    "leverage": "2",
    "initial_margin": "4712.525",
    "stop_loss": "90000",
    "take_profit": None,
    "realised_pnl": "0",
    "fees": "4.712525",
    "funding": "-0.94",
    "opened_at": "2025-01-01T00:00:00Z",
    "mark_price": "95010",
    "marked": True,
    "notional": "9501",
    "unrealised_pnl": "75.95",
    "liquidation_price": "48020.1",
    "exit_price": None,
    "closed_quantity": None,
    "net_pnl": None,
    "closed_at": None,
    "close_reason": "",
}

PARTICIPANTS_PORTFOLIO = [
    response(
        "one long",
        {
            "participant_id": 7,
            "marked_at": "2025-01-01T05:00:00Z",
            "initial_capital": "10000",
            "cash": "9994.35",
            "equity": "10070.3",
            "unrealised_pnl": "75.95",
            "used_margin": "4712.525",
            "free_margin": "5357.775",
            "margin_level": "2.1369",
            "maintenance_requirement": "475.05",
            "positions": [OPEN_POSITION],
        },
    )
]
PARTICIPANTS_POSITIONS = [response("an open long", OPEN_POSITION)]

TRADE = {
    "id": 31,
    "symbol": "BTC/USDT",
    "side": "buy",
    "quantity": "0.1",
    "price": "94250.5",
    "fee": "4.712525",
    "realised_pnl": "0",
    "closes": False,
    "reason": "agent",
    "market_time": "2025-01-01T00:00:00Z",
    "order_id": 18,
    "invocation_id": 55,
    "reasoning": "BTC broke above its 20-bar high with rising volume",
}
PARTICIPANTS_TRADES = [response("an agent's buy", TRADE)]

PARTICIPANTS_HISTORY = [
    response(
        "two rounds",
        {
            "participant_id": 7,
            "target_points": 500,
            "equity": [
                {"time": "2025-01-01T00:00:00Z", "value": 10000.0},
                {"time": "2025-01-01T01:00:00Z", "value": 9950.0},
            ],
            "drawdown": [
                {"time": "2025-01-01T00:00:00Z", "value": 0.0},
                {"time": "2025-01-01T01:00:00Z", "value": -0.5},
            ],
        },
    )
]

PARTICIPANTS_INVOCATIONS = [
    response(
        "a valid decision",
        {
            "id": 55,
            "participant_id": 7,
            "round_id": 12,
            "round_number": 0,
            "market_time": "2025-01-01T00:00:00Z",
            "snapshot_id": 40,
            "provider": "anthropic",
            "model": "claude-haiku-4-5",
            "prompt_version": "v1",
            "system_prompt": "You trade CFDs...",
            "user_prompt": "Market at 2025-01-01T00:00Z...",
            "raw_response": '{"reasoning": "BTC broke out", "actions": [...]}',
            "parsed_decision": {
                "reasoning": "BTC broke out",
                "actions": [
                    {
                        "action": "open",
                        "symbol": "BTC/USDT",
                        "side": "long",
                        "quantity": "0.1",
                        "leverage": "2",
                    }
                ],
            },
            "action_outcomes": [{"index": 0, "status": "filled", "order_id": 18}],
            "status": "success",
            "error": "",
            "latency_ms": 4120,
            "input_tokens": 5200,
            "output_tokens": 180,
            "cost_usd": "0.0183",
            "retries": 0,
            "created_at": "2026-01-05T10:00:04Z",
        },
    )
]

# -- leaderboard ---------------------------------------------------------------------------

LEADERBOARD_ROW = {
    "rank": 1,
    "participant_id": 7,
    "name": "Claude",
    "provider": "anthropic",
    "model": "claude-haiku-4-5",
    "status": "active",
    "is_baseline": False,
    "is_benchmark": False,
    "equity": 10412.5,
    "return_pct": 4.125,
    "pnl": 412.5,
    "sharpe": 1.83,
    "sortino": 2.4,
    "max_drawdown": -2.1,
    "cost_adjusted_return": 4.06,
    "trades": 6,
    "win_rate": 66.67,
    "llm_cost_usd": 6.2,
}

LEADERBOARD = [
    response("by Sharpe", {"competition_id": 1, "metric": "sharpe", "results": [LEADERBOARD_ROW]}),
]
PARTICIPANTS_PERFORMANCE = [response("a line", {**LEADERBOARD_ROW, "rank": None})]
