"""Seed the instrument catalogue: the nine shipped Binance coins plus a few non-crypto
instruments for the synthetic source. Values are frozen here on purpose (a migration
must not change when the app's code does); see marketdata/catalogue.py for the why."""

from datetime import time
from decimal import Decimal

from django.db import migrations

COSTS = {
    "crypto": ("0.05", "2", "1", "0.01", "0", "2"),
    "forex": ("0", "1", "0.5", "0", "3", "30"),
    "indices": ("0", "2", "1", "0", "3", "20"),
    "commodities": ("0", "3", "1", "0", "3", "20"),
    "stocks": ("0.10", "2", "2", "0", "3", "5"),
}

# symbol, name, class, price places, quantity places, min quantity, hours
NYSE = ("exchange_session", "America/New_York", time(9, 30), time(16, 0))
XETRA = ("exchange_session", "Europe/Berlin", time(9, 0), time(17, 30))
ALWAYS = ("always", "UTC", None, None)
FOREX = ("forex_week", "UTC", None, None)
INSTRUMENTS = [
    ("BTC/USDT", "Bitcoin", "crypto", 2, 5, "0.00001", ALWAYS),
    ("ETH/USDT", "Ether", "crypto", 2, 4, "0.0001", ALWAYS),
    ("SOL/USDT", "Solana", "crypto", 2, 3, "0.001", ALWAYS),
    ("BNB/USDT", "BNB", "crypto", 2, 3, "0.001", ALWAYS),
    ("XRP/USDT", "XRP", "crypto", 4, 1, "0.1", ALWAYS),
    ("DOGE/USDT", "Dogecoin", "crypto", 5, 0, "1", ALWAYS),
    ("LINK/USDT", "Chainlink", "crypto", 2, 2, "0.01", ALWAYS),
    ("TRX/USDT", "TRON", "crypto", 4, 1, "0.1", ALWAYS),
    ("PEPE/USDT", "Pepe", "crypto", 8, 0, "1", ALWAYS),
    ("EUR/USD", "Euro / US dollar", "forex", 5, 0, "1", FOREX),
    ("GBP/USD", "British pound / US dollar", "forex", 5, 0, "1", FOREX),
    ("XAU/USD", "Gold spot", "commodities", 2, 2, "0.01", FOREX),
    ("US500", "US 500 index (NYSE session)", "indices", 2, 2, "0.01", NYSE),
    ("DE40", "Germany 40 index (Xetra session)", "indices", 2, 2, "0.01", XETRA),
    ("AAPL", "Apple Inc. (NASDAQ)", "stocks", 2, 2, "0.01", NYSE),
]


def seed(apps, schema_editor):
    Instrument = apps.get_model("marketdata", "Instrument")
    for symbol, name, asset_class, price_places, qty_places, min_qty, hours in INSTRUMENTS:
        fee, spread, slippage, funding, financing, leverage = COSTS[asset_class]
        kind, zone, session_open, session_close = hours
        Instrument.objects.update_or_create(
            symbol=symbol,
            defaults={
                "name": name,
                "asset_class": asset_class,
                "price_precision": price_places,
                "quantity_precision": qty_places,
                "min_quantity": Decimal(min_qty),
                "hours_kind": kind,
                "session_timezone": zone,
                "session_open": session_open,
                "session_close": session_close,
                "default_fee_pct": Decimal(fee),
                "default_spread_bps": Decimal(spread),
                "default_slippage_bps": Decimal(slippage),
                "default_funding_rate_pct_8h": Decimal(funding),
                "default_financing_rate_pct_annual": Decimal(financing),
                "default_max_leverage": Decimal(leverage),
            },
        )


def unseed(apps, schema_editor):
    Instrument = apps.get_model("marketdata", "Instrument")
    Instrument.objects.filter(symbol__in=[row[0] for row in INSTRUMENTS]).delete()


class Migration(migrations.Migration):
    dependencies = [("marketdata", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
