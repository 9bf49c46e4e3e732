"""Default cost model and leverage per asset class (a "retail realistic" preset).

Leverage caps are ESMA's retail limits (REFERENCE.md): major FX 30:1, gold and major
indices 20:1, single equities 5:1, crypto 2:1. Costs: crypto like a perpetual futures
venue (taker fee 0.05%, funding 0.01% per 8 h); FX, indices and gold pay in the spread
and overnight financing (benchmark + 2.5% admin, about 3% a year); share CFDs pay a
commission of 0.10% per side. The seed migration copied these values onto the shipped
instruments; competitions may read them as defaults.
"""

from decimal import Decimal

ASSET_CLASS_DEFAULTS: dict[str, dict[str, Decimal]] = {
    "crypto": {
        "fee_pct": Decimal("0.05"),
        "spread_bps": Decimal(2),
        "slippage_bps": Decimal(1),
        "funding_rate_pct_8h": Decimal("0.01"),
        "financing_rate_pct_annual": Decimal(0),
        "max_leverage": Decimal(2),
    },
    "forex": {
        "fee_pct": Decimal(0),
        "spread_bps": Decimal(1),
        "slippage_bps": Decimal("0.5"),
        "funding_rate_pct_8h": Decimal(0),
        "financing_rate_pct_annual": Decimal(3),
        "max_leverage": Decimal(30),
    },
    "indices": {
        "fee_pct": Decimal(0),
        "spread_bps": Decimal(2),
        "slippage_bps": Decimal(1),
        "funding_rate_pct_8h": Decimal(0),
        "financing_rate_pct_annual": Decimal(3),
        "max_leverage": Decimal(20),
    },
    "commodities": {
        "fee_pct": Decimal(0),
        "spread_bps": Decimal(3),
        "slippage_bps": Decimal(1),
        "funding_rate_pct_8h": Decimal(0),
        "financing_rate_pct_annual": Decimal(3),
        "max_leverage": Decimal(20),
    },
    "stocks": {
        "fee_pct": Decimal("0.10"),
        "spread_bps": Decimal(2),
        "slippage_bps": Decimal(2),
        "funding_rate_pct_8h": Decimal(0),
        "financing_rate_pct_annual": Decimal(3),
        "max_leverage": Decimal(5),
    },
}


# Quote currencies that make a symbol crypto when the catalogue has no Instrument row for it:
# the one list (the shipped-file pattern, the history source and trading all read it).
CRYPTO_QUOTES = ("USDT", "USDC", "BUSD", "FDUSD", "BTC", "ETH")


def symbol_asset_class(symbol: str) -> str:
    """The asset class a symbol's quote currency implies: "crypto" for BASE/<crypto quote>, else "unknown"."""
    quote = str(symbol).rpartition("/")[2].upper()
    return "crypto" if quote in CRYPTO_QUOTES else "unknown"
